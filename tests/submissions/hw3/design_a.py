"""Sample submission, correct, design A: the main process accepts and hands each
connection to the pool with apply_async (closing its own copy in the callback)."""

import socket
import time

from helpers import context

MAX_LINE = 64 * 1024
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
    with conn:
        conn.settimeout(POLL)
        buffer, last = b"", time.monotonic()
        while not _stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                if time.monotonic() - last >= idle_timeout:
                    break
                continue
            except OSError:
                break
            if not data:
                break
            last = time.monotonic()
            buffer += data
            try:
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    conn.sendall(respond(line))
                if len(buffer) > MAX_LINE:
                    conn.sendall(b"ERROR line too long\n")
                    break
            except OSError:
                break
        try:
            conn.shutdown(socket.SHUT_RDWR)  # the main process still holds a copy
        except OSError:
            pass


def serve(address, workers, stop, ready, idle_timeout=5.0) -> None:
    ctx = context()
    with socket.create_server(address, backlog=128) as listener:
        listener.settimeout(POLL)
        pool = ctx.Pool(workers, initializer=init_worker, initargs=(stop,))
        try:
            ready.put(listener.getsockname()[:2])
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue

                def close(_result, conn=conn):
                    conn.close()  # only now: the task handler pickles conn after apply_async

                pool.apply_async(
                    handle_connection, (conn, idle_timeout), callback=close, error_callback=close
                )
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
