import pytest

from helpers import context

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def pool(mp_start_method):
    """A two-worker pool of this module's start method, shared by its tests."""
    with context().Pool(2) as p:
        yield p
        p.close()
        p.join()
