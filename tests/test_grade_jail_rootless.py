"""The sandbox for a teacher without root (issue 17): the same jail, as its own user
namespace, driven by the unprivileged user ``cloudsdk`` (uid 1000) on this machine.

One real kernel, started by ``SandboxKernelManager`` as that user, in a course under
a 0700 home, tries what a student would; and the refusal when user namespaces are
missing names what is missing."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from course_tools.grade import jail, sandbox
from tests.support.sandboxing import (
    checkout_usable_by,
    sandbox_required,  # noqa: F401 - fixture
    unusable_checkout,
)

pytestmark = [pytest.mark.start_method_independent, pytest.mark.timeout(180),
              pytest.mark.usefixtures("sandbox_required")]

TEACHER = "cloudsdk"
DISK = 8 << 20

# what the student's kernel tries; one line of JSON on stdout
STUDENT = r"""
import ctypes, json, os, socket
libc = ctypes.CDLL(None, use_errno=True)
found = {"uid": os.getuid()}
def attempt(name, fn):
    try:
        fn(); found[name] = "LEAK"
    except OSError as exc:
        found[name] = exc.errno
attempt("host file", lambda: open(HOST_FILE).read())
attempt("host socket", lambda: socket.socket(socket.AF_UNIX).connect(HOST_SOCKET))
attempt("init's cwd", lambda: os.listdir("/proc/1/cwd"))
attempt("init's fds", lambda: [os.open(f"/proc/1/fd/{n}", os.O_RDONLY)
                                for n in os.listdir("/proc/1/fd")])
attempt("init's memory", lambda: open("/proc/1/mem", "rb"))
attempt("stage", lambda: os.listdir("/.grader-stage/x"))
found["ptrace init"] = libc.ptrace(16, 1, 0, 0) == 0 or ctypes.get_errno()
found["userns"] = libc.unshare(0x10000000) == 0 or ctypes.get_errno()
found["caps"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Cap")]
import sys
sys.path.insert(0, PKG)
import privmod
found["private package"] = privmod.VALUE
written = 0
try:
    for i in range(64):
        with open(f"junk{i}", "wb") as fh:
            fh.write(bytes(1 << 20))
        written += 1
except OSError as exc:
    found["disk"] = exc.errno
found["written MiB"] = written
for i in range(written + 1):
    if os.path.exists(f"junk{i}"):
        os.unlink(f"junk{i}")
open("answer.py", "w").write("kept")
print(json.dumps(found))
"""

# run as the teacher: probe, then one kernel through the grader's kernel manager
TEACHER_SCRIPT = r"""
import asyncio, json, sys
from course_tools.grade import sandbox
from course_tools.grade.cli import make_run_dir
args = json.loads(sys.argv[1])
out = {"probe": sandbox.check(), "rootless": sandbox.rootless(),
       "confinement": sandbox.confinement()}
run_dir = make_run_dir()
km = sandbox.SandboxKernelManager(
    kernel_name="python3", run_dir=str(run_dir), course_root=args["course"],
    slot=run_dir.name + "-0", uid=61000, disk_bytes=args["disk"],
    readonly_paths=[*sandbox._course_package_paths(), args["pkg"]])

async def main():
    await km.start_kernel(cwd=args["work"])
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=90)
    texts = []
    def hook(msg):
        content = msg["content"]
        texts.append(content.get("text", "") + "".join(content.get("traceback", [])))
    await kc.execute_interactive(args["code"], timeout=60, output_hook=hook)
    kc.stop_channels()
    await km.shutdown_kernel()
    return "".join(texts)

CHECKER = '''
import ctypes, json
caps = [x.split()[1] for x in open('/proc/self/status') if x.startswith('Cap')]
userns = ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0 or ctypes.get_errno()
open('checker.json', 'w').write(json.dumps({'caps': caps, 'userns': userns}))
'''

try:
    out["kernel"] = asyncio.run(main())
    # the grading run's checker asks for root in the jail: without root it gets uid 0
    # with no capability, like the kernel
    import subprocess
    argv, _ = km.jail([sys.executable, "-I", "-c", CHECKER], "checker", uid=0,
                      cwd=args["work"], writable=[args["work"]])
    subprocess.run(argv, timeout=60)
finally:
    sandbox.end_slot(km.slot)
    import shutil; shutil.rmtree(run_dir, ignore_errors=True)
print("RESULT " + json.dumps(out))
"""


class UnixServer:
    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        path.chmod(0o777)  # open to every uid on the host
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.connections, self.stop = 0, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                self.sock.accept()[0].close()
                self.connections += 1
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def teacher_home():
    """A 0700 home of the teacher's, outside pytest's root-only folders."""
    try:
        user = pwd.getpwnam(TEACHER)
    except KeyError:
        pytest.fail(f"no user {TEACHER!r} on this machine to test the sandbox without root",
                    pytrace=False)
    if not checkout_usable_by(user.pw_uid):
        pytest.skip(unusable_checkout(user.pw_uid, f"the teacher {TEACHER!r}"))
    base = Path(tempfile.mkdtemp(prefix="jail-rootless-", dir="/tmp"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir(mode=0o700)
    os.chown(home, user.pw_uid, user.pw_gid)
    yield base, home, user
    shutil.rmtree(base, ignore_errors=True)


def as_teacher(user, *argv: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", "--reuid", str(user.pw_uid), "--regid", str(user.pw_gid), "--clear-groups",
         *argv], capture_output=True, text=True, timeout=timeout, cwd="/",
        env={"PATH": os.environ["PATH"], "HOME": "/tmp", "LANG": "C.UTF-8"})


def test_a_teacher_without_root_grades_in_the_same_jail(teacher_home):
    base, home, user = teacher_home
    secret = base / "teacher-notes.txt"  # readable by every uid on the host
    secret.write_text("answers")
    secret.chmod(0o644)
    sockets = base / "sockets"
    sockets.mkdir(mode=0o777)
    sockets.chmod(0o777)
    server = UnixServer(sockets / "host.sock")
    course = home / "course"
    work = course / "autograded" / "s" / "a"
    pkg = home / "pkg"  # a package under the 0700 home (as the course's .venv would be)
    for folder in (work, pkg):
        folder.mkdir(parents=True)
    (pkg / "privmod.py").write_text("VALUE = 'imported'\n")
    for path in [home, *home.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    code = (f"HOST_FILE = {str(secret)!r}\nHOST_SOCKET = {str(sockets / 'host.sock')!r}\n"
            f"PKG = {str(pkg)!r}\n" + STUDENT)
    args = {"course": str(course), "work": str(work), "pkg": str(pkg), "disk": DISK,
            "code": code}
    try:
        run = as_teacher(user, sys.executable, "-c", TEACHER_SCRIPT, json.dumps(args))
    finally:
        server.close()
    assert "RESULT " in run.stdout, (run.returncode, run.stderr[-3000:])
    out = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert out["probe"] is None and out["rootless"] is True
    # cgroup v1 here: without root, the summary says which limits do not apply
    assert "NO cgroups here (without root on a cgroup v1 host): only rlimits" in \
        out["confinement"]
    found = json.loads(out["kernel"].strip().splitlines()[-1])
    assert "LEAK" not in found.values(), found
    assert found["uid"] == 0  # the teacher, as the jail's only uid, with no capability
    assert found["host file"] == 2 and found["host socket"] == 2  # ENOENT: not in the jail
    # init is not dumpable: the kernel, the same uid, cannot reach its host folder
    # (cwd), descriptors or memory
    assert found["init's cwd"] == found["init's fds"] == found["init's memory"] == 13
    assert found["ptrace init"] == 1  # EPERM
    assert found["userns"] == 1
    assert set(found["caps"]) == {"0000000000000000"}, found["caps"]  # no capability at all
    assert found["private package"] == "imported"
    assert found["disk"] == 28 and found["written MiB"] <= DISK >> 20  # ENOSPC at the cap
    assert server.connections == 0
    assert (work / "answer.py").read_text() == "kept"  # copied back out of the jail
    assert not list(work.glob("junk*"))
    assert work.stat().st_uid == user.pw_uid
    checker = json.loads((work / "checker.json").read_text())
    assert set(checker["caps"]) == {"0000000000000000"} and checker["userns"] == 1


def test_the_refusal_names_what_is_missing(monkeypatch, tmp_path):
    """Without root, no user namespaces: the refusal says so (and about bwrap when
    that is missing too), instead of a bwrap error."""
    monkeypatch.setattr(sandbox, "userns_works", lambda: False)
    why = sandbox.check(as_root=False)
    assert "unprivileged user namespaces are disabled" in why and "bubblewrap" not in why
    monkeypatch.setattr(jail, "bwrap", lambda: None)
    why = sandbox.check(as_root=False)
    assert "bubblewrap is missing" in why and "user namespaces are disabled" in why
    assert sandbox.check(as_root=True).startswith("bubblewrap is missing")


def test_a_bwrap_that_fails_is_refused_with_its_words(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(jail, "bwrap", lambda: str(fake))
    monkeypatch.setattr(sandbox, "userns_works", lambda: True)
    why = sandbox.check(as_root=False)
    assert "as your own user, in a user namespace" in why
    assert "setting up uid map: Permission denied" in why


@pytest.mark.slow(20)
def test_make_grade_as_a_teacher_without_root_in_a_private_home(teacher_home):
    """The whole ``course-grade`` as cloudsdk, the course in its 0700 home: graded as
    root would grade it."""
    from tests.support import course as fx
    from tests.support.nbgrader_cli import grade_rows

    _, home, user = teacher_home
    root = fx.ga_course(home / "course")
    fx.ga_submit(root, "good")
    fx.ga_submit(root, "wrong", "def square(x):\n    return x + x\n")
    for path in [home, *home.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    run = as_teacher(user, sys.executable, "-m", "course_tools.grade.cli", fx.GA, "--course",
                     str(root), "--workers", "2", "--cell-timeout", "20")
    assert run.returncode == 0, run.stderr[-3000:]
    rows = grade_rows(root, fx.GA)
    assert float(rows["good"]["score"]) == fx.GA_MAX_SCORE and rows["good"]["reasons"] == ""
    assert float(rows["wrong"]["score"]) == 0
