"""Which start method the course uses, chosen in one place.

Notebooks and tests call :func:`context` instead of using ``multiprocessing``
directly, so setting ``MP_START_METHOD`` (spawn | forkserver | fork) switches all
of them with no other change. The default is spawn: the default on Windows and
macOS, and the strictest about what a child can receive (everything it needs
must be importable and picklable). Code that is clean under spawn is therefore
importable and picklable under every method. It is not automatically correct
under fork: a fork child also inherits state from its parent (copies of pipe
ends and other file descriptors, locks some thread held at that moment, globals
set after import), which can change what it does (lecture 02 shows a child that
hangs on an inherited pipe end). That is why the tests run under all three.
Lecture 00, section "Start methods", explains the methods.

In your own code choose a method without this module:
``multiprocessing.get_context("spawn")`` (a library, a notebook), or
``multiprocessing.set_start_method("spawn")`` once, inside
``if __name__ == "__main__":`` of a script.
"""

import multiprocessing
import os

START_METHOD_ENV = "MP_START_METHOD"
DEFAULT_START_METHOD = "spawn"


def start_method() -> str:
    """The start method named by ``MP_START_METHOD``, or spawn."""
    method = os.environ.get(START_METHOD_ENV, "").strip() or DEFAULT_START_METHOD
    available = multiprocessing.get_all_start_methods()
    if method not in available:
        raise ValueError(
            f"{START_METHOD_ENV}={method!r} is not a start method this platform offers; "
            f"choose one of {', '.join(available)}"
        )
    return method


def context() -> multiprocessing.context.BaseContext:
    """A multiprocessing context for the chosen start method.

    Use it like the module: ``ctx.Process``, ``ctx.Queue``, ``ctx.Pool``, ...
    A context leaves the global default alone, so importing this never changes
    how other code in the process starts children.
    """
    return multiprocessing.get_context(start_method())
