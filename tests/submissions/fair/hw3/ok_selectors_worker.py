"""Fairness sample, correct: each pool worker runs an event loop (selectors) over the shared
listening socket and its own connections: a worker serves several clients at once
(allowed), with its own buffer and idle clock per connection."""

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


# ---- Question 3: design B, an event loop inside each worker -----------------------------
import selectors  # noqa: E402

_listener = None
_stop = None


def init_worker(listener: socket.socket, stop) -> None:
    global _listener, _stop
    _listener, _stop = listener, stop


def event_loop(idle_timeout: float) -> None:
    sel = selectors.DefaultSelector()
    _listener.setblocking(False)
    sel.register(_listener, selectors.EVENT_READ, data=None)
    clients = {}  # conn -> [buffer, last_data]
    try:
        while not _stop.is_set():
            for key, _ in sel.select(timeout=POLL):
                if key.data is None:
                    try:
                        conn, _ = _listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue  # another worker took it
                    conn.setblocking(True)
                    conn.settimeout(5.0)  # sendall of one answer
                    clients[conn] = [b"", time.monotonic()]
                    sel.register(conn, selectors.EVENT_READ, data="client")
                    continue
                conn = key.fileobj
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if data:
                    state = clients[conn]
                    state[0] += data
                    state[1] = time.monotonic()
                    try:
                        while b"\n" in state[0]:
                            line, state[0] = state[0].split(b"\n", 1)
                            conn.sendall(respond(line))
                        if len(state[0]) > MAX_LINE:
                            conn.sendall(b"ERROR line too long\n")
                            data = b""
                    except OSError:
                        data = b""
                if not data:
                    sel.unregister(conn)
                    del clients[conn]
                    conn.close()
            now = time.monotonic()
            for conn in [c for c, (_, last) in clients.items() if now - last >= idle_timeout]:
                sel.unregister(conn)
                del clients[conn]
                conn.close()
    finally:
        for conn in clients:
            conn.close()
        sel.close()


def serve(address, workers, stop, ready, idle_timeout=5.0) -> None:
    ctx = context()
    with socket.create_server(address, backlog=128) as listener:
        pool = ctx.Pool(workers, initializer=init_worker, initargs=(listener, stop))
        try:
            loops = [pool.apply_async(event_loop, (idle_timeout,)) for _ in range(workers)]
            ready.put(listener.getsockname()[:2])
            stop.wait()
            for loop in loops:
                loop.get(timeout=10)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
