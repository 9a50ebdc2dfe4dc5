"""Homework 3's server harness: run a server under test in a child process on a
free port of 127.0.0.1, and stop it, whatever happens, within a bounded time.

:func:`running_server` starts the server and, on leaving its block, sets the
server's ``stop`` event, waits a bounded time, then kills the server and every
process it started (courselib.procs: psutil, so it works on every platform). Whether a server
that had to be killed, or left a process or a listening socket, fails the check is
up to the caller (``check_stop``): only the clean-stop question reports it, so a
server that does not stop loses those points only. Everything binds and connects
on 127.0.0.1 only. The checks that use it are in :mod:`hwcheck.tcpcheck`; the
hw3 notebook's demo cells use it to try a server.

The checker names the student's server function without importing it
(:class:`hwcheck.child.StudentFunction`): the server process loads it, as the
student's uid; what it puts on ``ready`` is read as plain data only.
"""

from __future__ import annotations

import functools
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Callable, Iterator

import psutil

from courselib.procs import get_or_none, kill_all, still_running, tree
from courselib.startmethod import context
from hwcheck.child import StudentFunction, share_with
from hwcheck.limits import scaled
from hwcheck.plaindata import NotPlainData, PlainQueue
from hwcheck.tcpclient import LineClient, ServerError

HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # spawn on a loaded 2-core machine: a pool can take seconds to start
STOP_TIMEOUT = 8.0  # from ``stop.set()`` to the server process having exited
QUIET_STOP_TIMEOUT = 3.0  # the same, when stopping cleanly is not what the check tests
POLL = 0.1  # the course's own one-client loop (serve_with_handler) checks stop this often


FAILURE = "$failure"  # the key of what the server process puts on `ready` when it raises


def _failure(message) -> dict | None:
    """The server process's failure report (plain data: a dict), if ``message`` is one."""
    if isinstance(message, dict) and isinstance(message.get(FAILURE), str):
        return message
    return None


def _server_main(serve, address, workers, stop, ready, idle_timeout) -> None:
    """Body of the server process: run ``serve`` and report an exception in words.

    ``serve`` is a function, or a :class:`hwcheck.child.StudentFunction` the checker
    named without importing it: loaded here, through the trampoline (the student's
    uid, the student's folder on ``sys.path``). ``workers=None`` runs a single-process
    server, ``serve(address, stop, ready, idle_timeout=...)``; otherwise
    ``serve(address, workers, stop, ready, idle_timeout=...)``.
    """
    try:
        if isinstance(serve, StudentFunction):
            serve = serve.load()
        if workers is None:
            serve(address, stop, ready, idle_timeout=idle_timeout)
        else:
            serve(address, workers, stop, ready, idle_timeout=idle_timeout)
    except BaseException as exc:  # noqa: BLE001 - reported to the student in words
        ready.put({FAILURE: describe_exception(exc), "text": traceback.format_exc(limit=-3),
                   "not_implemented": isinstance(exc, NotImplementedError)})
        raise SystemExit(1) from None


# the course's own frames say nothing about the student's code
_COURSE_PARTS = {"hwcheck", "courselib"}


def describe_exception(exc: BaseException) -> str:
    """``exc`` in one line: which function of the student's code raised what, where."""
    frames = [
        fs for fs in traceback.extract_tb(exc.__traceback__)
        if not _COURSE_PARTS & set(Path(fs.filename).parts) and "multiprocessing" not in fs.filename
    ]
    where = ""
    if frames:
        fs = frames[-1]
        where = (f" in `{fs.name}` (line {fs.lineno} of {Path(fs.filename).name}: "
                 f"`{(fs.line or '').strip()}`)")
    message = f": {exc}" if str(exc) else ""
    return f"{type(exc).__name__}{message}{where}"


def serve_with_handler(handler, address, stop, ready, idle_timeout=5.0) -> None:
    """The course's own one-process, one-client-at-a-time server around a student's
    ``handler(conn, stop, idle_timeout)``: so the framing question tests the handler
    alone, whatever the student's own accept loop does."""
    with socket.create_server(address) as listener:
        listener.settimeout(POLL)
        ready.put(listener.getsockname()[:2])
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    handler(conn, stop, idle_timeout)
                except (ConnectionError, BrokenPipeError):
                    pass  # the client went away: not this harness's business


@dataclass
class RunningServer:
    """A server started by :func:`running_server`."""

    address: tuple[str, int]
    process: object  # multiprocessing Process of the server
    workers: int | None
    ready: object = None  # the queue a crash report arrives on
    descendants: dict[int, psutil.Process] = field(default_factory=dict)

    def processes(self) -> list[psutil.Process]:
        """The server process and every process below it, as they are now."""
        return tree(self.process.pid)

    def remember_descendants(self) -> None:
        for proc in self.processes()[1:]:
            self.descendants.setdefault(proc.pid, proc)

    def crash_report(self, timeout: float = 0.5) -> str | None:
        """If the server process ended because its function raised: that, in one line."""
        self.process.join(timeout)
        if self.process.is_alive() or self.ready is None:
            return None
        try:
            message = self.ready.get(timeout=0.5)
        except (Empty, OSError, ValueError, NotPlainData):
            return None
        failure = _failure(message)
        return failure[FAILURE] if failure else None


def port_accepts(address: tuple[str, int], timeout: float = 1.0) -> bool:
    """True when something still accepts TCP connections on ``address``."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def running_server(
    serve: Callable,
    workers: int | None = 2,
    idle_timeout: float = 5.0,
    start_timeout: float | None = None,
    stop_timeout: float | None = None,
    check_stop: bool = True,
    ctx=None,
) -> Iterator[RunningServer]:
    """Start ``serve`` in a child process on 127.0.0.1 (free port), yield it, stop it.

    ``workers=None``: ``serve`` is a one-process server, ``serve(address, stop, ready,
    idle_timeout=...)``. On leaving the block the server's ``stop`` event is set; if the
    server process has not exited within ``stop_timeout`` seconds, or any process it
    started is still running, or the port still accepts connections, everything is
    killed, and with ``check_stop`` :class:`ServerError` says what was left. Without
    it the server gets only QUIET_STOP_TIMEOUT seconds before it is killed, silently.
    ``ctx``: the multiprocessing context to start it with (default: the course's).
    """
    start_timeout = scaled(START_TIMEOUT) if start_timeout is None else start_timeout
    if stop_timeout is None:
        stop_timeout = scaled(STOP_TIMEOUT if check_stop else QUIET_STOP_TIMEOUT)
    ctx = ctx or context()
    ok = False
    stop = ctx.Event()
    ready = PlainQueue(ctx=ctx)  # the server's process is the student's: plain data only
    if isinstance(serve, StudentFunction):
        share_with(serve.student, stop, ready)
    proc = ctx.Process(
        target=_server_main,
        args=(serve, (HOST, 0), workers, stop, ready, idle_timeout),
        name="hw3-server",
    )
    proc.start()
    server = None
    try:
        address = _wait_ready(proc, ready, start_timeout, _name(serve))
        server = RunningServer(address=address, process=proc, workers=workers, ready=ready)
        server.remember_descendants()
        yield server
        ok = True
    finally:
        stop.set()
        # When the block failed, its error is the one to show; clean up all the same.
        _stop_and_check(proc, server, ready, stop_timeout, report=ok and check_stop)


def _name(fn: Callable) -> str:
    if isinstance(fn, StudentFunction):
        return fn.name
    if isinstance(fn, functools.partial):
        return getattr(fn.args[0], "__name__", "the handler") if fn.args else "the server"
    return getattr(fn, "__name__", "serve")


def _wait_ready(proc, ready, start_timeout: float, name: str) -> tuple[str, int]:
    # a failure report may still be in the pipe when the process has exited: one more look
    try:
        message = get_or_none(ready, time.monotonic() + start_timeout, proc.is_alive,
                              last_look=1.0)
    except NotPlainData as exc:
        raise ServerError(f"{name}() put something on `ready` that is {exc}; put "
                          "listener.getsockname()[:2] on it") from None
    if message is None:
        if not proc.is_alive():
            raise ServerError(
                f"the server process exited (code {proc.exitcode}) without putting "
                "its address on `ready`"
            )
        raise ServerError(
            f"{name}() did not put its address on `ready` within {start_timeout:.0f} s"
        )
    failure = _failure(message)
    if failure:
        if failure.get("not_implemented"):
            raise ServerError(
                f"{name}() (or a function it calls) still raises NotImplementedError: replace "
                "`# YOUR CODE HERE` and `raise NotImplementedError()` in the %%writefile cell, "
                "then run that cell and the next one again"
            )
        raise ServerError(f"{name}() raised an exception: {failure[FAILURE]}")
    try:
        host, port = message
        address = (str(host), int(port))
    except (TypeError, ValueError):
        raise ServerError(f"{name}() put {message!r} on `ready`; expected (host, port)") from None
    if port == 0:
        raise ServerError(
            f"{name}() reported port 0: put listener.getsockname()[:2] on `ready`, after bind()"
        )
    return address


def _stop_and_check(proc, server, ready, stop_timeout: float, report: bool) -> None:
    """Stop the server (bounded), kill what is left, fail if anything was left."""
    # read the tree while the server runs: its orphans cannot be found through it later
    root, *below = tree(proc.pid) or [None]
    if server is not None:
        server.remember_descendants()
    known = list(server.descendants.values()) if server else []
    known += [p for p in below if p.pid not in {k.pid for k in known}]
    proc.join(stop_timeout)
    problems = []
    if proc.is_alive():
        problems.append(
            f"the server process did not return within {stop_timeout:.0f} s after stop was set "
            "(is a worker blocked in accept() or recv() with no timeout, so it never checks "
            "stop? is serve() waiting for a pool that never ends?)"
        )
    left = still_running(known, timeout=3.0 if not problems and report else 0)
    if left:
        problems.append(
            f"{len(left)} process(es) the server started were still running: "
            + ", ".join(_describe(p) for p in left)
        )
    killed = still_running(([root] if root is not None else []) + known)
    # psutil's own wait can take seconds to see a killed zombie it does not own: poll
    kill_all(killed, timeout=0)
    still_running(killed, timeout=5.0)
    proc.join(5)
    listening = report and server is not None and port_accepts(server.address)
    if listening:
        problems.append(
            f"port {server.address[1]} still accepted connections after the server stopped"
        )
    ready.close()
    ready.join_thread()
    if problems and report:
        verdict = " (killed now)" if killed else ""
        raise ServerError("clean shutdown failed: " + "; ".join(problems) + verdict)


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} ({proc.name()})"
    except psutil.Error:
        return f"pid {proc.pid}"


@contextmanager
def explained(server: RunningServer):
    """Add the server's own crash report (if it crashed) to a failing check's message."""
    try:
        yield
    except ServerError as exc:
        crash = server.crash_report()
        if crash and crash not in str(exc):
            raise ServerError(f"{exc}\n(the server process ended with {crash})") from None
        raise


def connection_owners(server: RunningServer, client: LineClient) -> list[int]:
    """PIDs (in the server's process tree) holding the server side of ``client``'s connection."""
    peer = client.sock.getsockname()[:2]
    owners = []
    for proc in server.processes():
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.raddr and (conn.raddr.ip, conn.raddr.port) == peer:
                    owners.append(proc.pid)
                    break
        except psutil.Error:
            pass
    return owners


def wait_workers_settled(server: RunningServer, workers: int, limit: float = 5.0) -> None:
    """Wait (at most ``limit`` s) until the server has ``workers`` processes below it and
    none of them has used CPU for 0.5 s: they are then waiting (in accept(), or for a
    task), not still starting, so a worker that never looks at ``stop`` is caught
    blocking instead of seeing ``stop`` already set when it starts."""
    deadline = time.monotonic() + scaled(limit)
    quiet_since: dict[int, tuple[float, float]] = {}
    while time.monotonic() < deadline:
        procs = server.processes()[1:]
        settled = 0
        now = time.monotonic()
        for proc in procs:
            try:
                cpu = sum(proc.cpu_times()[:2])
            except psutil.Error:
                continue
            seen, since = quiet_since.get(proc.pid, (None, now))
            if seen != cpu:
                quiet_since[proc.pid] = (cpu, now)
            elif now - since >= 0.5:
                settled += 1
        if len(procs) >= workers and settled == len(procs):
            return
        time.sleep(0.1)


__all__ = [
    "HOST",
    "RunningServer",
    "connection_owners",
    "describe_exception",
    "explained",
    "port_accepts",
    "running_server",
    "serve_with_handler",
    "wait_workers_settled",
]
