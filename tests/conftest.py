import os
from pathlib import Path

import pytest

from helpers import context

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


@pytest.hookimpl(trylast=True)  # after pytest groups the tests by module-scoped parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files with the most slow seconds first (``slow(seconds)`` marks), each
    file's tests together and in their order: with ``--dist loadfile`` pytest-xdist
    hands whole files to the workers in this order, so the long files start at once,
    spread over the workers, and a file's leftover check runs once, after its last
    test. Only the item order is touched."""
    slow: dict[str, float] = {}
    for item in items:
        if item.get_closest_marker("slow"):
            slow[_file(item)] = slow.get(_file(item), 0.0) + _seconds(item)
    items.sort(key=lambda item: -slow.get(_file(item), 0.0))  # stable: file order kept


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


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
