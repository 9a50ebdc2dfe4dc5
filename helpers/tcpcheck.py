"""Grading support for homework 3 (the upper-casing TCP server): a bounded server
runner, line clients with timeouts, and the checks the homework's test cells call.

Every wait here is bounded. The server under test runs in a child process that
:func:`running_server` starts and, whatever happens, stops: it sets the server's
``stop`` event, waits a bounded time, then kills the server and every process it
started, and fails the check if anything had to be killed or the port still
accepts connections. Everything binds and connects on 127.0.0.1 only.

The server API these checks expect (see ``source/hw3/hw3.ipynb``)::

    serve(address, workers, stop, ready, idle_timeout=5.0)   # blocks until stop is set
    respond(line: bytes) -> bytes                             # one answer line
"""

from __future__ import annotations

import socket
import time
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from queue import Empty
from typing import Callable, Iterator

import psutil

from helpers.procs import kill_all
from helpers.startmethod import context

HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # spawn on a loaded 2-core machine: a pool can take seconds to start
STOP_TIMEOUT = 8.0  # from ``stop.set()`` to the server process having exited
IO_TIMEOUT = 10.0  # one answer to one client
MAX_LINE = 64 * 1024


class ServerError(AssertionError):
    """The server under test misbehaved; the message says how, in words for students."""


@dataclass
class _Failure:
    """What the server process sends back instead of its address when serve() raises."""

    text: str


# --------------------------------------------------------------------------- clients


class LineClient:
    """A blocking line client with a deadline on every read.

    ``read_line()`` returns the next answer line without its b"\\n", None when the
    server closed the connection, and raises :class:`TimeoutError` when nothing
    complete arrived within ``timeout`` seconds.
    """

    def __init__(self, address: tuple[str, int], timeout: float | None = None):
        self.timeout = IO_TIMEOUT if timeout is None else timeout
        self.sock = socket.create_connection(address, timeout=self.timeout)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_line(self, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.sock.sendall(data + b"\n")

    def read_line(self, timeout: float | None = None) -> bytes | None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete answer line in time")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no complete answer line in time") from None
            except ConnectionResetError:
                data = b""
            if not data:
                if self._buffer:
                    raise ServerError(
                        f"the server closed the connection mid-line after {_short(self._buffer)}"
                    )
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def ask(self, text: str | bytes, timeout: float | None = None) -> bytes | None:
        """Send one line and return the answer line (no b"\\n"), None if the server closed."""
        self.send_line(text)
        return self.read_line(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "LineClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def expect_answer(client: LineClient, text: str | bytes, what: str = "") -> None:
    """Send ``text`` and fail with a clear message unless the answer is its upper-case."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    expected = raw.decode("utf-8").upper().encode("utf-8")
    try:
        answer = client.ask(raw)
    except TimeoutError:
        raise ServerError(
            f"{what}no answer to {_short(raw)} within {client.timeout:.0f} s"
        ) from None
    except OSError as exc:
        raise ServerError(
            f"{what}the connection failed while asking {_short(raw)}: {exc!r}"
        ) from None
    if answer is None:
        raise ServerError(
            f"{what}the server closed the connection instead of answering {_short(raw)}"
        )
    if answer != expected:
        raise ServerError(
            f"{what}asked {_short(raw)}, expected {_short(expected)}, got {_short(answer)}"
        )


def _short(data: bytes | None, limit: int = 60) -> str:
    if data is None:
        return "the connection closed"
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


# --------------------------------------------------------------------------- the runner


def _server_main(serve, address, workers, stop, ready, idle_timeout) -> None:
    """Body of the server process: run ``serve`` and report an exception in words."""
    try:
        serve(address, workers, stop, ready, idle_timeout=idle_timeout)
    except BaseException:
        ready.put(_Failure(traceback.format_exc(limit=-3)))
        raise SystemExit(1) from None


@dataclass
class RunningServer:
    """A server started by :func:`running_server`."""

    address: tuple[str, int]
    process: object  # multiprocessing Process of the server
    workers: int
    descendants: dict[int, psutil.Process] = field(default_factory=dict)

    def processes(self) -> list[psutil.Process]:
        """The server process and every process below it, as they are now."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def remember_descendants(self) -> None:
        for proc in self.processes()[1:]:
            self.descendants.setdefault(proc.pid, proc)


def _kill_all(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = _wait_gone(procs, timeout=0)
    kill_all(alive)
    return alive


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.Error:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


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
    workers: int = 2,
    idle_timeout: float = 5.0,
    start_timeout: float | None = None,
    stop_timeout: float | None = None,
) -> Iterator[RunningServer]:
    """Start ``serve`` in a child process on 127.0.0.1 (free port), yield it, stop it.

    On leaving the block the server's ``stop`` event is set; if the server process
    has not exited within ``stop_timeout`` seconds, or any process it started is
    still running, or the port still accepts connections, everything is killed and
    :class:`ServerError` says what was left.
    """
    start_timeout = START_TIMEOUT if start_timeout is None else start_timeout
    stop_timeout = STOP_TIMEOUT if stop_timeout is None else stop_timeout
    ctx = context()
    ok = False
    stop = ctx.Event()
    ready = ctx.Queue()
    proc = ctx.Process(
        target=_server_main,
        args=(serve, (HOST, 0), workers, stop, ready, idle_timeout),
        name="hw3-server",
    )
    proc.start()
    server = None
    try:
        address = _wait_ready(proc, ready, start_timeout)
        server = RunningServer(address=address, process=proc, workers=workers)
        server.remember_descendants()
        yield server
        ok = True
    finally:
        stop.set()
        # When the block failed, its error is the one to show; clean up all the same.
        _stop_and_check(proc, server, ready, stop_timeout, report=ok)


def _wait_ready(proc, ready, start_timeout: float) -> tuple[str, int]:
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            message = ready.get(timeout=0.2)
            break
        except Empty:
            pass
        if not proc.is_alive():
            try:  # the failure report may still be in the pipe
                message = ready.get(timeout=1.0)
                break
            except Empty:
                raise ServerError(
                    f"the server process exited (code {proc.exitcode}) without putting "
                    "its address on `ready`"
                ) from None
        if time.monotonic() >= deadline:
            raise ServerError(
                f"serve() did not put its address on `ready` within {start_timeout:.0f} s"
            )
    if isinstance(message, _Failure):
        if "NotImplementedError" in message.text.strip().splitlines()[-1]:
            raise ServerError(
                "serve() (or a function it calls) still raises NotImplementedError: replace "
                "`# YOUR CODE HERE` and `raise NotImplementedError()` in the %%writefile cell, "
                "then run that cell and the next one again"
            )
        raise ServerError(f"serve() raised an exception:\n{message.text}")
    try:
        host, port = message
        address = (str(host), int(port))
    except (TypeError, ValueError):
        raise ServerError(f"serve() put {message!r} on `ready`; expected (host, port)") from None
    if port == 0:
        raise ServerError(
            "serve() reported port 0: put listener.getsockname() on `ready`, after bind()"
        )
    return address


def _stop_and_check(proc, server, ready, stop_timeout: float, report: bool) -> None:
    """Stop the server (bounded), kill what is left, fail if anything was left."""
    root = None
    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        pass
    if server is not None:
        server.remember_descendants()
    known = list(server.descendants.values()) if server else []
    if root is not None:
        try:
            known += [
                p for p in root.children(recursive=True) if p.pid not in {k.pid for k in known}
            ]
        except psutil.Error:
            pass
    proc.join(stop_timeout)
    problems = []
    if proc.is_alive():
        problems.append(
            f"the server process did not return within {stop_timeout:.0f} s after stop was set "
            "(is a worker blocked in accept() or recv() with no timeout, so it never checks "
            "stop? is serve() waiting for a pool that never ends?)"
        )
    left = _wait_gone(known, timeout=3.0 if not problems else 0)
    if left:
        problems.append(
            f"{len(left)} process(es) the server started were still running: "
            + ", ".join(_describe(p) for p in left)
        )
    killed = _kill_all(([root] if root is not None else []) + known)
    proc.join(5)
    listening = server is not None and port_accepts(server.address)
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


# --------------------------------------------------------------------------- the checks


def check_respond(respond: Callable[[bytes], bytes]) -> None:
    """respond() alone: upper-cases UTF-8 text, answers invalid UTF-8 with an ERROR line."""
    cases = {b"hello": b"HELLO\n", "abc汉字ß".encode(): "ABC汉字SS".encode() + b"\n", b"": b"\n"}
    for line, expected in cases.items():
        got = respond(line)
        assert got == expected, f"respond({line!r}) returned {got!r}, expected {expected!r}"
    for bad in (b"\xff\xfe", b"caf\xc3", "汉".encode()[:2]):
        got = respond(bad)
        assert isinstance(got, bytes) and got.startswith(b"ERROR") and got.endswith(b"\n"), (
            f"respond({bad!r}) (invalid UTF-8) returned {got!r}; expected a line starting "
            "with b'ERROR' and ending with b'\\n'"
        )
        assert got.count(b"\n") == 1, f"respond({bad!r}) returned {got!r}: one line only"


def check_round_trip(serve: Callable, workers: int = 2) -> None:
    """One client, several lines on one connection, non-ASCII, a 64 KiB line."""
    with running_server(serve, workers) as server:
        with LineClient(server.address) as client:
            for text in ["hello", "abc汉字ß", "Several words, punctuation: ok!", ""]:
                expect_answer(client, text, "one client: ")
            expect_answer(client, "ä" * (MAX_LINE // 2), "one client, a 64 KiB line: ")


def check_framing(serve: Callable, workers: int = 2) -> None:
    """Lines split across many small sends, and several lines in one send."""
    with running_server(serve, workers) as server:
        with LineClient(server.address) as client:
            data = "split line 汉字\n".encode()
            for i in range(len(data)):
                client.send(data[i : i + 1])
                time.sleep(0.002)
            _expect_line(client, "SPLIT LINE 汉字", "a line sent one byte at a time: ")
            client.send(b"one\ntwo\nthree\n")
            for word in ("ONE", "TWO", "THREE"):
                _expect_line(client, word, "three lines in one send: ")


def _expect_line(client: LineClient, expected: str, what: str) -> None:
    try:
        got = client.read_line()
    except TimeoutError:
        raise ServerError(
            f"{what}no answer within {client.timeout:.0f} s (expected {expected!r})"
        ) from None
    if got != expected.encode():
        raise ServerError(f"{what}expected {expected.encode()!r}, got {_short(got)}")


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


def check_concurrent(serve: Callable, workers: int = 3, distinct_workers: bool = False) -> None:
    """``workers`` clients connected at once, each kept open: all must be answered,
    each by a worker process of the pool (not by the server's main process)."""
    # idle_timeout=60: a server that serves one client at a time must not get to the
    # next client merely because it dropped the first one as idle.
    with running_server(serve, workers, idle_timeout=60.0) as server:
        with ExitStack() as stack:
            clients = [stack.enter_context(LineClient(server.address)) for _ in range(workers)]
            for i, client in enumerate(clients):
                client.send_line(f"client {i} says hi")
            answered, deadline = 0, time.monotonic() + IO_TIMEOUT
            for i, client in enumerate(clients):
                try:
                    got = client.read_line(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    continue
                if got != f"CLIENT {i} SAYS HI".encode():
                    raise ServerError(f"client {i} of {workers} got {got!r}")
                answered += 1
            if answered < workers:
                raise ServerError(
                    f"with a pool of {workers} workers, only {answered} of {workers} clients "
                    f"connected at the same time were answered within {IO_TIMEOUT:.0f} s: the "
                    "server seems to serve one client at a time (does it wait for a client to "
                    "finish before serving the next, e.g. pool.apply() instead of apply_async()?)"
                )
            main_pid = server.process.pid
            owners = [connection_owners(server, c) for c in clients]
            for i, pids in enumerate(owners):
                if not pids:
                    raise ServerError(f"no process of the server holds client {i}'s connection")
                if all(pid == main_pid for pid in pids):
                    raise ServerError(
                        f"client {i}'s connection is served by the server's main process "
                        f"(pid {main_pid}), not by a pool worker"
                    )
            if distinct_workers:
                served_by = {pid for pids in owners for pid in pids if pid != main_pid}
                if len(served_by) < workers:
                    raise ServerError(
                        f"{workers} open connections are held by only {len(served_by)} worker "
                        "process(es); expected one worker per connection"
                    )


def check_bad_clients(serve: Callable, workers: int = 2) -> None:
    """Invalid UTF-8 gets an ERROR line and the connection stays usable; a client that
    disconnects mid-line or resets its connection does not stop the server."""
    with running_server(serve, workers) as server:
        with LineClient(server.address) as client:
            client.send(b"caf\xc3\x28 \xff\n")
            try:
                got = client.read_line()
            except TimeoutError:
                raise ServerError(
                    f"no answer to a line of invalid UTF-8 within {IO_TIMEOUT:.0f} s"
                ) from None
            if got is None or not got.startswith(b"ERROR"):
                raise ServerError(
                    "a line of invalid UTF-8 must be answered with a line starting with "
                    f"b'ERROR'; got {'the connection closed' if got is None else _short(got)}"
                    + (
                        " (did decoding raise UnicodeDecodeError in the worker?)"
                        if got is None
                        else ""
                    )
                )
            expect_answer(client, "still here", "after an invalid line, the same connection: ")
        for _ in range(workers + 1):
            with LineClient(server.address) as rude:
                rude.send(b"half a li")  # then disconnect mid-line
        for _ in range(workers + 1):
            rude = LineClient(server.address)
            rude.send(b"reset me")
            rude.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            rude.close()  # RST instead of FIN
        for i in range(workers + 1):
            with LineClient(server.address) as client:
                expect_answer(
                    client, f"after rude client {i}", "after clients that disconnected mid-line: "
                )


def check_silent_clients(serve: Callable, workers: int = 2, idle_timeout: float = 1.0) -> None:
    """As many silent clients as workers: a client that then connects is still answered
    (the server closes connections idle for ``idle_timeout`` seconds)."""
    with running_server(serve, workers, idle_timeout=idle_timeout) as server:
        with ExitStack() as stack:
            for _ in range(workers):
                stack.enter_context(LineClient(server.address))
            time.sleep(0.2)
            with LineClient(server.address, timeout=idle_timeout + IO_TIMEOUT) as client:
                expect_answer(
                    client,
                    "anyone there?",
                    f"{workers} silent clients were connected (idle_timeout={idle_timeout} s): ",
                )


def check_overlong_line(serve: Callable, workers: int = 2) -> None:
    """A client sending 1 MiB without a newline is answered with an ERROR line or
    disconnected; the server keeps serving others."""
    with running_server(serve, workers) as server:
        with LineClient(server.address) as hog:
            try:
                hog.send(b"x" * (1024 * 1024))
            except OSError:
                pass  # the server closed the connection: allowed
            try:
                got = hog.read_line()
                ok_answer = got is None or got.startswith(b"ERROR")
            except (TimeoutError, ServerError, OSError) as exc:
                got, ok_answer = exc, isinstance(exc, OSError)
            if not ok_answer:
                raise ServerError(
                    "a 1 MiB line (longer than 64 KiB) must be answered with an ERROR line "
                    f"or the connection closed; got {got!r}"
                )
        with LineClient(server.address) as client:
            expect_answer(client, "next please", "after a client sent 1 MiB without a newline: ")


def check_shutdown(serve: Callable, workers: int = 2) -> None:
    """Setting stop while a client is connected and idle: the server closes that
    connection, returns, and leaves no process or listening socket behind."""
    client = None
    try:
        # idle_timeout=60: the server must close the idle connection itself on stop,
        # well within the runner's STOP_TIMEOUT, instead of waiting for the client.
        with running_server(serve, workers, idle_timeout=60.0) as server:
            client = LineClient(server.address)
            expect_answer(client, "before stop", "before stop: ")
        # the server has stopped (and was checked) while the client stayed connected
        client.sock.settimeout(1.0)
        try:
            tail = client.sock.recv(1)
        except OSError:
            tail = b""
        if tail:
            raise ServerError(f"after stop, the server still sent {tail!r} on an idle connection")
    finally:
        if client is not None:
            client.close()


def check_stub_free(module) -> None:
    """Fails early, in words, when the answer cell still raises NotImplementedError."""
    try:
        module.respond(b"x")
    except NotImplementedError:
        raise ServerError("respond() is not written yet (it raises NotImplementedError)") from None


__all__ = [
    "HOST",
    "LineClient",
    "RunningServer",
    "ServerError",
    "check_bad_clients",
    "check_concurrent",
    "check_framing",
    "check_overlong_line",
    "check_respond",
    "check_round_trip",
    "check_shutdown",
    "check_silent_clients",
    "connection_owners",
    "expect_answer",
    "port_accepts",
    "running_server",
]
