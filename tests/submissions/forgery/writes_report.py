"""Forgery prologue (any homework): write a "passed" report wherever a checker might
read one, kill the checker where it may (same uid), then exit. The old runner imported
the answer itself and read its report from a file named on its command line: this got
full marks there. Now the report goes to a pipe only the checker holds, the checker is
not dumpable (/proc/<pid>/fd of the checker cannot be opened), and a fork child closes
the report descriptor first thing: a killed checker leaves no report at all."""

import glob as _glob
import json as _json
import os as _os
import stat as _stat
import sys as _sys

_PASSED = _json.dumps({"problems": [], "facts": {"forged": True}}).encode()


def _ancestors():
    """(pid, start time, command line) of each process above this one."""
    pid = _os.getppid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return
        yield pid, fields[19].decode(), argv
        pid = int(fields[1])


def _checker():
    return next(((pid, start, argv) for pid, start, argv in _ancestors()
                 if b"--fd" in argv), (None, "", []))  # the process given the report's fd


def _forge_report() -> None:
    pid, start, argv = _checker()
    if pid is None:
        return
    try:  # one forged report per run: a second copy would spoil the JSON
        _os.close(_os.open(f"/tmp/hwcheck-forged-{pid}-{start}", _os.O_CREAT | _os.O_EXCL))
    except OSError:
        return
    targets = ["/proc/self/fd/" + fd for fd in _os.listdir("/proc/self/fd")]
    targets += _glob.glob("/tmp/hwcheck-*/report.json")
    targets += [a.decode() for a in argv if a.endswith(b".json")]
    targets += _glob.glob(f"/proc/{pid}/fd/*")
    targets += [f"/proc/{pid}/fd/{v.decode()}" for f, v in zip(argv, argv[1:], strict=False)
                if f == b"--fd"]
    written = set()
    for path in targets:
        try:
            info = _os.stat(path)
            if (info.st_dev, info.st_ino) in written or not (
                    _stat.S_ISFIFO(info.st_mode) or _stat.S_ISREG(info.st_mode)):
                continue
            with open(path, "wb") as fh:
                fh.write(_PASSED)
            written.add((info.st_dev, info.st_ino))
        except OSError:
            pass


def _kill_the_checker() -> None:
    """Kill the checker above this process (same uid only), so that a forged report is
    the only one its caller reads."""
    import signal

    pid, _, _ = _checker()
    if pid:
        try:
            _os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


_forge_report()
_kill_the_checker()
_sys.stdout.flush()
_os._exit(0)
