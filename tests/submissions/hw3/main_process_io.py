"""Sample submission: the main process does all the socket work (selectors) and sends only
the lines to the pool. It answers everyone, but no connection is served by a pool worker."""

import selectors
import socket

from helpers import context


def respond(line: bytes) -> bytes:
    try:
        return line.decode("utf-8").upper().encode("utf-8") + b"\n"
    except UnicodeDecodeError:
        return b"ERROR invalid UTF-8\n"


def serve(address, workers, stop, ready, idle_timeout=5.0):
    ctx = context()
    sel = selectors.DefaultSelector()
    buffers = {}
    with socket.create_server(address) as listener, ctx.Pool(workers) as pool:
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ)
        ready.put(listener.getsockname()[:2])
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.1):
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
                    sock.sendall(pool.apply(respond, (line,)))
                    sock.setblocking(False)
        for conn in list(buffers):
            conn.close()
