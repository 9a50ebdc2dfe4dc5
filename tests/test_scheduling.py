"""make test hands pytest-xdist its units with ``--dist loadgroup`` (tests/conftest.py:
each slow test alone, the rest of a file together, so a module's fixtures, a Dask
cluster say, are set up once). pytest 9.2 made that grouping silently stop
(pytest-xdist#1386: every test then lands anywhere); this fails if it stops again."""

import pytest

pytestmark = pytest.mark.start_method_independent


def test_loadgroup_keeps_a_group_on_one_worker(pytester):
    seen = pytester.path / "workers.txt"
    pytester.makepyfile(test_grouped=f"""
        import os
        import pytest

        @pytest.mark.xdist_group("together")
        @pytest.mark.parametrize("i", range(6))
        def test_where(i):
            with open({str(seen)!r}, "a") as fh:
                fh.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    """)
    result = pytester.runpytest_subprocess("-n", "3", "--dist", "loadgroup", "-p",
                                           "no:randomly", "-q", timeout=120)
    result.assert_outcomes(passed=6)
    workers = seen.read_text().split()
    assert len(workers) == 6 and len(set(workers)) == 1, f"one group ran on {workers}"
