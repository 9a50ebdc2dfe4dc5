"""Exercise answers for tests/test_exercises.py (the checks of lecture 02's exercises),
in an importable module: spawn and forkserver children import their target by name.
The lecture's own workers are tested from the notebook's ``%%writefile`` cells."""


def square_server(conn) -> None:
    """A right answer to the square-server exercise."""
    while conn.poll(60):
        x = conn.recv()
        if x is None:
            break
        conn.send(x * x)
    conn.close()


def square_server_starter(conn) -> None:
    """The exercise's starter: closes its end without answering."""
    conn.close()


def sum_until_eof(recv_end, send_end, report) -> None:
    """A right answer to the EOFError exercise."""
    send_end.close()
    total = 0
    while True:
        try:
            total += recv_end.recv()
        except EOFError:
            break
    recv_end.close()
    report.send(total)
    report.close()


def sum_until_eof_keeps_send_end(recv_end, send_end, report) -> None:
    """The classic mistake: never closes its own copy of the sending end, so no EOFError."""
    total = 0
    while True:
        try:
            total += recv_end.recv()
        except EOFError:
            break
    report.send(total)
    report.close()
