"""Homework 3's checks of ``respond(line: bytes) -> bytes`` alone, as a plain
function (no server, no socket): valid UTF-8 is upper-cased, invalid UTF-8 gets one
ERROR line. :mod:`hwcheck.hw3` runs them before the server checks of
:mod:`hwcheck.tcpcheck`; a wrong answer fails with the same :class:`ServerError`.

In the checker ``respond`` is a :class:`hwcheck.child.StudentFunction`: a driver
child calls it (:func:`drive_answers`) and sends back what it returned, and the
checker compares those bytes itself. A function given as such is called right here.
"""

from __future__ import annotations

import time
from typing import Iterator

from hwcheck.child import StudentFunction
from hwcheck.tcpclient import ServerError, answer_timeout
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


def check_respond_text(respond, job=None) -> None:
    """respond() alone, on valid UTF-8: the upper-cased text and one b"\\n"."""
    for line, got in zip(TEXT_CASES, _answers(respond, list(TEXT_CASES), job), strict=True):
        expected = TEXT_CASES[line]
        if got != expected:
            raise ServerError(f"respond({line!r}) returned {got!r}, expected {expected!r}")


def check_respond_invalid(respond, cases=INVALID_UTF8, job=None) -> None:
    """respond() alone, on invalid UTF-8: one line starting with b"ERROR"."""
    for bad, got in zip(cases, _answers(respond, list(cases), job), strict=True):
        if not (isinstance(got, bytes) and got.startswith(b"ERROR") and got.endswith(b"\n")
                and got.count(b"\n") == 1):
            raise ServerError(
                f"respond({bad!r}) (not valid UTF-8) returned {got!r}; expected one line "
                "starting with b'ERROR' and ending with b'\\n'"
            )


class _Returned:
    """What respond() returned when it was not bytes: shown by its repr."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _answers(respond, lines: list[bytes], job) -> Iterator:
    """What respond returned for each line, in order; ServerError where it raised."""
    if isinstance(respond, StudentFunction):
        answers = _answers_from_driver(respond, lines, job)
    else:
        answers = [_call(respond, line) for line in lines]
    for line, (kind, value) in zip(lines, answers, strict=True):
        if kind == "raised":
            raise ServerError(f"respond({line!r}) raised {value}")
        yield value if kind == "ok" else _Returned(str(value))


def _call(respond, line: bytes) -> tuple[str, object]:
    try:
        got = respond(line)
    except Exception as exc:  # noqa: BLE001 - said in words
        return "raised", describe_exception(exc)
    return ("ok", bytes(got)) if isinstance(got, bytes) else ("returned", repr(got)[:200])


def _answers_from_driver(respond: StudentFunction, lines: list[bytes], job) -> list:
    from hwcheck import driving

    deadline = min(job.deadline, time.monotonic() + answer_timeout())
    driven = driving.run_in_driver(job, "hwcheck.respondcheck:drive_answers",
                                   {"lines": lines}, "your respond", deadline=deadline)
    answers = (driven.result or {}).get("answers")
    if driven.result is None or not isinstance(answers, list) or len(answers) != len(lines) \
            or not all(isinstance(a, list) and len(a) == 2 for a in answers):
        words = driven.problems[0] if driven.problems else "no answers came back"
        raise ServerError(f"respond() could not be checked on its own: {words}")
    return answers


def drive_answers(state, lines) -> dict:
    """In the driver: respond() on each line (what it returned, or that it raised)."""
    return {"answers": [list(_call(state.module.respond, line)) for line in lines]}


__all__ = ["INVALID_UTF8", "TEXT_CASES", "check_respond_invalid", "check_respond_text"]
