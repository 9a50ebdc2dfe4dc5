"""Grading support for homework 3 (the upper-casing TCP server): a bounded server
runner, line clients with timeouts, and the behaviour checks that
:mod:`helpers.hw3check` combines into the homework's questions.

Every wait here is bounded. The server under test runs in a child process that
:func:`running_server` starts and, whatever happens, stops: it sets the server's
``stop`` event, waits a bounded time, then kills the server and every process it
started (with psutil, so it works on every platform). Whether a server that had
to be killed, or left a process or a listening socket, fails the check is up to
the caller (``check_stop``): only the clean-stop question reports it, so a server
that does not stop loses those points only. Everything binds and connects on
127.0.0.1 only.

The server API these checks expect (see ``source/hw3/hw3.ipynb``)::

    respond(line: bytes) -> bytes                              # one answer line
    handle_client(conn, stop, idle_timeout)                    # one connection, line by line
    serve_one(address, stop, ready, idle_timeout=5.0)          # one process, one client at a time
    serve(address, workers, stop, ready, idle_timeout=5.0)     # a pool; blocks until stop is set
"""

from __future__ import annotations

import functools
import os
import random
import socket
import struct
import sys
import threading
import time
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Callable, Iterator

import psutil

from helpers.procs import kill_all
from helpers.startmethod import context

HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # spawn on a loaded 2-core machine: a pool can take seconds to start
STOP_TIMEOUT = 8.0  # from ``stop.set()`` to the server process having exited
QUIET_STOP_TIMEOUT = 3.0  # the same, when stopping cleanly is not what the check tests
IO_TIMEOUT = 10.0  # one answer to one client
MAX_LINE = 64 * 1024
POLL = 0.1  # the course's own one-client loop (serve_with_handler) checks stop this often
TIME_SCALE_ENV = "HWCHECK_TIME_SCALE"  # the same knob as the hw1/hw2 checks


def scaled(seconds: float) -> float:
    """``seconds`` times HWCHECK_TIME_SCALE (a busy grading machine sets it to 2)."""
    try:
        return seconds * max(0.05, float(os.environ.get(TIME_SCALE_ENV, "1")))
    except ValueError:
        return seconds


class ServerError(AssertionError):
    """The server under test misbehaved; the message says how, in words for students.

    In a notebook it shows as its message only (``_render_traceback_``), not as a
    traceback through the checker's code; the cell still fails."""

    def _render_traceback_(self) -> list[str]:
        return ["The server is not right yet:", *str(self).splitlines()]


@dataclass
class _Failure:
    """What the server process sends back on `ready` when the function it runs raises."""

    text: str  # the traceback, last frames only
    summary: str  # "`handle_client` raised UnicodeDecodeError: ... (line 12: `...`)"
    not_implemented: bool = False


# --------------------------------------------------------------------------- clients


class LineClient:
    """A blocking line client with a deadline on every read.

    ``read_line()`` returns the next answer line without its b"\\n", None when the
    server closed the connection, and raises :class:`TimeoutError` when nothing
    complete arrived within ``timeout`` seconds.
    """

    def __init__(self, address: tuple[str, int], timeout: float | None = None):
        self.timeout = scaled(IO_TIMEOUT) if timeout is None else timeout
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
    """Send ``text`` as one whole line and fail in words unless the answer is its upper-case."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    expected = raw.decode("utf-8").upper().encode("utf-8")
    try:
        client.send_line(raw)
    except OSError as exc:
        raise ServerError(
            f"{what}the connection failed while sending {_short(raw)}: {exc!r}"
        ) from None
    expect_line(client, expected, what, asked=raw)


def expect_line(
    client: LineClient, expected: bytes, what: str = "", asked: bytes | None = None,
    hint: str = "",
) -> None:
    """Read one answer line and fail in words unless it is ``expected``."""
    asked_text = f" to {_short(asked)}" if asked is not None else ""
    try:
        got = client.read_line()
    except TimeoutError:
        raise ServerError(
            f"{what}no answer{asked_text} within {client.timeout:.0f} s "
            f"(expected {_short(expected)}){hint}"
        ) from None
    except OSError as exc:
        raise ServerError(f"{what}the connection failed while waiting for an answer{asked_text}: "
                          f"{exc!r}") from None
    if got is None:
        raise ServerError(
            f"{what}the server closed the connection instead of answering{asked_text or ''} "
            f"(expected {_short(expected)})"
        )
    if got != expected:
        raise ServerError(f"{what}expected {_short(expected)}{asked_text}, got {_short(got)}{hint}")


def _short(data: bytes | None, limit: int = 60) -> str:
    """``data`` for a message: as text when it is UTF-8 (easier to read), else as bytes."""
    if data is None:
        return "the connection closed"
    try:
        shown = data.decode("utf-8")
    except UnicodeDecodeError:
        shown = data
    if len(shown) <= limit:
        return repr(shown)
    return f"{shown[:limit]!r}... ({len(data)} bytes)"


# --------------------------------------------------------------------------- the runner


def _server_main(serve, address, workers, stop, ready, idle_timeout) -> None:
    """Body of the server process: run ``serve`` and report an exception in words.

    ``workers=None`` runs a single-process server, ``serve(address, stop, ready,
    idle_timeout=...)``; otherwise ``serve(address, workers, stop, ready, idle_timeout=...)``.
    """
    try:
        if workers is None:
            serve(address, stop, ready, idle_timeout=idle_timeout)
        else:
            serve(address, workers, stop, ready, idle_timeout=idle_timeout)
    except BaseException as exc:  # noqa: BLE001 - reported to the student in words
        ready.put(_Failure(traceback.format_exc(limit=-3), describe_exception(exc),
                           isinstance(exc, NotImplementedError)))
        raise SystemExit(1) from None


def describe_exception(exc: BaseException) -> str:
    """``exc`` in one line: which function of the student's code raised what, where."""
    frames = [
        fs for fs in traceback.extract_tb(exc.__traceback__)
        if "helpers" not in Path(fs.filename).parts and "multiprocessing" not in fs.filename
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
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

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
        except (Empty, OSError, ValueError):
            return None
        return message.summary if isinstance(message, _Failure) else None


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
    workers: int | None = 2,
    idle_timeout: float = 5.0,
    start_timeout: float | None = None,
    stop_timeout: float | None = None,
    check_stop: bool = True,
) -> Iterator[RunningServer]:
    """Start ``serve`` in a child process on 127.0.0.1 (free port), yield it, stop it.

    ``workers=None``: ``serve`` is a one-process server, ``serve(address, stop, ready,
    idle_timeout=...)``. On leaving the block the server's ``stop`` event is set; if the
    server process has not exited within ``stop_timeout`` seconds, or any process it
    started is still running, or the port still accepts connections, everything is
    killed, and with ``check_stop`` :class:`ServerError` says what was left. Without
    it the server gets only QUIET_STOP_TIMEOUT seconds before it is killed, silently.
    """
    start_timeout = scaled(START_TIMEOUT) if start_timeout is None else start_timeout
    if stop_timeout is None:
        stop_timeout = scaled(STOP_TIMEOUT if check_stop else QUIET_STOP_TIMEOUT)
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
    if isinstance(fn, functools.partial):
        return getattr(fn.args[0], "__name__", "the handler") if fn.args else "the server"
    return getattr(fn, "__name__", "serve")


def _wait_ready(proc, ready, start_timeout: float, name: str) -> tuple[str, int]:
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
                f"{name}() did not put its address on `ready` within {start_timeout:.0f} s"
            )
    if isinstance(message, _Failure):
        if message.not_implemented:
            raise ServerError(
                f"{name}() (or a function it calls) still raises NotImplementedError: replace "
                "`# YOUR CODE HERE` and `raise NotImplementedError()` in the %%writefile cell, "
                "then run that cell and the next one again"
            )
        raise ServerError(f"{name}() raised an exception: {message.summary}")
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
    left = _wait_gone(known, timeout=3.0 if not problems and report else 0)
    if left:
        problems.append(
            f"{len(left)} process(es) the server started were still running: "
            + ", ".join(_describe(p) for p in left)
        )
    killed = _kill_all(([root] if root is not None else []) + known)
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


# --------------------------------------------------------------------------- the checks
# Each check tests one property and drives the server only with what earlier
# questions already required: the concurrency and bad-client checks send each line
# whole, in one send, and wait for its answer, so a server with wrong framing still
# passes them; only check_shutdown (and check_bad_clients) report a server that
# does not stop cleanly.

TEXT_CASES = {
    b"hello": b"HELLO\n",
    "abc汉字ß".encode(): "ABC汉字SS\n".encode(),
    b"": b"\n",
    b"a\r": b"A\r\n",  # a carriage return is part of the line
    "ǆemal ﬁ".encode(): "ǄEMAL FI\n".encode(),
}
INVALID_UTF8 = (b"\xff\xfe", b"caf\xc3", "汉".encode()[:2], b"\xed\xa0\x80", b"\xc0\xaf",
                b"ok \x80")


def check_respond_text(respond: Callable[[bytes], bytes]) -> None:
    """respond() alone, on valid UTF-8: the upper-cased text and one b"\\n"."""
    for line, expected in TEXT_CASES.items():
        got = _call_respond(respond, line)
        if got != expected:
            raise ServerError(f"respond({line!r}) returned {got!r}, expected {expected!r}")


def check_respond_invalid(respond: Callable[[bytes], bytes], cases=INVALID_UTF8) -> None:
    """respond() alone, on invalid UTF-8: one line starting with b"ERROR"."""
    for bad in cases:
        got = _call_respond(respond, bad)
        if not (isinstance(got, bytes) and got.startswith(b"ERROR") and got.endswith(b"\n")
                and got.count(b"\n") == 1):
            raise ServerError(
                f"respond({bad!r}) (not valid UTF-8) returned {got!r}; expected one line "
                "starting with b'ERROR' and ending with b'\\n'"
            )


def _call_respond(respond, line: bytes):
    try:
        return respond(line)
    except Exception as exc:  # noqa: BLE001 - said in words
        raise ServerError(f"respond({line!r}) raised {describe_exception(exc)}") from None


def sample_lines(count: int, seed: int, max_chars: int = 40) -> list[str]:
    """``count`` short text lines (ASCII, accents, Chinese, ß), the same for a seed."""
    rng = random.Random(seed)
    alphabet = "abcxyz ABC 0123 ,.!?-_ äöüéß 汉字你好世界 ǆﬁ"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_chars)))
            for _ in range(count)]


def check_line_at_a_time(serve_one: Callable, clients: int = 2, lines: int = 4,
                         seed: int = 0) -> None:
    """A one-process server: ``clients`` clients one after the other, each sending
    ``lines`` short lines one at a time (each line whole, in one send, and its answer
    awaited before the next). Stopping cleanly is not checked here."""
    texts = (["hello", "abc汉字ß", "Several words, punctuation: ok!", ""]
             + sample_lines(max(0, lines - 4), seed))[:lines]
    with running_server(serve_one, workers=None, check_stop=False) as server, explained(server):
        for i in range(clients):
            who = f"client {i + 1} of {clients} (one after the other): "
            try:
                try:
                    client = LineClient(server.address)
                except OSError as exc:
                    raise ServerError(f"{who}could not connect: {exc!r}") from None
                with client:
                    for text in texts:
                        expect_answer(client, text, who)
            except ServerError as exc:
                if i == 0:
                    raise
                raise ServerError(
                    f"{exc}\nThe first client was served, so the server does not go back to "
                    "accept() after a client leaves: serve_one must loop, one client after "
                    "the other, until stop is set (and handle_client must return when "
                    "recv() returns b'')."
                ) from None


FRAMING_HINT = (" (one recv() is not one line: it may return part of a line, or several "
                "lines; keep the bytes in a buffer and answer each complete line ending "
                "in b'\\n', one answer per line)")


def check_framing(handle_client: Callable, big: bool = False, stream: int = 0,
                  seed: int = 0, overlong: bool = False) -> None:
    """``handle_client`` in the course's own one-client loop, one connection: a line sent
    in pieces, lines sent together in one piece, complete lines answered before the rest
    arrives, then (hidden) a 64 KiB line, a stream cut at random points and, on a new
    connection, 1 MiB without a newline (an ERROR line or the connection closed)."""
    handler = functools.partial(serve_with_handler, handle_client)
    with running_server(handler, workers=None, check_stop=False) as server, explained(server):
        with LineClient(server.address) as client:
            data = "split line 汉字\n".encode()
            for i in range(len(data)):
                client.send(data[i : i + 1])
                time.sleep(0.002)
            what = "a line sent one byte at a time: "
            expect_line(client, "SPLIT LINE 汉字".encode(), what, hint=FRAMING_HINT)
            client.send(b"one\ntwo\nthree\n")
            for word in (b"ONE", b"TWO", b"THREE"):
                expect_line(client, word, "three lines sent together in one piece: ",
                            hint=FRAMING_HINT)
            client.send(b"four\nfive\nsi")
            what = "b'four\\nfive\\nsi' in one piece (the rest of the third line not sent yet): "
            for word in (b"FOUR", b"FIVE"):
                expect_line(client, word, what, hint=(
                    " (answer every complete line as soon as it is in the buffer, and keep "
                    "the unfinished rest for later)"))
            client.send(b"x\n")
            expect_line(client, b"SIX", "after sending the rest b'x\\n': ", hint=FRAMING_HINT)
            if big:
                line = "ä" * (MAX_LINE // 2)
                client.send(line.encode() + b"\n")
                expect_line(client, line.upper().encode(), "a 64 KiB line (it arrives in "
                            "several recv() pieces): ", hint=FRAMING_HINT)
            if stream:
                _check_stream(client, stream, seed)
            expect_answer(client, "end", "the answer after all the others (an extra or missing "
                          "answer line shows here): ")
        if overlong:
            _check_overlong(server)


def _check_stream(client: LineClient, count: int, seed: int) -> None:
    rng = random.Random(seed)
    texts = sample_lines(count, seed)
    data = "".join(t + "\n" for t in texts).encode()
    pos = 0
    while pos < len(data):  # cut at random points, multi-byte characters included
        step = rng.randint(1, 64)
        client.send(data[pos : pos + step])
        pos += step
        if rng.random() < 0.1:
            time.sleep(0.001)
    what = f"{count} lines sent as one stream cut at random points: "
    for i, text in enumerate(texts):
        expect_line(client, text.upper().encode(), f"{what}line {i + 1}: ", hint=FRAMING_HINT)


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


def check_concurrent(serve: Callable, workers: int = 3, rounds: int = 1,
                     distinct_workers: bool = False) -> None:
    """``workers`` clients connected at once, each kept open: all must be answered,
    each by a worker process of the pool (not by the server's main process).
    Each line is sent whole; stopping cleanly is not checked here."""
    io_timeout = scaled(IO_TIMEOUT)
    # idle_timeout=60: a server that serves one client at a time must not get to the
    # next client merely because it dropped the first one as idle.
    with running_server(serve, workers, idle_timeout=60.0, check_stop=False) as server, \
            explained(server), ExitStack() as stack:
        clients = [stack.enter_context(LineClient(server.address)) for _ in range(workers)]
        for r in range(rounds):
            for i, client in enumerate(clients):
                client.send_line(f"client {i} says hi, round {r}")
            answered, deadline = 0, time.monotonic() + io_timeout
            for i, client in enumerate(clients):
                try:
                    got = client.read_line(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    continue
                expected = f"CLIENT {i} SAYS HI, ROUND {r}".encode()
                if got != expected:
                    raise ServerError(f"client {i + 1} of {workers} (all connected at once) "
                                      f"expected {_short(expected)}, got {_short(got)}")
                answered += 1
            if answered < workers:
                raise ServerError(
                    f"with a pool of {workers} workers, only {answered} of {workers} clients "
                    f"connected at the same time were answered within {io_timeout:.0f} s: the "
                    "server seems to serve one client at a time (does it wait for a client to "
                    "finish before serving the next, e.g. pool.apply() instead of apply_async()?"
                    " do all the workers run an accept loop?)"
                )
        main_pid = server.process.pid
        owners = [connection_owners(server, c) for c in clients]
        for i, pids in enumerate(owners):
            if not pids:
                raise ServerError(f"no process of the server holds client {i + 1}'s connection")
            if all(pid == main_pid for pid in pids):
                raise ServerError(
                    f"client {i + 1}'s connection is held by the server's main process "
                    f"(pid {main_pid}), not by a pool worker: each connection must be served "
                    "by a worker process of the Pool"
                )
        if distinct_workers:
            served_by = {pid for pids in owners for pid in pids if pid != main_pid}
            if len(served_by) < workers:
                raise ServerError(
                    f"{workers} open connections are held by only {len(served_by)} worker "
                    "process(es); expected one worker per connection"
                )


def check_worker_reuse(serve: Callable, workers: int = 4, clients: int = 8,
                       lines: int = 10) -> None:
    """More clients than workers, all starting at once, each sending ``lines`` lines
    (whole, one at a time) and leaving: every one is answered (a worker goes back to
    accepting after a client leaves), and at most ``workers`` processes served them
    (a pool, not a process per client)."""
    io_timeout = scaled(IO_TIMEOUT)
    # each waiting client may wait for every client before it in its worker's queue
    timeout = io_timeout * (1 + clients // workers)
    errors: list[str] = []
    owners: list[int] = []

    def one_client(i: int, server: RunningServer) -> None:
        try:
            with LineClient(server.address, timeout=timeout) as client:
                expect_answer(client, f"client {i} line 0", "")
                owners.extend(connection_owners(server, client))
                for k in range(1, lines):
                    expect_answer(client, f"client {i} line {k}", "")
        except (ServerError, OSError) as exc:
            errors.append(f"client {i + 1}: {exc}")

    with running_server(serve, workers, idle_timeout=5.0, check_stop=False) as server, \
            explained(server):
        threads = [threading.Thread(target=one_client, args=(i, server), daemon=True)
                   for i in range(clients)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout * 2
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            errors.append(f"clients still waiting after {timeout * 2:.0f} s")
        if errors:
            raise ServerError(
                f"{clients} clients for a pool of {workers} workers, each sending {lines} "
                f"lines and leaving: {len(errors)} failed; first: {errors[0]} (does each worker "
                "go back to accept() after its client leaves?)"
            )
        served_by = set(owners) - {server.process.pid}
        if len(served_by) > workers:
            raise ServerError(
                f"{clients} clients of a pool of {workers} workers were served by "
                f"{len(served_by)} different processes: each connection must be served by one "
                "of the pool's workers (not by a new process per client)"
            )


# struct linger {on, 0 s}: close() then resets the connection (RST) instead of closing it
_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


def check_bad_clients(serve: Callable, workers: int = 2, rude: int = 3,
                      idle_timeout: float = 1.0, invalid=(b"caf\xc3\x28 \xff",)) -> None:
    """One server: invalid UTF-8 gets an ERROR line and the connection stays usable;
    clients that disconnect mid-line or reset the connection do not stop it; as many
    silent clients as workers are closed after ``idle_timeout`` seconds so a new client
    is still answered. Each line is sent whole. Stopping cleanly is checked too."""
    io_timeout = scaled(IO_TIMEOUT)
    with running_server(serve, workers, idle_timeout=idle_timeout) as server, explained(server):
        with LineClient(server.address) as client:
            for bad in invalid:
                client.send(bad + b"\n")
                try:
                    got = client.read_line()
                except TimeoutError:
                    raise ServerError(
                        f"no answer to a line of invalid UTF-8 ({_short(bad)}) within "
                        f"{io_timeout:.0f} s"
                    ) from None
                if got is None or not got.startswith(b"ERROR"):
                    raise ServerError(
                        f"a line of invalid UTF-8 ({_short(bad)}) must be answered with a line "
                        f"starting with b'ERROR'; got {_short(got)}"
                        + (" (did decoding raise UnicodeDecodeError in the worker?)"
                           if got is None else "")
                    )
            expect_answer(client, "still here", "after an invalid line, the same connection: ")
        for _ in range(rude):
            with LineClient(server.address) as rude_client:
                rude_client.send(b"half a li")  # then disconnect mid-line
        for _ in range(rude):
            rude_client = LineClient(server.address)
            rude_client.send(b"reset me")
            rude_client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            rude_client.close()  # RST instead of FIN
        for i in range(workers + 1):
            with LineClient(server.address) as client:
                expect_answer(client, f"after rude client {i}",
                              f"after {2 * rude} clients that disconnected mid-line: ")
        with ExitStack() as stack:
            for _ in range(workers):
                stack.enter_context(LineClient(server.address))
            time.sleep(0.2)
            # a server serving one client at a time gets here too, one idle_timeout per client
            with LineClient(server.address,
                            timeout=(workers + 1) * idle_timeout + io_timeout) as client:
                expect_answer(
                    client, "anyone there?",
                    f"{workers} clients connected and said nothing (idle_timeout="
                    f"{idle_timeout} s), then a new client: ",
                    )


def _check_overlong(server: RunningServer) -> None:
    with LineClient(server.address) as hog:
        try:
            hog.send(b"x" * (1024 * 1024))
        except OSError:
            pass  # the server closed the connection: allowed
        try:
            got = hog.read_line()
            ok_answer = got is None or got.startswith(b"ERROR")
            got = _short(got)
        except TimeoutError:
            got, ok_answer = f"no answer within {hog.timeout:.0f} s", False
        except ServerError as exc:
            got, ok_answer = str(exc), False
        except OSError as exc:  # reset: the server closed the connection
            got, ok_answer = repr(exc), True
        if not ok_answer:
            raise ServerError(
                "1 MiB sent without a b'\\n' (a line longer than MAX_LINE, 64 KiB) must be "
                f"answered with one ERROR line or the connection closed; got {got}"
                " (check the buffer's length after answering its complete lines)"
            )
    with LineClient(server.address) as client:
        expect_answer(client, "next please", "after a client sent 1 MiB without a newline: ")


def _wait_workers_settled(server: RunningServer, workers: int, limit: float = 5.0) -> None:
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


def check_shutdown(serve: Callable, workers: int = 2, clients: int = 1) -> None:
    """Setting stop while ``clients`` clients are connected and idle (the first one
    answered once, the last one in the middle of a line): the server closes those
    connections, returns, and leaves no process and no listening socket behind.
    Only the first client needs an answer, so a server that serves one client at a
    time is not failed here for that."""
    socks: list[LineClient] = []
    try:
        # idle_timeout=60: the server must close the idle connections itself on stop,
        # well within the runner's STOP_TIMEOUT, instead of waiting for the clients.
        with running_server(serve, workers, idle_timeout=60.0) as server, explained(server):
            socks.append(LineClient(server.address))
            expect_answer(socks[0], "before stop", "before stop: ")
            _wait_workers_settled(server, workers)
            socks += [LineClient(server.address) for _ in range(clients - 1)]
            if clients > 1:
                socks[-1].send(b"half a line, then stop")
                deadline = time.monotonic() + 2.0  # let a pool's workers take them, if it will
                while time.monotonic() < deadline and not all(
                        connection_owners(server, c) for c in socks[1:]):
                    time.sleep(0.1)
        # the server has stopped (and was checked) while the clients stayed connected;
        # the first one had its answer and sent nothing since
        socks[0].sock.settimeout(1.0)
        try:
            tail = socks[0].sock.recv(1)
        except OSError:
            tail = b""
        if tail:
            raise ServerError(f"after stop, the server still sent {tail!r} on an idle connection")
    finally:
        for client in socks:
            client.close()


__all__ = [
    "HOST",
    "LineClient",
    "RunningServer",
    "ServerError",
    "check_bad_clients",
    "check_concurrent",
    "check_framing",
    "check_line_at_a_time",
    "check_respond_invalid",
    "check_respond_text",
    "check_shutdown",
    "check_worker_reuse",
    "connection_owners",
    "expect_answer",
    "port_accepts",
    "running_server",
    "serve_with_handler",
]
