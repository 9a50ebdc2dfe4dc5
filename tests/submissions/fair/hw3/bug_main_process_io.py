"""Fairness sample, question 3 wrong: the main process does all the socket work
(selectors) and sends only the lines to the pool. It answers everyone, but no connection
is served by a pool worker."""

import socket
import time

from hwcheck import context

MAX_LINE = 64 * 1024  # longest request line the server must accept, in bytes (without b"\n")
POLL = 0.1  # seconds between checks of the stop event while waiting


# ---- Question 1 (and 4: invalid UTF-8) ---------------------------------------------
def respond(line: bytes) -> bytes:
    """The answer to one request line (``line`` has no trailing b"\\n"): the upper-cased
    text ending with b"\\n"; for invalid UTF-8 a line starting with b"ERROR"."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return b"ERROR invalid UTF-8\n"
    return text.upper().encode("utf-8") + b"\n"


# ---- Questions 1, 2 (framing) and 4 (idle clients, long lines) ----------------------
def handle_client(conn: socket.socket, stop, idle_timeout: float) -> None:
    """Serve one client on ``conn`` until it disconnects, stays silent for
    ``idle_timeout`` seconds, or ``stop`` is set.

    Hints: ``conn.settimeout(POLL)`` makes ``recv()`` raise TimeoutError every POLL seconds,
    so you can check ``stop`` and the idle time. ``recv()`` returning b"" means the client
    closed. Question 2: keep a buffer and split it on b"\\n".
    """
    conn.settimeout(POLL)
    buffer = b""
    last_data = time.monotonic()
    while not stop.is_set():
        try:
            data = conn.recv(65536)
        except TimeoutError:
            if time.monotonic() - last_data >= idle_timeout:
                return  # silent client: free this worker for the others
            continue
        if not data:
            return  # client closed; an unfinished last line is dropped
        last_data = time.monotonic()
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            conn.sendall(respond(line))
        if len(buffer) > MAX_LINE:
            conn.sendall(b"ERROR line longer than 64 KiB\n")
            return


def serve_one(address, stop, ready, idle_timeout=5.0) -> None:
    """Question 1: a server in this one process. Listen on ``address``, put the address
    actually bound on ``ready``, then serve clients one after the other with
    ``handle_client`` until ``stop`` is set.

    Hint: ``socket.create_server(address)`` creates, binds and listens in one call.
    """
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
                    handle_client(conn, stop, idle_timeout)
                except OSError:
                    pass  # this client went away: serve the next one


# ---- Question 3 ---------------------------------------------------------------------
import selectors  # noqa: E402


def serve(address, workers, stop, ready, idle_timeout=5.0):
    ctx = context()
    sel = selectors.DefaultSelector()
    buffers = {}
    with socket.create_server(address) as listener, ctx.Pool(workers) as pool:
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ)
        ready.put(listener.getsockname()[:2])
        while not stop.is_set():
            for key, _ in sel.select(timeout=POLL):
                sock = key.fileobj
                if sock is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    buffers[conn] = b""
                    sel.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(sock)
                    buffers.pop(sock, None)
                    sock.close()
                    continue
                buffers[sock] += data
                while b"\n" in buffers[sock]:
                    line, buffers[sock] = buffers[sock].split(b"\n", 1)
                    sock.setblocking(True)
                    sock.sendall(pool.apply(respond, (line,)))  # mistake: lines, not clients
                    sock.setblocking(False)
        for conn in list(buffers):
            conn.close()
        pool.close()
        pool.join()
