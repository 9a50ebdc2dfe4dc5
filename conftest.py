"""Checks that apply to every test run in this repository, unit tests and
notebooks (nbval) alike: nothing a test or notebook started may outlive it.

* Child processes: pytest makes itself a *child subreaper* (Linux), so a process
  orphaned by a notebook's kernel is re-parented to pytest instead of init and is
  still visible here. After the last test of each file (for a notebook: after its
  kernel was shut down) any remaining descendant fails that file's teardown and
  is killed so it cannot disturb the next file.
* Shared memory: a ``multiprocessing.shared_memory`` segment or a named
  semaphore that appears in /dev/shm during the run and is still there at the
  end, mapped by no process, fails the session. (A mapped one belongs to a live
  process, e.g. of another test run on the machine.)
"""

from __future__ import annotations

import os

import pytest

from tests.plugins import leftovers

# --start-methods: every test and notebook under several start methods in one run
pytest_plugins = ["tests.plugins.start_methods"]

# How long a finished file's processes get to exit on their own (kernel shutdown
# takes a moment); tests of this check shorten it.
_GRACE_SECONDS = float(os.environ.get("COURSE_LEFTOVER_GRACE", "10"))
_SHM_KEY = pytest.StashKey[set]()


def _shut_nbval_kernels_down_gracefully() -> None:
    """nbval stops each notebook's kernel with ``shutdown_kernel(now=True)``: a
    SIGKILL that also kills the kernel's multiprocessing resource tracker, so the
    named semaphores of any Queue or Lock still alive leak into /dev/shm. JupyterLab
    shuts a kernel down politely (shutdown request, then kill after a grace
    period); do the same, so tests see what a student's machine sees."""
    try:
        from nbval.kernel import RunningKernel
    except ImportError:
        return

    def stop(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        del self.km

    RunningKernel.stop = stop


def pytest_configure(config: pytest.Config) -> None:
    leftovers.become_subreaper()
    _shut_nbval_kernels_down_gracefully()
    config.stash[_SHM_KEY] = leftovers.shm_segments()


def _file_of(item: pytest.Item) -> str:
    """The test file, or the notebook under one start method (``x.ipynb::fork``)."""
    node = item.getparent(pytest.File)
    return node.nodeid if node is not None else item.nodeid.split("::", 1)[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield
    if nextitem is None or _file_of(nextitem) != _file_of(item):
        left = leftovers.leftover_processes(_GRACE_SECONDS)
        if left:
            listing = "\n  ".join(leftovers.describe(p) for p in left)
            leftovers.kill(left)
            raise AssertionError(
                f"{item.path.name} left {len(left)} process(es) running "
                f"(killed now):\n  {listing}"
            )
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: another worker may still hold a live segment
    new = leftovers.leaked_shm(session.config.stash.get(_SHM_KEY, set()))
    if new:
        session.config.get_terminal_writer().line(
            f"FAILED: shared-memory segments or semaphores left in {leftovers.SHM_DIR}: "
            f"{', '.join(sorted(new))}",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
