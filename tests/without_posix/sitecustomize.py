"""Make this Linux Python look like Windows to the course's own code.

Put this folder first on PYTHONPATH and every Python process started with that
environment (a test's subprocess, a Jupyter kernel, the homework checker, every
spawn child: they all inherit it) imports this module at start-up, before any of
the course's code runs. Then:

* the POSIX-only functions and constants that Windows lacks are gone: ``os.fork``,
  ``os.killpg``, ``os.setsid``, ``os.getpgid``, ``os.sched_setaffinity``,
  ``os.getloadavg``, ``signal.SIGKILL`` and their friends (:data:`REMOVED`);
  ``hasattr(os, "fork")`` is False and a call raises AttributeError, as on Windows;
* ``multiprocessing`` offers only spawn: ``get_all_start_methods()`` is
  ``['spawn']``, spawn is the default, and ``get_context("fork")`` /
  ``get_context("forkserver")`` raise ValueError, as on Windows;
* ``multiprocessing.Queue.qsize()`` and ``Semaphore.get_value()`` raise
  NotImplementedError, as on macOS (it has no ``sem_getvalue()``).

Only the course's code loses them. The standard library and installed packages
(psutil, jupyter_client, ipykernel ...) still see them, because on Linux their
own implementation of a portable call uses them: ``subprocess.Popen.kill()``,
``multiprocessing.Process.kill()`` and ``psutil.Process.kill()`` send
``signal.SIGKILL`` on POSIX and call TerminateProcess on Windows. So a name is
refused when the code asking for it is not in the standard library or in
site-packages: the ``helpers`` package, a notebook cell, a student's module.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig

GUARD_ENV = "MP_COURSE_WITHOUT_POSIX"  # set to "1" while this module is active

REMOVED = {
    os: (
        "fork", "forkpty", "register_at_fork",
        "killpg", "getpgid", "setpgid", "getpgrp", "setpgrp", "getsid", "setsid",
        "sched_setaffinity", "sched_getaffinity", "sched_yield",
        "getloadavg", "nice", "wait", "wait3", "wait4", "WNOHANG",
        "getuid", "geteuid", "getgid", "getegid", "uname", "sysconf", "mkfifo",
    ),
    signal: (
        "SIGKILL", "SIGSTOP", "SIGCONT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
        "SIGALRM", "SIGCHLD", "SIGPIPE", "alarm", "setitimer", "getitimer", "pause",
        "pthread_kill", "pthread_sigmask", "sigwait", "siginterrupt",
    ),
}

_LIBRARY = tuple(
    os.path.normcase(os.path.realpath(p)) + os.sep
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def _from_library(filename: str) -> bool:
    if filename.startswith("<frozen "):  # os, importlib, codecs ... are frozen modules
        return True
    return os.path.normcase(os.path.realpath(filename)).startswith(_LIBRARY)


def _hide(module, names) -> None:
    saved = {n: getattr(module, n) for n in names if hasattr(module, n)}
    for name in saved:
        delattr(module, name)
    cache: dict[str, bool] = {}

    def __getattr__(name: str):  # noqa: N807 - PEP 562 module __getattr__
        if name in saved:
            filename = sys._getframe(1).f_code.co_filename
            if filename not in cache:
                cache[filename] = _from_library(filename)
            if cache[filename]:
                return saved[name]
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    module.__getattr__ = __getattr__


def _not_on_macos(cls, name: str) -> None:
    real = getattr(cls, name)

    def refuse(self):
        if _from_library(sys._getframe(1).f_code.co_filename):
            return real(self)
        raise NotImplementedError(f"{cls.__name__}.{name}() is not implemented on macOS")

    setattr(cls, name, refuse)


def _spawn_only() -> None:
    import multiprocessing
    from multiprocessing import context

    spawn = context._concrete_contexts["spawn"]
    for method in ("fork", "forkserver"):
        context._concrete_contexts.pop(method, None)
    context.DefaultContext.get_all_start_methods = lambda self: ["spawn"]
    context._default_context._default_context = spawn
    context._default_context._actual_context = None
    # the module-level functions are bound methods made when multiprocessing was imported
    multiprocessing.get_all_start_methods = context._default_context.get_all_start_methods


for _module, _names in REMOVED.items():
    _hide(_module, _names)
_spawn_only()
import multiprocessing.queues  # noqa: E402
import multiprocessing.synchronize  # noqa: E402

_not_on_macos(multiprocessing.queues.Queue, "qsize")
_not_on_macos(multiprocessing.synchronize.Semaphore, "get_value")
# named semaphores made here are /dev/shm/sem.mp-np-*: a leak can be traced to these
# runs, and the suite's leak check (sem.mp-*) still sees it
multiprocessing.process.current_process()._config["semprefix"] = "/mp-np"
os.environ[GUARD_ENV] = "1"
