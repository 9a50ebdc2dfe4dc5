"""The jail itself, without nbgrader: a command run through
``SandboxKernelManager.jail`` (as a kernel or the grading run's checker is) as the
slot's uid and as root inside (the checker), each a second or so.

What it checks: no user namespace can be made inside (seccomp), whoever asks; the
kernel's folder is capped in total and copied back; what the kernel needs is
mounted in, however private the folders above it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_tools.grade import cgroups, sandbox
from course_tools.grade.cli import make_run_dir
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

pytestmark = [pytest.mark.start_method_independent, pytest.mark.timeout(120),
              pytest.mark.usefixtures("sandbox_required")]

UID = 61990  # outside any grading run's range (61000 + 100 per run, 40 runs)

# what a student (or a checker gone wrong) would try; one JSON line of results
USERNS_CODE = """
import ctypes, json, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
found = {"uid": os.getuid()}
found["unshare"] = libc.unshare(0x10000000) == 0 or ctypes.get_errno()
found["clone3"] = libc.syscall(435, 0, 0) == 0 or ctypes.get_errno()
try:
    run = subprocess.run(["unshare", "-Ur", "id", "-u"], capture_output=True, timeout=10)
    found["unshare -Ur"] = [run.returncode, run.stdout.decode().strip()]
except OSError as exc:
    found["unshare -Ur"] = repr(exc)
open("found.json", "w").write(json.dumps(found))
"""


@pytest.fixture
def jail_run(tmp_path):
    """run(code, uid) -> the JSON the code wrote into its writable folder."""
    run_dir = make_run_dir()
    km = sandbox.SandboxKernelManager(run_dir=str(run_dir), course_root=str(tmp_path),
                                      slot=f"{run_dir.name}-0", uid=UID)

    def run(code: str, uid: int, name: str, scratch: int = 0, files: dict = {},  # noqa: B006
            readonly: tuple = ()) -> dict:
        work = tmp_path / name
        work.mkdir(mode=0o755)
        for rel, text in files.items():
            (work / rel).write_text(text)
        if not scratch:
            os.chown(work, uid, uid)
        argv, kernel = km.jail([sys.executable, "-I", "-c", code], name, uid=uid,
                               cwd=str(work), writable=[] if scratch else [str(work)],
                               scratch=scratch, chown=[str(work)] if scratch else [],
                               mask=[str(work / n) for n in files if n.endswith(".ipynb")],
                               readonly=list(readonly))
        proc = subprocess.run(argv, capture_output=True, timeout=60,
                              env={**os.environ, sandbox.MARKER: km.slot})
        out = work / "found.json"
        assert out.is_file(), (proc.returncode, proc.stderr.decode()[-2000:])
        found = json.loads(out.read_text())
        found["status"] = json.loads(Path(kernel.status_file).read_text() or "{}")
        return found

    yield run
    sandbox.end_slot(km.slot)
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.parametrize("uid", [UID, 0], ids=["student", "checker"])
def test_no_user_namespace_inside_the_jail(jail_run, uid):
    found = jail_run(USERNS_CODE, uid, f"userns-{uid}")
    assert found["uid"] == uid
    assert found["unshare"] == 1  # EPERM
    assert found["clone3"] == 38  # ENOSYS: the C library falls back to clone, filtered
    code, _ = found["unshare -Ur"]
    assert code != 0, found


def test_the_same_uid_outside_the_jail_can_make_one():
    """The control: this host lets that uid make user namespaces, so the EPERM above
    is the jail's filter, not the host's settings."""
    code = "import ctypes; raise SystemExit(ctypes.CDLL(None).unshare(0x10000000))"
    run = subprocess.run(["setpriv", "--reuid", str(UID), "--regid", str(UID),
                          "--clear-groups", sys.executable, "-I", "-c", code],
                         capture_output=True, timeout=30)
    assert run.returncode == 0, run.stderr


CAP = 8 << 20
FILL_CODE = """
import json, os
found = {"in": open("given.txt").read(), "notebook": len(open("hw.ipynb").read())}
try:
    found["stage"] = os.listdir("/.grader-stage")
except OSError as exc:
    found["stage"] = exc.errno
os.makedirs("deep/er")
written, error = 0, None
try:
    for i in range(10_000):  # many files, each far below the per-file limit
        with open(f"deep/er/f{i}", "wb") as fh:
            fh.write(bytes(256 << 10))
        written += 256 << 10
except OSError as exc:
    error = exc.errno
found.update(written=written, error=error)
for i in range(10_000):  # make room for the answer: the cap holds, the folder works
    try:
        os.unlink(f"deep/er/f{i}")
    except FileNotFoundError:
        break
open("found.json", "w").write(json.dumps(found))
"""


def test_the_kernels_folder_is_capped_in_total_and_copied_back(jail_run, tmp_path):
    found = jail_run(FILL_CODE, UID, "fill", scratch=CAP,
                     files={"given.txt": "from the host", "hw.ipynb": "hidden tests"})
    assert found["in"] == "from the host"
    assert found["notebook"] == 0  # the notebook under grading reads as empty
    assert found["stage"] == [] or isinstance(found["stage"], int), found["stage"]
    assert found["error"] == 28, found  # ENOSPC
    assert CAP // 2 < found["written"] <= CAP
    work = tmp_path / "fill"
    assert (work / "hw.ipynb").read_text() == "hidden tests"  # the host's copy untouched
    assert (work / "given.txt").read_text() == "from the host"
    assert (work / "deep/er").is_dir()
    assert found["status"]["scratch"]["files"] >= 4, found["status"]
    assert not found["status"]["scratch"]["full"]


def test_what_the_kernel_needs_is_mounted_whatever_the_folders_above(jail_run, tmp_path):
    """Issue 17, any folder: a package under a 0700 folder of root's (as a course's
    .venv in a private home) is readable by the kernel's uid in the jail."""
    private = tmp_path / "home"
    (private / "pkg").mkdir(parents=True)
    private.chmod(0o700)
    (private / "pkg" / "privmod.py").write_text("VALUE = 'imported'\n")
    code = (f"import json, sys\nsys.path.insert(0, {str(private / 'pkg')!r})\n"
            "import privmod\nopen('found.json', 'w').write(json.dumps({'value': privmod.VALUE}))\n")
    found = jail_run(code, UID, "private", readonly=(str(private / "pkg"),))
    assert found["value"] == "imported"


def test_the_run_says_what_confines_it_as_root():
    words = sandbox.confinement()
    assert "each slot's code as its own uid" in words
    version = "v2" if cgroups.unified() else "v1"
    assert f"memory, process and CPU caps per kernel (cgroups {version})" in words


def test_a_descriptor_the_caller_passes_down_is_left_alone(tmp_path):
    """The grading run hands its checker a report pipe (pass_fds): the jail's launcher
    must open the seccomp filter on another descriptor (here 9 and 8 are taken)."""
    run_dir = make_run_dir()
    km = sandbox.SandboxKernelManager(run_dir=str(run_dir), course_root=str(tmp_path),
                                      slot=f"{run_dir.name}-0", uid=UID)
    code = "import os; os.write(9, b'through the pipe')"
    r, w = os.pipe()
    try:
        argv, _ = km.jail([sys.executable, "-I", "-c", code], "fd9", uid=0, cwd="/",
                          writable=[])
        # the pipe's write end as descriptor 9 of the launcher, /dev/null as 8
        wrap = ["/bin/bash", "-c", f'exec "$@" 9>&{w} {w}>&- 8</dev/null', "sh", *argv]
        proc = subprocess.run(wrap, pass_fds=(w,), capture_output=True, timeout=60)
        os.close(w)
        w = None
        with os.fdopen(r, "rb") as fh:
            assert fh.read() == b"through the pipe", proc.stderr.decode()[-2000:]
    finally:
        if w is not None:
            os.close(w)
        sandbox.end_slot(km.slot)
        shutil.rmtree(run_dir, ignore_errors=True)


# Two students graded at the same time (issue 16: they exchanged data through /var/tmp,
# a filesystem Unix socket and a SysV message queue): the first holds each channel
# open; the second, started once the first is ready, tries each one.
CHANNEL_KEY = 0x5EEE
OPEN_CHANNELS = f"""
import ctypes, json, os, socket, time
libc = ctypes.CDLL(None, use_errno=True)
open("/var/tmp/xchg", "w").write("secret")
unix = socket.socket(socket.AF_UNIX); unix.bind("/tmp/xchg.sock"); unix.listen()
abstract = socket.socket(socket.AF_UNIX); abstract.bind("\\0xchg"); abstract.listen()
queue = libc.msgget({CHANNEL_KEY}, 0o1666)  # IPC_CREAT | 0666
open("ready.json", "w").write(json.dumps({{"queue": queue}}))
time.sleep(8)
"""
TRY_CHANNELS = f"""
import ctypes, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
found = {{}}
found["var_tmp"] = os.path.exists("/var/tmp/xchg")
for name, address in (("unix", "/tmp/xchg.sock"), ("abstract", "\\0xchg")):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(address); found[name] = "connected"
    except OSError as exc:
        found[name] = type(exc).__name__
found["sysv"] = libc.msgget({CHANNEL_KEY}, 0)
open("found.json", "w").write(json.dumps(found))
"""


def test_two_students_at_once_share_no_channel(tmp_path):
    run_dir = make_run_dir()
    kms = [sandbox.SandboxKernelManager(run_dir=str(run_dir), course_root=str(tmp_path),
                                        slot=f"{run_dir.name}-{i}", uid=UID + i)
           for i in (0, 1)]
    procs = []
    try:
        for i, (km, code) in enumerate(zip(kms, (OPEN_CHANNELS, TRY_CHANNELS), strict=True)):
            work = tmp_path / f"student{i}"
            work.mkdir()
            os.chown(work, UID + i, UID + i)
            argv, _ = km.jail([sys.executable, "-I", "-c", code], f"xchg{i}", uid=UID + i,
                              cwd=str(work), writable=[str(work)])
            procs.append(subprocess.Popen(argv, env={**os.environ, sandbox.MARKER: km.slot},
                                          stderr=subprocess.PIPE))
            if i == 0:  # the second starts once the first holds every channel open
                deadline = time.monotonic() + 30
                while not (work / "ready.json").exists():
                    assert procs[0].poll() is None, procs[0].stderr.read().decode()[-2000:]
                    assert time.monotonic() < deadline, "the first student never got ready"
                    time.sleep(0.1)
                assert json.loads((work / "ready.json").read_text())["queue"] >= 0
        procs[1].wait(timeout=30)
        found = json.loads((tmp_path / "student1" / "found.json").read_text())
        assert found == {"var_tmp": False, "unix": "FileNotFoundError",
                         "abstract": "ConnectionRefusedError", "sysv": -1}, found
        assert procs[0].poll() is None, "the first student's channels closed too early"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        for km in kms:
            sandbox.end_slot(km.slot)
        shutil.rmtree(run_dir, ignore_errors=True)
