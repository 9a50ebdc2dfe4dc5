"""Which start method the course uses, chosen in one place.

Notebooks and tests call :func:`context` instead of using ``multiprocessing``
directly, so setting ``MP_START_METHOD`` (spawn | forkserver | fork) switches all
of them with no other change. The default is spawn: the default on Windows and
macOS, and the strictest (everything a child needs must be importable and
picklable), so code that works under spawn works everywhere.
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
