"""PID 1 of one sandbox (started by bubblewrap, as root, inside the jail it built:
fresh mount, PID, network and IPC namespaces, see :mod:`course_tools.grade.jail`).

It forks the kernel (or the grading run's checker) as the spec's uid with rlimits.
It stays as init: it reaps orphans, forwards SIGINT, and when the kernel exits it
writes the processes still running (the submission's leftovers) to a status file
and exits, which makes Linux kill everything left in the PID namespace.

Usage: python -I sandbox_init.py SPEC.json   (a copy of this file, beside the spec)

It runs as root, so it imports only the standard library, psutil and
``courselib.procs`` from the venv, never from the kernel's folder.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time

import psutil

from courselib.procs import is_mp_helper, still_running

PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


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
    the student's. A process with no command line is exiting (its memory is gone
    already): it gets half a second to finish before it counts."""
    others = [p for p in psutil.process_iter() if p.pid not in (os.getpid(), *exclude)]
    alive = still_running(others)
    exiting = still_running([p for p in alive if not _cmdline(p)], timeout=0.5)
    found = []
    for proc in alive:
        if is_mp_helper(proc) or (not _cmdline(proc) and proc not in exiting):
            continue
        cmd = _cmdline(proc)
        if not cmd:
            try:
                cmd = f"pid {proc.pid} ({proc.name()}, {proc.status()})"
            except psutil.Error:
                continue
        found.append(cmd[:200])
    return found


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()).strip()
    except psutil.Error:
        return ""


def main(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    status = os.open(spec["status_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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
