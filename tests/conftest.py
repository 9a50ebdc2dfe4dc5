import pytest

from helpers import context

pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``-n N --dist worksteal``, xdist hands worker k the k-th of N contiguous
    slices of this list. Put the tests marked ``slow`` at the front of the slices,
    one slice after another, so they start at once on different workers instead of
    one worker meeting several of them at the end of the run."""
    workers = config.getoption("numprocesses", None)
    if not isinstance(workers, int) or workers < 2:
        return
    slow = [i for i in items if i.get_closest_marker("slow")]
    if not slow:
        return
    rest = [i for i in items if not i.get_closest_marker("slow")]
    slices, left = [], len(items)
    for k in range(workers):  # the slice sizes worksteal uses
        slices.append(left // (workers - k))
        left -= slices[-1]
    heads = [slow[k::workers] for k in range(workers)]
    ordered = []
    for size, head in zip(slices, heads, strict=True):
        take = max(0, size - len(head))
        ordered += head + rest[:take]
        rest = rest[take:]
    items[:] = ordered + rest


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
