"""Homework 3's checks talking to the server under test: the course's line client
(:mod:`courselib.lineclient`) with the checks' time limit, and the answer checks
that fail in words for students.

:class:`ServerError` is what every hw3 check raises when the server misbehaves
(:mod:`hwcheck.tcpcheck` has the checks, :mod:`hwcheck.tcpserver_harness` runs the
server); :func:`answer_timeout` is the time limit they share, stretched on a busy
grading machine by HWCHECK_TIME_SCALE (:mod:`hwcheck.limits`).
"""

from __future__ import annotations

from courselib import lineclient
from courselib.lineclient import short_repr
from hwcheck.limits import scaled

IO_TIMEOUT = 10.0  # one answer to one client


def answer_timeout() -> float:
    """How long a client waits for one answer: IO_TIMEOUT, scaled."""
    return scaled(IO_TIMEOUT)


class ServerError(AssertionError):
    """The server under test misbehaved; the message says how, in words for students
    (the runner reports it as the question's problem).

    Where it reaches a notebook (the hw3 notebook's demo cells run
    :func:`hwcheck.tcpserver_harness.running_server` in the kernel) it shows as its
    message only (``_render_traceback_``), not as a traceback through the course's code."""

    def _render_traceback_(self) -> list[str]:
        return ["The server is not right yet:", *str(self).splitlines()]


class LineClient(lineclient.LineClient):
    """The course's line client (:class:`courselib.lineclient.LineClient`) as the checks
    use it: it waits :func:`answer_timeout` for an answer by default, and a server that
    closes the connection mid-line fails with :class:`ServerError`."""

    mid_line_error = ServerError

    def __init__(self, address: tuple[str, int], timeout: float | None = None):
        super().__init__(address, answer_timeout() if timeout is None else timeout)


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
