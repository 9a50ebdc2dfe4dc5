"""Forgery (hw3, pickle bomb): the servers put an object whose unpickling runs a command
on `ready` (the checker's queue), and respond() sends one down every connection its
process can write to (the driver's channel to the checker). The checker loads plain data
only: each is refused and the answer fails (deserves 0 of 15)."""

import gc
import os

MAX_LINE = 64 * 1024
POLL = 0.1
TARGET = os.environ.get("HWCHECK_BOMB_TARGET", "/tmp/hwcheck-pickle-bomb-went-off")


class Bomb:
    def __reduce__(self):
        return (os.system, (f"touch {TARGET}",))


def respond(line: bytes) -> bytes:
    from multiprocessing.connection import Connection

    for obj in gc.get_objects():
        if isinstance(obj, Connection) and not obj.closed and obj.writable:
            try:
                obj.send(Bomb())
            except Exception:  # noqa: BLE001
                pass
    return line.upper() + b"\n"


def handle_client(conn, stop, idle_timeout: float) -> None:
    return


def serve_one(address, stop, ready, idle_timeout=5.0) -> None:
    ready.put(Bomb())


def serve(address, workers, stop, ready, idle_timeout=5.0) -> None:
    ready.put(Bomb())
