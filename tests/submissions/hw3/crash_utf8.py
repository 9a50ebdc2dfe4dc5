"""Sample submission: a line of invalid UTF-8 crashes the worker's loop (no ERROR line)."""

import socket
import time

from helpers import context

POLL = 0.1
_listener = None
_stop = None


def respond(line: bytes) -> bytes:
    return line.decode("utf-8").upper().encode("utf-8") + b"\n"  # raises on invalid UTF-8


def handle_connection(conn, stop, idle_timeout):
    conn.settimeout(POLL)
    buffer, last = b"", time.monotonic()
    while not stop.is_set():
        try:
            data = conn.recv(65536)
        except TimeoutError:
            if time.monotonic() - last > idle_timeout:
                return
            continue
        if not data:
            return
        last = time.monotonic()
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            conn.sendall(respond(line))


def init_worker(listener, stop):
    global _listener, _stop
    _listener, _stop = listener, stop
    _listener.settimeout(POLL)


def accept_loop(idle_timeout):
    while not _stop.is_set():
        try:
            conn, _ = _listener.accept()
        except TimeoutError:
            continue
        with conn:
            handle_connection(conn, _stop, idle_timeout)


def serve(address, workers, stop, ready, idle_timeout=5.0):
    ctx = context()
    with socket.create_server(address) as listener:
        with ctx.Pool(workers, initializer=init_worker, initargs=(listener, stop)) as pool:
            pool.map_async(accept_loop, [idle_timeout] * workers, chunksize=1)
            ready.put(listener.getsockname()[:2])
            stop.wait()
