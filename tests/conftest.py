import os
from pathlib import Path

import pytest

from helpers import context

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]


def pytest_itemcollected(item: pytest.Item) -> None:
    """The unit pytest-xdist hands to one worker (``--dist loadgroup``): each slow test
    on its own, so the long ones spread over the workers; the rest of a file together,
    one unit per start method (its module fixtures are set up once per method anyway),
    so a file's three runs go to three workers instead of ending the session on one."""
    if not item.get_closest_marker("xdist_group"):
        item.add_marker(pytest.mark.xdist_group(_unit(item)))


@pytest.hookimpl(trylast=True)  # after pytest groups the tests by module-scoped parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest units first (``slow(seconds)`` marks; a unit of unmarked tests counts
    ``UNMARKED_SECONDS`` for each), each unit's tests together and in their order. Run with
    ``--dist loadgroup --no-loadscope-reorder``, pytest-xdist hands out the units in
    this order (by default it would reorder them by their number of tests, and the
    files of one or two long tests, the round trips, would start last). Only the
    item order is touched."""
    seconds: dict[str, float] = {}
    for item in items:
        cost = _seconds(item) if item.get_closest_marker("slow") else UNMARKED_SECONDS
        seconds[_unit(item)] = seconds.get(_unit(item), 0.0) + cost
    items.sort(key=lambda item: -seconds.get(_unit(item), 0.0))  # stable: order kept


# what a test without a slow(seconds) mark is taken to last, to order the units (a
# file of many quick tests is a long unit too)
UNMARKED_SECONDS = 1.0


def _unit(item: pytest.Item) -> str:
    name = item.nodeid.split("@", 1)[0]  # without the group pytest-xdist appends
    if item.get_closest_marker("slow"):
        return name.replace("[", "(").replace("]", ")")  # xdist reads "]" as no group
    method = getattr(item, "callspec", None) and item.callspec.params.get("mp_start_method")
    return name.split("::", 1)[0] + (f"({method})" if method else "")


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
