import os
from pathlib import Path

import pytest

from helpers import context

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


@pytest.hookimpl(trylast=True)  # after pytest groups the tests by module-scoped parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``-n N --dist worksteal``, xdist hands worker k the k-th of N contiguous
    slices of this list (idle workers later steal from the others' tails). Start the
    tests marked ``slow(seconds)`` first, spread so each slice gets about the same
    number of slow seconds (longest first, each to the least loaded slice), instead
    of one worker meeting several of them at the end of the run."""
    # xdist collects in each worker, where numprocesses is reset: read the count it passes
    workers = getattr(config, "workerinput", {}).get("workercount")
    if not isinstance(workers, int) or workers < 2:
        return
    slow = sorted((i for i in items if i.get_closest_marker("slow")), key=_seconds, reverse=True)
    if not slow:
        return
    rest = [i for i in items if not i.get_closest_marker("slow")]
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for item in slow:
        k = load.index(min(load))
        heads[k].append(item)
        load[k] += _seconds(item)
    ordered, left = [], len(items)
    for k, head in enumerate(heads):
        size = left // (workers - k)  # the slice sizes worksteal uses
        left -= size
        take = max(0, size - len(head))
        ordered += head + rest[:take]
        rest = rest[take:]
    items[:] = ordered + rest


def _seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    return float(mark.args[0]) if mark and mark.args else 15.0


@pytest.fixture
def ctx(mp_start_method):
    """The multiprocessing context of the start method this test runs under."""
    return context()


@pytest.fixture(scope="module")
def pool(mp_start_method):
    """A two-worker pool of this module's start method, shared by its tests."""
    with context().Pool(2) as p:
        yield p
        p.close()
        p.join()


@pytest.fixture
def pytester(pytester, monkeypatch):
    """pytester, whose subprocess runs can import the suite's plugins (``tests.plugins``),
    which are not installed: the repository root goes on their PYTHONPATH."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return pytester
