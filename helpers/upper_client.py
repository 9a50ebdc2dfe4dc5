"""A small client for homework 3's upper-casing server, to try it by hand.

In a notebook::

    from helpers import upper_client
    upper_client.ask(("127.0.0.1", port), ["hello", "abc汉字ß"])   # -> ['HELLO', 'ABC汉字SS']

In a terminal (type lines, read the answers; Ctrl-D ends)::

    python -m helpers.upper_client 127.0.0.1 PORT
"""

from __future__ import annotations

import socket
import sys


def ask(address: tuple[str, int], lines: list[str], timeout: float = 5.0) -> list[str]:
    """Send each line on one connection and return the answers, in order.

    Raises ``TimeoutError`` when an answer takes longer than ``timeout`` seconds,
    ``ConnectionError`` when the server closes the connection before answering.
    """
    answers = []
    with socket.create_connection(address, timeout=timeout) as sock:
        reader = sock.makefile("rb")
        for line in lines:
            sock.sendall(line.encode("utf-8") + b"\n")
            answer = reader.readline()  # bounded: the socket has a timeout
            if not answer.endswith(b"\n"):
                raise ConnectionError(f"the server closed the connection before answering {line!r}")
            answers.append(answer[:-1].decode("utf-8", errors="replace"))
    return answers


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m helpers.upper_client HOST PORT", file=sys.stderr)
        return 2
    address = (argv[0], int(argv[1]))
    with socket.create_connection(address, timeout=5.0) as sock:
        reader = sock.makefile("rb")
        for line in sys.stdin:
            sock.sendall(line.rstrip("\n").encode("utf-8") + b"\n")
            answer = reader.readline()
            if not answer:
                print("(the server closed the connection)", file=sys.stderr)
                return 1
            print(answer.decode("utf-8", errors="replace"), end="", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
