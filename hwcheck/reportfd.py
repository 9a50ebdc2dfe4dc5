"""The report channel: a pipe whose write end only the checker holds.

The caller (the notebook's side, :mod:`hwcheck.isolated`; the verdict command,
:mod:`hwcheck.verdict`; later the grader) makes a pipe, hands its write end to the
checker process it starts (``--fd N``: ``pass_fds`` on POSIX; ``--handle H``: an
inheritable handle on Windows) and keeps the read end. The checker marks the write
end close-on-exec, so no child it spawns inherits it; a child it forks closes it
before any student code runs (:mod:`hwcheck.child`). There is no file a student's
process could write a report into, and a process that is not the checker cannot
open the checker's descriptors (it is not dumpable, :mod:`hwcheck.hardening`).

The report is one JSON object, written whole when the checker is done, then the
write end is closed; the caller reads until EOF, bounded by a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

LIMIT = 4 << 20  # bytes: a report is a few KiB


class Pipe:
    """The caller's side: ``argv`` and ``popen`` for the process that writes the report;
    after starting it, :meth:`started`, then :meth:`read` the report."""

    def __init__(self):
        self._r, self._w = os.pipe()
        self._data = bytearray()
        self._done = threading.Event()
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            handle = msvcrt.get_osfhandle(self._w)
            os.set_handle_inheritable(handle, True)
            self.argv = ["--handle", str(handle)]
            self.popen = {"startupinfo": subprocess.STARTUPINFO(
                lpAttributeList={"handle_list": [handle]}), "close_fds": True}
        else:
            self.argv = ["--fd", str(self._w)]
            self.popen = {"pass_fds": (self._w,)}

    def started(self) -> None:
        """The child holds the write end now: close ours, start reading."""
        os.close(self._w)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while len(self._data) <= LIMIT:
                chunk = os.read(self._r, 65536)
                if not chunk:
                    break
                self._data += chunk
        except OSError:
            pass
        finally:
            os.close(self._r)
            self._done.set()

    def read(self, timeout: float) -> dict | None:
        """The report, once the write end is closed (at most ``timeout`` s from now);
        None if there was none, or it is not one JSON object."""
        from hwcheck import spec

        if not self._done.wait(timeout):
            return None  # still held open: by a leftover process that should not have it
        try:
            report = spec.loads(bytes(self._data).decode("utf-8"))
        except ValueError:
            return None
        return report if isinstance(report, dict) else None


def add_arguments(parser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="write the report to this file descriptor")
    where.add_argument("--handle", type=int, help="(Windows) ... to this inheritable handle")


def writer(args) -> int:
    """The checker's side: the descriptor from ``--fd``/``--handle``, not inherited by
    any child started from now on."""
    if args.handle is not None:  # pragma: no cover - Windows only
        import msvcrt

        fd = msvcrt.open_osfhandle(args.handle, os.O_WRONLY)
    else:
        fd = args.fd
    os.set_inheritable(fd, False)
    return fd


def write(fd: int, report: dict) -> None:
    """Write ``report`` (JSON) whole to ``fd`` and close it."""
    from hwcheck import spec

    data = spec.dumps(report).encode()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
