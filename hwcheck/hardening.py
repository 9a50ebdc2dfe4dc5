"""What the checker does to itself, and to a child before it runs student code.

* :func:`no_dumping`: the checker (runner, verdict) is made non-dumpable on Linux,
  so no process of the student's can ptrace it, read its memory or open its file
  descriptors through ``/proc/<pid>/fd`` (even under the same uid).
* :func:`drop_privileges`: a child that is about to run student code as root gives
  up root for the student's uid and gid, for good.
* :func:`dumpable_again`: a child forked from the checker inherits non-dumpable;
  the student's processes are ordinary ones (the checker reads their sockets and
  process tree through ``/proc``).

Elsewhere than Linux the prctl calls do nothing (there is no ``/proc/<pid>/mem``).
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_DUMPABLE = 4


def _set_dumpable(value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def no_dumping() -> bool:
    """Make this process non-dumpable (Linux); True when done."""
    return _set_dumpable(0)


def dumpable_again() -> bool:
    return _set_dumpable(1)


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` with no supplementary groups (this process needs root)."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:  # pragma: no cover - setuid lied
        raise PermissionError(f"could not drop privileges to uid {uid}")
