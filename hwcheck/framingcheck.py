"""Homework 3's framing check (question 2): the student's ``handle_client`` alone, in
the course's own one-client accept loop (:func:`hwcheck.tcpserver_harness.serve_with_handler`),
fed lines in pieces, lines together, long lines and a line too long. Part of the
server checks of :mod:`hwcheck.tcpcheck`, which re-exports :func:`check_framing`.
Every wait is bounded.
"""

from __future__ import annotations

import functools
import random
import time
from typing import Callable

from hwcheck.child import StudentFunction
from hwcheck.tcpclient import (
    LineClient,
    ServerError,
    answer_timeout,
    expect_answer,
    expect_line,
    short_repr,
)
from hwcheck.tcpserver_harness import (
    RunningServer,
    explained,
    running_server,
    serve_with_handler,
)

MAX_LINE = 64 * 1024


def sample_lines(count: int, seed: int, max_chars: int = 40) -> list[str]:
    """``count`` short text lines (ASCII, accents, Chinese, ß), the same for a seed."""
    rng = random.Random(seed)
    alphabet = "abcxyz ABC 0123 ,.!?-_ äöüéß 汉字你好世界 ǆﬁ"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_chars)))
            for _ in range(count)]


FRAMING_HINT = (" (one recv() is not one line: it may return part of a line, or several "
                "lines; keep the bytes in a buffer and answer each complete line ending "
                "in b'\\n', one answer per line)")


def check_framing(handle_client: Callable, big: bool = False, stream: int = 0,
                  seed: int = 0, overlong: int = 0, ctx=None) -> None:
    """``handle_client`` in the course's own one-client loop, one connection: a line sent
    in pieces, lines sent together in one piece, complete lines answered before the rest
    arrives, then (``big``) a 64 KiB line, (``stream``) that many lines cut at random
    points and, on a new connection, ``overlong`` bytes without a newline (an ERROR line
    or the connection closed). idle_timeout is 60 s: no wait of this check makes the
    handler drop the client as idle."""
    if isinstance(handle_client, StudentFunction):  # named, loaded in the server process
        handler = handle_client.wrapped("hwcheck.tcpserver_harness:serve_with_handler")
    else:
        handler = functools.partial(serve_with_handler, handle_client)
    with running_server(handler, workers=None, idle_timeout=60.0, check_stop=False,
                        ctx=ctx) as server, explained(server):
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
            _check_complete_lines_first(client)
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
            _check_overlong(server, overlong)


def _check_complete_lines_first(client: LineClient) -> None:
    """Two complete lines and the start of a third in one piece: the two are answered
    before the rest of the third is sent. When they are not, the rest is sent, and what
    comes then is shown: it tells how the handler answered."""
    client.send(b"four\nfive\nsi")
    what = "b'four\\nfive\\nsi' in one piece (the rest of the third line not sent yet): "
    try:
        first = client.read_line()
    except TimeoutError:
        client.send(b"x\n")
        late = []
        try:
            while len(late) < 3:
                line = client.read_line(timeout=answer_timeout() if not late else 1.0)
                if line is None:
                    break
                late.append(line)
        except (TimeoutError, OSError):
            pass
        came = ", ".join(short_repr(x) for x in late) or "nothing"
        cause = (" The complete lines were answered only once the buffer ended with b'\\n'"
                 " (is the whole buffer answered at once, as one response?)."
                 if late == [b"FOUR", b"FIVE", b"SIX"] else "")
        raise ServerError(
            f"{what}no answer within {client.timeout:.0f} s, although b'four' and b'five' were "
            f"complete lines; after the rest b'x\\n' was sent, {came} came.{cause} Answer "
            "every complete line as soon as it is in the buffer, one answer per line, and keep "
            "only the unfinished rest for later"
        ) from None
    if first != b"FOUR":
        raise ServerError(f"{what}expected 'FOUR', got {short_repr(first)}{FRAMING_HINT}")
    expect_line(client, b"FIVE", what, hint=FRAMING_HINT)
    client.send(b"x\n")
    expect_line(client, b"SIX", "after sending the rest b'x\\n': ", hint=FRAMING_HINT)


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


def _check_overlong(server: RunningServer, size: int) -> None:
    with LineClient(server.address) as hog:
        try:
            hog.send(b"x" * size)
        except OSError:
            pass  # the server closed the connection: allowed
        try:
            got = hog.read_line()
            ok_answer = got is None or got.startswith(b"ERROR")
            got = short_repr(got)
        except TimeoutError:
            got, ok_answer = f"no answer within {hog.timeout:.0f} s", False
        except ServerError as exc:
            got, ok_answer = str(exc), False
        except OSError as exc:  # reset: the server closed the connection
            got, ok_answer = repr(exc), True
        if not ok_answer:
            raise ServerError(
                f"{size // 1024} KiB sent without a b'\\n' (a line longer than MAX_LINE, 64 KiB) "
                "must be "
                f"answered with one ERROR line or the connection closed; got {got}"
                " (check the buffer's length after answering its complete lines)"
            )
    with LineClient(server.address) as client:
        expect_answer(client, "next please",
                      f"after a client sent {size // 1024} KiB without a newline: ")


__all__ = ["MAX_LINE", "check_framing", "sample_lines"]
