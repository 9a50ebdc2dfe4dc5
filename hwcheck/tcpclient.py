"""Homework 3's checks talking to the server under test: a line client with a
deadline on every read, and the answer checks that fail in words for students.

:class:`ServerError` is what every hw3 check raises when the server misbehaves
(:mod:`helpers.tcpcheck` has the checks, :mod:`helpers.tcpserver_harness` runs the
server); :func:`scaled` and :func:`answer_timeout` are the time limits they share,
stretched on a busy grading machine by HWCHECK_TIME_SCALE.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

IO_TIMEOUT = 10.0  # one answer to one client
TIME_SCALE_ENV = "HWCHECK_TIME_SCALE"  # the same knob as the hw1/hw2 checks
# struct linger {on, 0 s}: close() then resets the connection (RST) instead of closing it
_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


def scaled(seconds: float) -> float:
    """``seconds`` times HWCHECK_TIME_SCALE (a busy grading machine sets it to 2)."""
    try:
        return seconds * max(0.05, float(os.environ.get(TIME_SCALE_ENV, "1")))
    except ValueError:
        return seconds


def answer_timeout() -> float:
    """How long a client waits for one answer: IO_TIMEOUT, scaled."""
    return scaled(IO_TIMEOUT)


class ServerError(AssertionError):
    """The server under test misbehaved; the message says how, in words for students.

    In a notebook it shows as its message only (``_render_traceback_``), not as a
    traceback through the checker's code; the cell still fails."""

    def _render_traceback_(self) -> list[str]:
        return ["The server is not right yet:", *str(self).splitlines()]


class LineClient:
    """A blocking line client with a deadline on every read.

    ``read_line()`` returns the next answer line without its b"\\n", None when the
    server closed the connection, and raises :class:`TimeoutError` when nothing
    complete arrived within ``timeout`` seconds.
    """

    def __init__(self, address: tuple[str, int], timeout: float | None = None):
        self.timeout = answer_timeout() if timeout is None else timeout
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
                    raise ServerError("the server closed the connection mid-line after "
                                      f"{short_repr(self._buffer)}")
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

    def reset(self) -> None:
        """Close with a reset (RST) instead of a normal close (FIN)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.close()

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
            f"{what}the connection failed while sending {short_repr(raw)}: {exc!r}"
        ) from None
    expect_line(client, expected, what, asked=raw)


def expect_line(
    client: LineClient, expected: bytes, what: str = "", asked: bytes | None = None,
    hint: str = "",
) -> None:
    """Read one answer line and fail in words unless it is ``expected``."""
    asked_text = f" to {short_repr(asked)}" if asked is not None else ""
    try:
        got = client.read_line()
    except TimeoutError:
        raise ServerError(
            f"{what}no answer{asked_text} within {client.timeout:.0f} s "
            f"(expected {short_repr(expected)}){hint}"
        ) from None
    except OSError as exc:
        raise ServerError(f"{what}the connection failed while waiting for an answer{asked_text}: "
                          f"{exc!r}") from None
    if got is None:
        raise ServerError(
            f"{what}the server closed the connection instead of answering{asked_text or ''} "
            f"(expected {short_repr(expected)})"
        )
    if got != expected:
        raise ServerError(f"{what}expected {short_repr(expected)}{asked_text}, "
                          f"got {short_repr(got)}{hint}")


def short_repr(data: bytes | None, limit: int = 60) -> str:
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



__all__ = [
    "IO_TIMEOUT",
    "LineClient",
    "ServerError",
    "answer_timeout",
    "expect_answer",
    "expect_line",
    "scaled",
    "short_repr",
]
