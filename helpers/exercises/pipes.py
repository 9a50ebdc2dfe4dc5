"""Self-checks for lecture 02's exercises (``Pipe``, 管道): each runs the
student's function in a child process and returns, in plain words, what is
wrong or that it is right. They never raise on a wrong answer, and every wait
on the child has a timeout.
"""

from __future__ import annotations

from courselib.procs import finish
from courselib.startmethod import context


def check_square_server(square_server, ctx=None, numbers=(2, 3, 4, 10)) -> str:
    """Exercise: ``square_server(conn)`` answers each number with its square on the
    same end and stops on ``None``. Returns a message in plain words; never raises
    on a wrong answer, and stops every process it started."""
    ctx = ctx or context()
    numbers = list(numbers)
    mine, theirs = ctx.Pipe()
    child = ctx.Process(target=square_server, args=(theirs,))
    child.start()
    theirs.close()
    replies, problem = [], None
    try:
        for x in numbers:
            mine.send(x)
            if not mine.poll(10):
                problem = f"no reply to {x} within 10 s: does the server send back after each recv()?"
                break
            replies.append(mine.recv())
        mine.send(None)
    except (EOFError, OSError):
        pass  # the server closed its end early; reported below
    if finish([child], timeout=5):
        problem = problem or "the server did not stop after None: does it return when it receives None?"
    mine.close()
    if problem:
        return problem
    if not replies:
        return ("No reply came back: the server closed its end without answering. "
                "Does it loop over conn.recv() and send each square with conn.send() on the same end?")
    if replies != [x * x for x in numbers]:
        return f"Sent {numbers[:len(replies)]}, got back {replies}: expected {[x * x for x in numbers]}"
    if child.exitcode != 0:
        return f"The replies are right, but the server crashed (exit code {child.exitcode})."
    return f"Right: {numbers} came back as {replies}, and the server stopped on None."


def check_sum_until_eof(sum_until_eof, ctx=None, patience: float = 10) -> str:
    """Exercise: ``sum_until_eof(recv_end, send_end, report)`` adds up 1 to 10 until
    EOFError and sends the total through ``report``. Waits at most ``patience``
    seconds for the total. Returns a message in plain words; never raises on a wrong
    answer."""
    ctx = ctx or context()
    recv_end, send_end = ctx.Pipe(duplex=False)
    result, report = ctx.Pipe(duplex=False)
    child = ctx.Process(target=sum_until_eof, args=(recv_end, send_end, report))
    child.start()
    recv_end.close()
    report.close()
    try:
        for i in range(1, 11):
            send_end.send(i)
    except BrokenPipeError:
        pass  # the child ended without reading them all; what it sent says more
    send_end.close()  # every copy the parent holds is closed now
    try:
        total = result.recv() if result.poll(patience) else "nothing"
    except EOFError:
        total = "crashed"
    finish([child], timeout=0 if total == "nothing" else 10)
    result.close()
    if total == "nothing":
        return (f"No total after {patience:g} s: the child is still waiting in recv(). It was handed send_end: "
                "did it close that copy first? EOFError needs every copy closed.")
    if total == "crashed":
        return (f"The child ended without sending a total (exit code {child.exitcode}): "
                "call sum_until_eof in a cell to see the error.")
    if total is None:
        return "The child sent None: write the loop that adds up until recv() raises EOFError."
    if total != 55:
        return f"The child sent {total!r}; 1 + 2 + ... + 10 is 55."
    return "Right: the child added 1 to 10, got EOFError, and sent 55."
