"""Fairness sample, question 4 wrong: handle_client never drops a silent client, so as
many silent clients as workers keep every worker busy; everything else is correct."""

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
            continue  # mistake: a silent client keeps this worker forever
        if not data:
            return  # client closed; an unfinished last line is dropped
        last_data = time.monotonic()  # noqa: F841 - never read: the mistake
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


# ---- Question 3: the pool (design B: every worker accepts) --------------------------
_listener = None  # set in every worker by init_worker
_stop = None


def init_worker(listener: socket.socket, stop) -> None:
    """Pool initializer: runs once in every worker when the pool starts it."""
    global _listener, _stop
    _listener, _stop = listener, stop
    _listener.settimeout(POLL)


def accept_loop(idle_timeout: float) -> int:
    """A pool task: accept and serve clients one after the other until stop is set.
    Returns how many connections this worker served."""
    served = 0
    while not _stop.is_set():
        try:
            conn, _ = _listener.accept()
        except TimeoutError:
            continue
        with conn:
            try:
                handle_client(conn, _stop, idle_timeout)
            except OSError:
                pass  # this client went away while we answered: the others still count
            served += 1
    return served


def serve(address, workers, stop, ready, idle_timeout=5.0) -> None:
    """Questions 3 to 5: serve on ``address`` with a pool of ``workers`` processes until
    ``stop`` is set; then close the listening socket, end the pool and return.

    Hints: ``ctx.Pool(workers, initializer=init_worker, initargs=(listener, stop))`` gives
    every worker the listening socket; ``pool.map_async(accept_loop, [idle_timeout] *
    workers, chunksize=1)`` runs one accept loop in each.
    """
    ctx = context()
    with socket.create_server(address, backlog=128) as listener:
        pool = ctx.Pool(workers, initializer=init_worker, initargs=(listener, stop))
        try:
            loops = pool.map_async(accept_loop, [idle_timeout] * workers, chunksize=1)
            ready.put(listener.getsockname()[:2])
            stop.wait()
            loops.get(timeout=10)  # every worker notices stop within POLL seconds
            pool.close()
        except BaseException:
            pool.terminate()  # something went wrong: do not leave workers behind
            raise
        finally:
            pool.join()
