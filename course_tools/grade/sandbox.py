"""Start a student's kernel in a sandbox, for nbgrader's executor.

``SandboxExecute`` is nbgrader's ``Execute`` preprocessor with the kernel
started by ``SandboxKernelManager``: ZeroMQ over ``ipc`` (Unix sockets cross
network namespaces) and a kernel command wrapped as

    sh -c 'join cgroups; exec unshare --mount --pid --net --fork ... sandbox_init SPEC'

``sandbox_init`` (PID 1 inside) builds the filesystem view, drops to an
unprivileged uid and execs the kernel (see its docstring). The grader's worker
sets ``SETTINGS`` before each submission.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbgrader.preprocessors import Execute
from traitlets import Integer

from courselib.procs import kill_all

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "course-grade"
MARKER = "COURSE_GRADE_SLOT"  # env var carried by every root-owned process of a slot


@dataclass
class Settings:
    """How to run kernels for one submission (set by the worker)."""

    enabled: bool = True
    run_dir: str = ""  # root-only scratch of this grading run (mode 0711)
    course_root: str = ""
    slot: str = ""  # marker value: identifies processes of one worker slot
    uid: int = 65534
    gid: int = 65534
    memory_bytes: int = 2 << 30
    max_processes: int = 128
    cpu_seconds: int = 600
    file_bytes: int = 256 << 20
    keep: list[str] = field(default_factory=list)  # extra paths the kernel may read
    # filled while running: each kernel's cgroups and its init's status file
    cgroups: list[Path] = field(default_factory=list)
    status_files: list[str] = field(default_factory=list)


SETTINGS = Settings()
# The course repository (where this package lives): hidden like the course root,
# except its venv and helpers/ (the notebooks import helpers).
REPO_ROOT = Path(__file__).resolve().parents[2]


def hidden_dirs(s: Settings) -> list[str]:
    """Directories the kernel sees as empty. The run dir must be under /tmp,
    which gets a private tmpfs."""
    if not s.run_dir.startswith("/tmp/"):
        raise ValueError("the grading run dir must be under /tmp")
    return sorted({os.path.realpath(s.course_root), str(REPO_ROOT)})


def cgroups_available() -> bool:
    return all(
        os.access(CGROUP_ROOT / c, os.W_OK) and (CGROUP_ROOT / c / "cgroup.procs").exists()
        for c in ("memory", "pids")
    )


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when the sandbox works here, else why not (in words)."""
    if sys.platform != "linux":
        return "Linux namespaces are not available on this system"
    if os.geteuid() != 0:
        return "the sandbox needs root (to switch to an unprivileged uid and build namespaces)"
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is missing"
    try:
        res = subprocess.run(
            ["unshare", "--mount", "--pid", "--net", "--fork", "--mount-proc",
             "--propagation", "private", "true"],
            capture_output=True, timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if res.returncode != 0:
        return f"unshare failed: {res.stderr.decode(errors='replace').strip()}"
    probe_uid = subprocess.run(
        ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
         sys.executable, "-c", "import ipykernel"],
        capture_output=True, timeout=60,
    )
    if probe_uid.returncode != 0:
        return (f"an unprivileged user cannot run {sys.executable} with ipykernel "
                "(is the venv under a private directory such as /root?)")
    return None


def _make_cgroups(name: str, s: Settings) -> list[Path]:
    if not cgroups_available():
        return []
    made = []
    for controller, knob, value in (("memory", "memory.limit_in_bytes", s.memory_bytes),
                                    ("pids", "pids.max", s.max_processes)):
        path = CGROUP_ROOT / controller / CGROUP_PARENT / name
        path.mkdir(parents=True, exist_ok=True)
        (path / knob).write_text(str(value))
        made.append(path)
    return made


def kill_cgroup(path: Path, timeout: float = 10) -> None:
    """SIGKILL every process in a cgroup, wait for it to empty, remove it."""
    deadline = time.monotonic() + timeout
    while path.exists():
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not pids:
            try:
                path.rmdir()
            except OSError:
                pass
            else:
                return
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def memory_limit_hit(paths: list[Path]) -> bool:
    for path in paths:
        try:
            if int((path / "memory.failcnt").read_text()) > 0:
                return True
        except (OSError, ValueError):
            pass
    return False


def process_limit_hits(paths: list[Path]) -> int:
    """How often a fork was refused by the pids cgroup."""
    hits = 0
    for path in paths:
        try:
            hits += int((path / "pids.events").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return hits


def kill_marked(slot: str) -> int:
    """SIGKILL every process whose environment carries this slot's marker.

    These are the root-owned launchers (sh/unshare/sandbox_init): killing the
    init of a PID namespace kills everything inside it.
    """
    needle = f"{MARKER}={slot}"
    victims = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and needle in (
                f"{k}={v}" for k, v in proc.environ().items()
            ):
                victims.append(proc)
        except psutil.Error:
            pass
    kill_all(victims)
    return len(victims)


def kernel_env(home: str) -> dict:
    keep = ("PATH", "LANG", "LC_ALL", "MP_START_METHOD", "PYTHONHASHSEED", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=home, IPYTHONDIR=f"{home}/.ipython", MPLCONFIGDIR=f"{home}/.matplotlib",
        JUPYTER_RUNTIME_DIR=f"{home}/.jupyter-runtime", PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="agg", NBGRADER_EXECUTION="autograde", TMPDIR="/tmp",
    )
    return env


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs inside the sandbox (or plain, if disabled)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        super().__init__(**kwargs)

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        """End a sandboxed kernel at once: its init records what is still running
        and kills the whole PID namespace (no graceful kernel shutdown: ipykernel
        waits up to ~14 s for children that ignore SIGTERM, and nothing the
        kernel would do on the way out matters to grading)."""
        if not SETTINGS.enabled or restart or not self.has_kernel:
            return await super().shutdown_kernel(now=now, restart=restart)
        self.shutting_down = True
        self.stop_restarter()
        try:
            await self.provisioner.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self._async_wait(pollinterval=0.05), timeout=10)
        except (asyncio.TimeoutError, OSError):
            await self._async_kill_kernel()
        if self.has_kernel:
            await self.provisioner.wait()
        await self._async_cleanup_resources()

    async def _async_pre_start_kernel(self, **kw):
        s = SETTINGS
        kid = uuid.uuid4().hex[:12]
        kdir = tempfile.mkdtemp(prefix=f"k-{kid}-", dir=os.path.join(s.run_dir, "kernels"))
        self.ip = os.path.join(kdir, "ipc")
        self.connection_file = os.path.join(kdir, "kernel.json")
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        env = dict(kw.get("env") or os.environ)
        env[MARKER] = s.slot
        kw["env"] = env
        if not s.enabled:
            return cmd, kw
        cwd = os.path.abspath(kw.get("cwd") or os.getcwd())
        os.chown(kdir, s.uid, s.gid)
        os.chmod(kdir, 0o700)
        venv = str(Path(sys.prefix))
        ro = [p for p in [venv, str(REPO_ROOT / "helpers"), str(REPO_ROOT / "courselib"), *s.keep] if os.path.exists(p)]
        keep = ro + [cwd, kdir]
        spec = {
            "uid": s.uid, "gid": s.gid, "cwd": cwd, "argv": cmd,
            "env": kernel_env("/tmp/home"),
            "keep": keep,
            "readonly": ro,
            "tmpfs": [[d, "mode=755,size=1m"] for d in hidden_dirs(s)] + [
                ["/tmp", f"mode=1777,size={s.file_bytes * 2}"],
                ["/dev/shm", f"mode=1777,size={s.file_bytes}"],
            ],
            # nbgrader has already written the notebook under grading, hidden
            # tests restored, into the kernel's folder: the kernel must not read it
            "mask": [str(p) for p in Path(cwd).glob("*.ipynb") if p.is_file()],
            "chown": [cwd, self.connection_file],
            "status_file": os.path.join(s.run_dir, "status", f"{kid}.json"),
            "rlimits": {
                "RLIMIT_NPROC": s.max_processes * 2,
                # address space: a backstop where cgroups are missing; generous,
                # because threads reserve virtual memory they never touch
                "RLIMIT_AS": max(s.memory_bytes * 2, 4 << 30),
                "RLIMIT_CPU": s.cpu_seconds,
                "RLIMIT_FSIZE": s.file_bytes,
                "RLIMIT_NOFILE": 1024,
                "RLIMIT_CORE": 0,
            },
        }
        spec_path = os.path.join(s.run_dir, "specs", f"{kid}.json")
        with open(os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            json.dump(spec, fh)
        s.status_files.append(spec["status_file"])
        cgroups = _make_cgroups(f"{s.slot}-{kid}", s)
        s.cgroups.extend(cgroups)
        join = "".join(f"echo $$ > {shlex.quote(str(c / 'cgroup.procs'))} && " for c in cgroups)
        # The kernel's cwd holds the student's files: root's Python must not import
        # from there (-I: isolated mode, and the launch happens from /).
        unshare = [shutil.which("unshare") or "/usr/bin/unshare", "--mount", "--pid", "--net",
                   "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
                   sys.executable, "-I", "-m", "course_tools.grade.sandbox_init", spec_path]
        # unshare must survive the SIGINT/SIGTERM that jupyter_client sends to the
        # process group: init (its child) forwards SIGINT to the kernel, and on
        # SIGTERM records leftovers and ends the namespace.
        script = join + "trap '' INT TERM; cd / && exec " + shlex.join(unshare)
        return ["/bin/sh", "-c", script], kw


class SandboxExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel; cleans the kernel's cwd afterwards."""

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources, km=None):
        try:
            return super().preprocess(nb, resources, km=km)
        finally:
            path = resources.get("metadata", {}).get("path")
            if path:
                neutralise_tree(path)


def neutralise_tree(root: str) -> None:
    """After the kernel is gone: remove symlinks and special files the submission
    made (nbgrader, running as root, would follow them) and hand files back to root."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path) or not (os.path.isfile(path) or os.path.isdir(path)):
                os.unlink(path)
                dirnames[:] = [d for d in dirnames if d != name]
            elif st.st_uid != 0:
                os.lchown(path, 0, 0)
    os.lchown(root, 0, 0)


class BoundedExecute(SandboxExecute):
    """Adds a per-notebook wall-clock limit (cells after it are not run and fail
    with a message) and stops a cell early when its spawn workers keep failing
    to unpickle a function defined in the notebook (a Pool would wait forever)."""

    notebook_timeout = Integer(600, help="Wall-clock seconds for one notebook.").tag(config=True)

    def preprocess(self, nb, resources, km=None):
        self._deadline = None  # starts with the first cell: kernel start-up is not counted
        self._stream_tail: dict[int, str] = {}
        self._output_bytes: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._interrupted: set[int] = set()
        return super().preprocess(nb, resources, km=km)

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if self._deadline is None:
            if cell is None:
                return timeout
            self._deadline = time.monotonic() + self.notebook_timeout
        remaining = max(1, math.ceil(self._deadline - time.monotonic()))
        return remaining if timeout is None else min(timeout, remaining)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if (cell.cell_type == "code" and self._deadline is not None
                and time.monotonic() >= self._deadline):
            cell.outputs = [nbformat.v4.new_output(
                "error", ename="NotebookTimeoutError",
                evalue=f"notebook time limit ({self.notebook_timeout} s) reached; cell not run",
                traceback=[f"NotebookTimeoutError: notebook time limit ({self.notebook_timeout} s) "
                           "reached; cell not run"],
            )]
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    # nbclient binds its sync wrapper to its own coroutine at class creation
    execute_cell = run_sync(async_execute_cell)

    max_output_bytes = 8 << 20  # per cell: more is dropped (the grader's memory is at stake)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        total = self._output_bytes.get(cell_index, 0) + size
        self._output_bytes[cell_index] = total
        if total > self.max_output_bytes:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                note = nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"[grader: output beyond {self.max_output_bytes >> 20} MiB dropped]\n")
                outs.append(note)
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if msg["msg_type"] == "stream" and cell_index not in self._interrupted:
            seen = (self._stream_tail.get(cell_index, "") + msg["content"].get("text", ""))[-65536:]
            self._stream_tail[cell_index] = seen
            # a Pool worker that cannot unpickle its task dies and is replaced,
            # forever: the cell would wait for the whole timeout
            if UNPICKLABLE_PATTERN in seen and POOL_WORKER_FRAME in seen:
                self._interrupted.add(cell_index)
                self.log.warning("cell %d: spawn pool workers cannot unpickle their task; "
                                 "interrupting", cell_index)
                asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
        return out


UNPICKLABLE_PATTERN = "Can't get attribute"
POOL_WORKER_FRAME = "in worker"
