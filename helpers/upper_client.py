"""A small client for homework 3's upper-casing server, to try it by hand (the
client itself is :mod:`courselib.lineclient`, which the homework checks use too).

In a notebook::

    from helpers import upper_client
    upper_client.ask(("127.0.0.1", port), ["hello", "abc汉字ß"])   # -> ['HELLO', 'ABC汉字SS']

In a terminal (type lines, read the answers; Ctrl-D ends)::

    python -m helpers.upper_client 127.0.0.1 PORT
"""

from __future__ import annotations

import sys

from courselib import lineclient
from courselib.lineclient import ask

__all__ = ["ask", "main"]


def main(argv: list[str] | None = None) -> int:
    return lineclient.main(argv, prog="python -m helpers.upper_client")


if __name__ == "__main__":
    sys.exit(main())
