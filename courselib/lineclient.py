"""A client for a line protocol on TCP: every request and every answer is one line
of UTF-8 ending in b"\\n" (homework 3's upper-casing server, lecture 06's servers).

One client for every audience: the homework 3 checks (``hwcheck``) talk to the
student's server with :class:`LineClient`, and a student tries a server by hand with
:func:`ask` in a notebook or this module in a terminal::

    ask(("127.0.0.1", port), ["hello", "abc汉字ß"])      # -> ['HELLO', 'ABC汉字SS']
    python -m courselib.lineclient 127.0.0.1 PORT       # type lines; Ctrl-D ends

Every read has a deadline: a server that never answers raises ``TimeoutError``
instead of hanging its client.
"""

from __future__ import annotations

import socket
import struct
import sys
import time

DEFAULT_TIMEOUT = 5.0
# struct linger {on, 0 s}: close() then resets the connection (RST) instead of closing it
_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


class ClosedMidLine(ConnectionError):
    """The server closed the connection after part of a line."""


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


class LineClient:
    """A blocking line client with a deadline on every read.

    ``read_line()`` returns the next answer line without its b"\\n", None when the
    server closed the connection, and raises ``TimeoutError`` when nothing complete
    arrived within ``timeout`` seconds, ``mid_line_error`` (a class attribute, so a
    caller can say it in its own words) when the server closed after part of a line.
    """

    mid_line_error: type[Exception] = ClosedMidLine

    def __init__(self, address: tuple[str, int], timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection(address, timeout=timeout)
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
                    raise self.mid_line_error("the server closed the connection mid-line after "
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

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ask(address: tuple[str, int], lines: list[str], timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Send each line on one connection and return the answers, in order.

    Raises ``TimeoutError`` when an answer takes longer than ``timeout`` seconds,
    ``ConnectionError`` when the server closes the connection before answering.
    """
    answers = []
    with LineClient(address, timeout) as client:
        for line in lines:
            answer = client.ask(line)
            if answer is None:
                raise ConnectionError(f"the server closed the connection before answering {line!r}")
            answers.append(answer.decode("utf-8", errors="replace"))
    return answers


def main(argv: list[str] | None = None, prog: str = "python -m courselib.lineclient") -> int:
    """Type lines, read the answers (a terminal session with a line server)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(f"usage: {prog} HOST PORT", file=sys.stderr)
        return 2
    with LineClient((argv[0], int(argv[1]))) as client:
        for line in sys.stdin:
            try:
                answer = client.ask(line.rstrip("\n"))
            except (TimeoutError, ConnectionError) as exc:
                answer, why = None, f" ({exc})"
            else:
                why = ""
            if answer is None:
                print(f"(the server closed the connection{why})", file=sys.stderr)
                return 1
            print(answer.decode("utf-8", errors="replace"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
