"""What the checker sees of the student's processes, without asking any of them: every
process below a driver, polled from a thread of the checker (:class:`Watcher`), and
which of them were running at the same moment.

On Linux it reads ``/proc/<pid>/task/<tid>/children`` and ``/proc/<pid>/stat``
(cheap enough to look every 20 ms, so a consumer that lives half a second is seen,
and two clients that run at once are seen running together); elsewhere it asks
psutil, less often.
"""

from __future__ import annotations

import itertools
import os
import threading

import psutil

from courselib.procs import is_mp_helper, still_running, tree


class Watcher:
    """Every process the checker has seen below ``pid`` (``seen``), and each pair of
    them seen running, not ended, in the same look (``together``)."""

    def __init__(self, pid: int, every: float = 0.02):
        self.pid = pid
        self.seen: set[int] = set()
        self.together: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._fast = os.path.exists(f"/proc/{pid}/task/{pid}/children")
        self._every = every if self._fast else max(every, 0.2)
        self.look()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def look(self) -> None:
        if self._fast:
            running = _running_below(self.pid)
        else:
            running = {p.pid for p in still_running(tree(self.pid)[1:])}
        self.seen.update(running)
        self.together.update(itertools.combinations(sorted(running), 2))

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.look()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def running(self) -> list[psutil.Process]:
        """The student's processes below ``pid`` running now (multiprocessing's
        helpers, which end by themselves, left out)."""
        procs = tree(self.pid)
        self.seen.update(p.pid for p in procs[1:])
        return [p for p in still_running(procs[1:]) if not is_mp_helper(p)]


def _running_below(pid: int) -> set[int]:
    """The pids below ``pid`` that have not ended (zombies left out)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except (OSError, ValueError):
                continue
            todo += [k for k in kids if k not in found]
            found.update(kids)
    return {k for k in found if not _ended(k)}


def _ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True
