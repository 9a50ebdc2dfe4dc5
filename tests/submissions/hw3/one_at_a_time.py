"""Sample submission: serves one client at a time (pool.apply blocks per client)."""

import socket
import time

from helpers import context

POLL = 0.1
_stop = None


def respond(line: bytes) -> bytes:
    try:
        return line.decode("utf-8").upper().encode("utf-8") + b"\n"
    except UnicodeDecodeError:
        return b"ERROR invalid UTF-8\n"


def init_worker(stop) -> None:
    global _stop
    _stop = stop


def handle_connection(conn: socket.socket, idle_timeout: float) -> None:
    conn.settimeout(POLL)
    buffer, last = b"", time.monotonic()
    with conn:
        while not _stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                if time.monotonic() - last > idle_timeout:
                    return
                continue
            except OSError:
                return
            if not data:
                return
            last = time.monotonic()
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                conn.sendall(respond(line))


def serve(address, workers, stop, ready, idle_timeout=5.0) -> None:
    ctx = context()
    with socket.create_server(address) as listener:
        listener.settimeout(POLL)
        with ctx.Pool(workers, initializer=init_worker, initargs=(stop,)) as pool:
            ready.put(listener.getsockname()[:2])
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    pool.apply(handle_connection, (conn, idle_timeout))  # waits for this client
