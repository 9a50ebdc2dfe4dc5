"""Workers for the tests of lecture 04's machinery (helpers/pool_bench.py, local_http.py).

The lecture's own ``cpu_task`` and ``fetch`` are written by its notebook (a
``%%writefile pool_workers.py`` cell); the helpers take a worker as a parameter.
These stand-ins have the same signatures. They live in an importable module
because spawn and forkserver pool workers import a task by name.
"""

from __future__ import annotations

import os
import urllib.request

# No proxy for 127.0.0.1: an http_proxy variable in the environment would
# otherwise send the request to the proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cpu_task(n: int) -> int:
    """CPU-bound work that scales with ``n``."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def fetch(url: str, timeout: float = 10.0) -> tuple[str, int, str]:
    """GET ``url``; return ``(url, status, body text)``."""
    with _OPENER.open(url, timeout=timeout) as response:
        return url, response.status, response.read().decode("utf-8")


def record_call(path: str) -> None:
    """Append one line to the file ``path``: counts how often a worker ran, in any process."""
    with open(path, "a", encoding="utf-8") as f:
        f.write("ran\n")


def more_work_in_a_child(parent_pid: int) -> int:
    """``cpu_task`` five times as long in any process but the one whose pid is ``parent_pid``."""
    return cpu_task(40_000 if os.getpid() == parent_pid else 200_000)
