"""PID 1 of one kernel's sandbox (run by ``unshare`` as root, inside fresh mount,
PID and network namespaces).

It brings the namespace's own loopback up, hides the course and the grader's
files behind empty tmpfs mounts (re-binding only what the kernel needs), gives
the kernel a private /tmp and /dev/shm, then forks the kernel as an unprivileged
uid with rlimits. It stays as init: it reaps orphans, forwards SIGINT, and when
the kernel exits it writes the processes still running (the submission's
leftovers) to a status file and exits, which makes Linux kill everything left
in the PID namespace.

Usage: python -m course_tools.grade.sandbox_init SPEC.json

It runs as root (``python -I``, from ``/``), so it imports only the standard
library, psutil and ``courselib.procs`` from the venv, never from the kernel's folder.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys
import time

import psutil  # imported before the mounts change what the interpreter can see

from courselib.procs import is_mp_helper, still_running

MS_NOSUID, MS_NODEV, MS_RDONLY = 2, 4, 1
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
SIOCSIFFLAGS = 0x8914
IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x1, 0x8, 0x40
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    if _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING)
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, ifr)


def build_filesystem(spec: dict) -> None:
    # Everything is private to this mount namespace (unshare --propagation private).
    keep = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in spec["keep"]}
    for target, options in spec["tmpfs"]:
        if not os.path.isdir(target):
            continue  # under a directory hidden already
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options)
    for path, fd in keep.items():
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        if path in spec.get("readonly", []):
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
        os.close(fd)
    for path in spec.get("mask", []):
        # e.g. the notebook being graded, with the hidden tests restored in it
        _mount("/dev/null", path, None, MS_BIND, None)


def _drop_privileges_and_exec(spec: dict) -> None:
    uid, gid = spec["uid"], spec["gid"]
    for name, value in spec["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.chdir(spec["cwd"])
    os.setpgid(0, 0)  # SIGINT for the kernel comes from init only, never twice
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


def _other_processes(exclude: tuple[int, ...] = ()) -> list[str]:
    """What still runs in this PID namespace besides init (and ``exclude``), as
    command lines; multiprocessing's own helpers exit with the kernel and are not
    the student's."""
    others = [p for p in psutil.process_iter() if p.pid not in (os.getpid(), *exclude)]
    found = []
    for proc in still_running(others):
        if is_mp_helper(proc):
            continue
        try:
            cmd = " ".join(proc.cmdline()).strip()
        except psutil.Error:
            continue
        found.append(cmd[:200] or f"pid {proc.pid}")
    return found


def main(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    status = os.open(spec["status_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    loopback_up()
    build_filesystem(spec)
    uid, gid = spec["uid"], spec["gid"]
    for path in spec["chown"]:
        os.chown(path, uid, gid)
    os.makedirs(spec["env"]["HOME"], exist_ok=True)
    os.chown(spec["env"]["HOME"], uid, gid)

    kernel = os.fork()
    if kernel == 0:
        try:
            _drop_privileges_and_exec(spec)
        finally:
            os._exit(127)

    def forward(signum, _frame):
        try:
            os.kill(kernel, signum)
        except ProcessLookupError:
            pass

    def finish(code: int, exclude: tuple[int, ...] = ()) -> None:
        leftovers = _other_processes(exclude)
        os.write(status, json.dumps({"kernel_exit": code, "leftovers": leftovers}).encode())
        try:
            os.kill(-1, signal.SIGKILL)  # everyone in this PID namespace but us
        except ProcessLookupError:
            pass
        os._exit(code if code >= 0 else 128 - code)

    def die(signum, _frame):
        # the grader ends the kernel this way once the notebook is done: what is
        # still running besides the kernel is the submission's leftover
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        finish(-signum, exclude=(kernel,))

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, die)
    signal.signal(signal.SIGHUP, die)
    code = 1
    while True:
        try:
            pid, wstatus = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == kernel:
            code = os.waitstatus_to_exitcode(wstatus)
            break
    time.sleep(0.3)  # the kernel died by itself: let its helpers notice
    finish(code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
