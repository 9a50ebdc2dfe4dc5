"""Forgery base (hw3): every function written, none right (deserves 0 of 15)."""

MAX_LINE = 64 * 1024
POLL = 0.1


def respond(line: bytes) -> bytes:
    return b"\n"


def handle_client(conn, stop, idle_timeout: float) -> None:
    return  # answers nothing


def serve_one(address, stop, ready, idle_timeout=5.0) -> None:
    ready.put(("127.0.0.1", 9))  # an address it never listens on


def serve(address, workers, stop, ready, idle_timeout=5.0) -> None:
    ready.put(("127.0.0.1", 9))
