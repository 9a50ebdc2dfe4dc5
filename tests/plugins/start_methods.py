"""pytest plugin: run tests and notebooks under several start methods in one session.

``MP_START_METHOD=fork pytest ...`` runs everything under one method, as before.
``pytest --start-methods=all`` (or a list such as ``spawn,fork``) runs each test
and each notebook once per method, in one session, so that pytest-xdist can
spread all of them over its workers instead of waiting for one method's slowest
test before starting the next method.

* Unit tests get an autouse fixture, ``mp_start_method``, that sets
  ``MP_START_METHOD`` for its module (children inherit it). With more than one
  method it is parametrized per module, so ids read ``test_x[fork]``. Tests
  marked ``start_method_independent`` run once, under the first method.
* Notebooks (``--nbval``): each notebook is collected once per method,
  ``notebooks/00-review.ipynb::fork``, and its kernel starts with that method in
  its environment.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Iterator

import pytest

from courselib.startmethod import START_METHOD_ENV, start_method

ALL_METHODS = ("spawn", "forkserver", "fork")
INDEPENDENT_MARK = "start_method_independent"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--start-methods",
        default=None,
        help="comma-separated start methods to run every test and notebook under, or 'all' "
        f"({', '.join(ALL_METHODS)}); default: the one {START_METHOD_ENV} names (spawn)",
    )


def selected_methods(config: pytest.Config) -> list[str]:
    raw = config.getoption("start_methods")
    if not raw:
        return [start_method()]
    methods = list(ALL_METHODS) if raw.strip() == "all" else [
        m.strip() for m in raw.split(",") if m.strip()
    ]
    unknown = [m for m in methods if m not in multiprocessing.get_all_start_methods()]
    if unknown or not methods:
        raise pytest.UsageError(
            f"--start-methods={raw!r}: choose from {', '.join(multiprocessing.get_all_start_methods())}"
        )
    return list(dict.fromkeys(methods))


def pytest_configure(config: pytest.Config) -> None:
    selected_methods(config)  # a typo fails at once, not after collection


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    methods = selected_methods(metafunc.config)
    if len(methods) < 2 or "mp_start_method" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker(INDEPENDENT_MARK):
        return  # runs once, under the first method (the fixture's default)
    metafunc.parametrize("mp_start_method", methods, indirect=True, scope="module")


def _set_method(method: str) -> str | None:
    saved = os.environ.get(START_METHOD_ENV)
    os.environ[START_METHOD_ENV] = method
    return saved


def _restore(saved: str | None) -> None:
    if saved is None:
        os.environ.pop(START_METHOD_ENV, None)
    else:
        os.environ[START_METHOD_ENV] = saved


@pytest.fixture(scope="module", autouse=True)
def mp_start_method(request: pytest.FixtureRequest) -> Iterator[str]:
    """The start method this module's tests run under, set in MP_START_METHOD."""
    method = getattr(request, "param", None) or selected_methods(request.config)[0]
    saved = _set_method(method)
    yield method
    _restore(saved)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collected = yield
    methods = selected_methods(parent.config)
    if len(methods) < 2 or file_path.suffix != ".ipynb" or not collected:
        return collected
    notebook_under = _notebook_under_class()
    out = []
    for node in collected or []:
        if type(node) is not notebook_under.__base__:
            out.append(node)
            continue
        for method in methods:
            # "x.ipynb::fork": xdist's --dist loadfile groups by what precedes the first
            # "::", so the three kernels of one notebook run on one worker, one after
            # another; in parallel they would rewrite the same %%writefile modules
            copy = notebook_under.from_parent(parent, path=file_path,
                                              nodeid=f"{node.nodeid}::{method}")
            copy.start_method = method
            out.append(copy)
    return out


@functools.cache
def _notebook_under_class():
    from nbval.plugin import IPyNbFile

    class NotebookUnder(IPyNbFile):
        """A notebook whose kernel starts with MP_START_METHOD set to ``start_method``."""

        start_method = ALL_METHODS[0]

        def setup(self):
            saved = _set_method(self.start_method)
            try:
                super().setup()  # starts the kernel, which inherits the environment
            finally:
                _restore(saved)

    return NotebookUnder
