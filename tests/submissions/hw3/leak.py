"""Sample submission: the workers block in accept()/recv() with no timeout, so they never
see `stop`; serve() waits for them forever and the server never shuts down."""

import socket

from helpers import context

_listener = None
_stop = None


def respond(line: bytes) -> bytes:
    try:
        return line.decode("utf-8").upper().encode("utf-8") + b"\n"
    except UnicodeDecodeError:
        return b"ERROR invalid UTF-8\n"


def init_worker(listener, stop):
    global _listener, _stop
    _listener, _stop = listener, stop


def accept_loop(idle_timeout):
    while not _stop.is_set():
        conn, _ = _listener.accept()  # blocks forever: stop is never looked at
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                conn.sendall(respond(line.rstrip(b"\n")))


def serve(address, workers, stop, ready, idle_timeout=5.0):
    ctx = context()
    listener = socket.create_server(address)
    pool = ctx.Pool(workers, initializer=init_worker, initargs=(listener, stop))
    pool.map_async(accept_loop, [idle_timeout] * workers, chunksize=1)
    ready.put(listener.getsockname()[:2])
    stop.wait()
    pool.close()
    pool.join()  # never returns: the workers are stuck in accept()
