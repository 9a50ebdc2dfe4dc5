import pytest

from helpers import context

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def pool():
    """A two-worker pool of the chosen start method, shared by one test module."""
    with context().Pool(2) as p:
        yield p
        p.close()
        p.join()
