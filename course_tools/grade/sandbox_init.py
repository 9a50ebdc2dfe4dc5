"""PID 1 of one sandbox (started by bubblewrap, as root, inside the jail it built:
fresh mount, PID, network and IPC namespaces, see :mod:`course_tools.grade.jail`).

It forks the kernel (or the grading run's checker) as the spec's uid with rlimits.
It stays as init: it reaps orphans, forwards SIGINT, and when the kernel exits it
writes the processes still running (the submission's leftovers) to a status file
and exits, which makes Linux kill everything left in the PID namespace.

Usage: python -I sandbox_init.py SPEC.json   (a copy of this file, beside the spec)

With a *scratch* folder in the spec (the kernel's working folder as a size-limited
tmpfs, see :mod:`course_tools.grade.jail`), init first copies the host folder (bound
at ``stage``) into the tmpfs, then keeps the host folder as its own working
directory and unmounts ``stage``: no other process of the jail can reach it. At the
end, once every other process is dead, it copies the tmpfs back (regular files and
folders only, bounded in depth and count) over the host folder.

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
PR_SET_DUMPABLE = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
PR_SET_SECUREBITS, PR_CAPBSET_DROP = 28, 24
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED,
# SECBIT_NO_CAP_AMBIENT_RAISE, each with its lock bit
SECURE_NOROOT_ALL = 0x3 | 0xC | 0x20 | 0xC0
MNT_DETACH = 2
MAX_DEPTH, MAX_ENTRIES = 32, 20_000  # what a scratch copy takes at most

_libc = ctypes.CDLL(None, use_errno=True)


def _drop_capabilities() -> None:
    """Without root, init is uid 0 of the jail's user namespace with CAP_SYS_ADMIN and
    CAP_SETPCAP there (nothing outside it); what it starts holds nothing, for good:
    uid 0 no longer earns capabilities at exec (securebits, locked), the bounding set
    is emptied, then every set (ambient follows); with no_new_privs no file can give
    any back."""
    if _libc.prctl(PR_SET_SECUREBITS, SECURE_NOROOT_ALL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECUREBITS")
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:
            raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _drop_privileges_and_exec(spec: dict) -> None:
    uid, gid = spec["uid"], spec["gid"]
    for name, value in spec["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if spec.get("rootless"):
        _drop_capabilities()  # uid and gid are already the jail's only ones
    else:
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


def _copy_tree(src_fd: int, dst_fd: int, skip: set[str], owner: tuple[int, int] | None
               ) -> dict:
    """Copy the regular files and folders under ``src_fd`` into ``dst_fd`` (both open
    folders; ``skip``: names left out at the top), through descriptors only (no path
    length limit, no symlink followed), depth-first without recursion. Returns counts."""
    counts = {"files": 0, "bytes": 0, "skipped": 0}
    stack = [(src_fd, dst_fd, 0)]
    opened = []
    try:
        while stack:
            src, dst, depth = stack.pop()
            for entry in os.scandir(src):
                if depth == 0 and entry.name in skip:
                    continue
                if counts["files"] >= MAX_ENTRIES:
                    counts["skipped"] += 1
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False) and depth < MAX_DEPTH:
                        os.mkdir(entry.name, 0o755, dir_fd=dst)
                        sub = (os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                       dir_fd=src),
                               os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dst))
                        opened += sub
                        if owner:
                            os.fchown(sub[1], *owner)
                        stack.append((*sub, depth + 1))
                    elif entry.is_file(follow_symlinks=False):
                        counts["bytes"] += _copy_file(entry.name, src, dst, owner)
                    else:
                        counts["skipped"] += 1
                        continue
                    counts["files"] += 1
                except OSError:  # full, vanished, a name the tmpfs refuses: leave it out
                    counts["skipped"] += 1
    finally:
        for fd in opened:
            os.close(fd)
    return counts


def _copy_file(name: str, src_dir: int, dst_dir: int, owner: tuple[int, int] | None) -> int:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_dir)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644,
                      dir_fd=dst_dir)
        try:
            if owner:
                os.fchown(dst, *owner)
            size = 0
            while chunk := os.read(src, 1 << 20):
                os.write(dst, chunk)
                size += len(chunk)
            return size
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _scratch_in(scratch: dict, owner: tuple[int, int] | None) -> int:
    """Copy the host folder (at ``stage``) into the tmpfs; keep the host folder open
    as init's working directory and unmount ``stage``. Returns the tmpfs's descriptor."""
    os.chdir(scratch["stage"])
    if _libc.umount2(scratch["stage"].encode(), MNT_DETACH) != 0:
        raise OSError(ctypes.get_errno(), "cannot hide the scratch folder's host side")
    dest = os.open(scratch["dest"], os.O_RDONLY | os.O_DIRECTORY)
    host = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        _copy_tree(host, dest, set(scratch["skip"]), owner)
    finally:
        os.close(host)
    for name in scratch["skip"]:  # the notebook under grading reads as empty
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444, dir_fd=dest))
    return dest


def _scratch_out(scratch: dict, dest: int) -> dict:
    """Once the jail's other processes are gone: the host folder gets the tmpfs's
    content (its own entries, but the skipped ones, are replaced)."""
    import shutil

    for entry in os.scandir("."):
        if entry.name in scratch["skip"]:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.name, ignore_errors=True)
        else:
            os.unlink(entry.name)
    host = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        counts = _copy_tree(dest, host, set(scratch["skip"]), None)
    finally:
        os.close(host)
    st = os.fstatvfs(dest)
    counts["full"] = st.f_bavail * st.f_frsize < (1 << 20)
    return counts


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


def _reap_all(timeout: float) -> None:
    """Wait (bounded) until this PID namespace has no process but init."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def main(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    status = os.open(spec["status_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # not dumpable: a process of the same uid (without root, the kernel's) can
    # neither ptrace init nor open its /proc files (cwd, descriptors)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    uid, gid = spec["uid"], spec["gid"]
    for path in spec["chown"]:
        os.chown(path, uid, gid)
    os.makedirs(spec["env"]["HOME"], exist_ok=True)
    os.chown(spec["env"]["HOME"], uid, gid)
    scratch = spec.get("scratch")
    scratch_fd = _scratch_in(scratch, (uid, gid)) if scratch else None

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
        found = {"kernel_exit": code, "leftovers": _other_processes(exclude)}
        try:
            os.kill(-1, signal.SIGKILL)  # everyone in this PID namespace but us
        except ProcessLookupError:
            pass
        if scratch:
            _reap_all(5.0)  # nothing writes to the scratch folder while it is copied
            try:
                found["scratch"] = _scratch_out(scratch, scratch_fd)
            except OSError as exc:
                found["scratch"] = {"error": str(exc)}
        os.write(status, json.dumps(found).encode())
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
