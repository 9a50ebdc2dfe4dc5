"""Workers for tests/test_pipes.py. Lecture 02 writes its own copies with
``%%writefile`` (the reader edits those); the tests need an importable module of
their own, which spawn and forkserver children can import by name."""


def echo_upper(conn) -> None:
    """Receive strings on ``conn`` and send each back upper-cased on the same end,
    until ``None`` arrives (or nothing arrives for a minute)."""
    while conn.poll(60):
        text = conn.recv()
        if text is None:
            break
        conn.send(text.upper())
    conn.close()


def read_until_eof(recv_end, report, send_end_to_close=None) -> None:
    """Count messages until ``recv()`` raises EOFError, then send the count through
    ``report``. Closes ``send_end_to_close`` (its copy of the sending end) first."""
    if send_end_to_close is not None:
        send_end_to_close.close()
    count = 0
    while True:
        try:
            recv_end.recv()
        except EOFError:
            break
        count += 1
    report.send(count)
    report.close()


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
