"""Homework 3's checks of ``respond(line: bytes) -> bytes`` alone, as a plain
function (no server, no socket): valid UTF-8 is upper-cased, invalid UTF-8 gets one
ERROR line. :mod:`hwcheck.hw3` runs them before the server checks of
:mod:`hwcheck.tcpcheck`; a wrong answer fails with the same :class:`ServerError`.
"""

from __future__ import annotations

from typing import Callable

from hwcheck.tcpclient import ServerError
from hwcheck.tcpserver_harness import describe_exception

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


__all__ = ["INVALID_UTF8", "TEXT_CASES", "check_respond_invalid", "check_respond_text"]
