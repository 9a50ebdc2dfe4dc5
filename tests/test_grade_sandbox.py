"""`course-grade` on a class full of hostile and broken submissions, in one run.

Each bad submission must be contained, reported in words and scored as
nbgrader would, while the correct submission in the same run gets full marks,
the teacher's files stay intact and nothing of any submission is left running.
Every attack is bounded (forks capped at 300, memory at 3 GiB, files written at
128 MiB) so a broken sandbox fails this test instead of taking the machine down.
"""

from __future__ import annotations

import hashlib
import html.parser
import socket
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.support import course as fx
from tests.support.nbgrader_cli import course_grade, grade_rows, leftovers
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(40),
    pytest.mark.timeout(400),
    pytest.mark.usefixtures("sandbox_required"),
]

# Long enough that two spawn pool workers, started in the sandbox on a busy 2-core CI
# machine under a one-core CPU quota, print their unpickling failure before it (6 s was
# missed once in a full run, 12 s once with the quota while the machine was loaded, 20 s
# once in a full run with every core busy: the failure is printed by the workers, which
# must be started, on a busy machine, within this time).
CELL_TIMEOUT = 30
MAX_PROCS = 64
DISK_MB = 32  # what a kernel may write in its folder, in total


# script a student puts in the feedback a teacher opens (markdown, HTML, JavaScript)
XSS_MARKDOWN = '<img src="x" onerror="window.pwned=1"> [link](javascript:window.pwned=4)'
XSS_CODE = (
    "from IPython.display import HTML, Javascript, display\n"
    "display(HTML('<script>window.pwned=2</script><b onmouseover=\"window.pwned=3\">hi</b>'))\n"
    "display(Javascript('window.pwned=5'))\n"
)


class LiveScript(html.parser.HTMLParser):
    """What of a page would run: script elements' text, on* attributes, javascript: links."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "pwned" in data:
            self.found.append(f"<script>{data.strip()[:80]}")


SYSV_KEY = 0x5EED  # the snoop's SysV shared memory segment and message queue


def snoop_code(root: Path, port: int, host: dict) -> str:
    """Tries to read/overwrite what a submission must not see; prints LEAK on success.
    The course's files are named from the kernel's folder (``<course>/autograded/<student>/
    <assignment>``): the teacher's course locally, a worker's private copy on a cluster."""
    targets = {  # what -> the path's expression, evaluated in the kernel
        "gradebook": "f'{course}/gradebook.db'",
        "gradebook snapshot": "f'{run}/snapshot.db'",
        "source": f"f'{{course}}/source/{fx.GA}/{fx.GA}.ipynb'",
        "other student": f"f'{{course}}/submitted/good/{fx.GA}/{fx.GA}.ipynb'",
        "config": "f'{course}/nbgrader_config.py'",
        "teacher file": repr(str(host["teacher file"])),
        "other checkout": repr(str(fx.ROOT / "source" / "hw1" / "hw1.ipynb")),
        "host passwd": repr("/etc/passwd"),
    }
    lines = ["import os, socket, glob",
             "course = os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd())))",
             "run = (glob.glob('/tmp/course-grade-*') + ['/nonexistent'])[0]"]
    for what, path in targets.items():
        lines += [
            "try:",
            f"    open({path}, 'rb').read(1); print('LEAK read {what}')",
            "except OSError:",
            f"    print('blocked read {what}')",
            "try:",
            f"    open({path}, 'ab').write(b'x'); print('LEAK write {what}')",
            "except OSError:",
            f"    print('blocked write {what}')",
        ]
    lines += [
        # only the path down to its own folder exists, nothing beside it
        "print('course listing', os.listdir(course))",
        "print('autograded listing', os.listdir(course + '/autograded'))",
        "runs = glob.glob('/tmp/course-grade-*')",
        "print('run listing', [sorted(os.listdir(r)) for r in runs])",
        "print('kernels listing', [len(os.listdir(r + '/kernels')) for r in runs])",
        "try:",
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('LEAK host port')",
        "except OSError:",
        "    print('blocked host port')",
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()",
        "c = socket.create_connection(srv.getsockname(), timeout=3); a, _ = srv.accept()",
        "c.sendall(b'hi'); assert a.recv(2) == b'hi'; print('own loopback ok')",
        "print('uid', os.getuid())",
        # no user namespace (seccomp): neither the syscall nor the tool
        "import ctypes, subprocess",
        "print('userns syscall', ctypes.CDLL(None).unshare(0x10000000))",
        "r = subprocess.run(['unshare', '-Ur', 'true'], capture_output=True, timeout=10)",
        "print('userns tool', r.returncode)",
        # written where a host would keep it: must not survive the kernel
        "os.makedirs('/run/lock', exist_ok=True)",
        f"open('/var/tmp/{host['marker']}', 'w').write('x'); print('wrote /var/tmp')",
        f"open('/run/lock/{host['marker']}', 'w').write('x'); print('wrote /run/lock')",
        "u = socket.socket(socket.AF_UNIX)",
        "try:",
        f"    u.connect({str(host['unix socket'])!r}); print('LEAK host unix socket')",
        "except OSError:",
        "    print('blocked host unix socket')",
        "import ctypes",
        "libc = ctypes.CDLL(None, use_errno=True)",
        f"shm = libc.shmget({SYSV_KEY}, 1 << 20, 0o1000 | 0o666)",
        f"msq = libc.msgget({SYSV_KEY}, 0o1000 | 0o666)",
        "print('sysv ipc', shm >= 0, msq >= 0)",
        # a symlink submitted next to the notebook (plain nbgrader copies its target)
        "try:",
        "    open('secret', 'rb').read(1); print('LEAK symlinked gradebook')",
        "except OSError:",
        "    print('blocked symlink')",
        # the notebook under grading (hidden tests restored in it) is masked
        f"print('notebook bytes', len(open({fx.GA + '.ipynb'!r}, 'rb').read()))",
    ]
    return "\n".join(lines) + "\n" + fx.GA_CORRECT


ATTACKS = {
    "wrong": "def square(x):\n    return x + x\n",
    "loop": "while True:\n    pass\n" + fx.GA_CORRECT,
    "deadlock": "import threading\nlock = threading.Lock()\nlock.acquire()\nlock.acquire()\n"
    + fx.GA_CORRECT,
    "forkflood": fx.GA_CORRECT + (
        "import os, signal, time\nkids = []\n"
        "for _ in range(300):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(120)\n        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print('forked', len(kids))\n"
        "for pid in kids:\n    os.kill(pid, signal.SIGKILL)\n    os.waitpid(pid, 0)\n"
    ),
    "memory": fx.GA_CORRECT + "blocks = []\nfor _ in range(30):\n    blocks.append(bytearray(100 << 20))\n",
    "daemon": fx.GA_CORRECT + (
        "import os, time\npid = os.fork()\n"
        "if pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(300)\n"
        "    os._exit(0)\nos.waitpid(pid, 0)\n"
    ),
    # many files, each under the per-file limit, until the folder's cap stops it
    "filler": fx.GA_CORRECT + (
        f"import os\nwritten = 0\ntry:\n    for i in range({4 * DISK_MB}):\n"
        "        with open(f'junk{i}', 'wb') as fh:\n            fh.write(bytes(1 << 20))\n"
        "        written += 1\nexcept OSError as exc:\n    print('stopped', exc.errno)\n"
        "print('wrote MiB', written)\n"
    ),
    "unpicklable": fx.GA_CORRECT + (
        "import multiprocessing as mp\ndef double(x):\n    return 2 * x\n"
        "with mp.get_context('spawn').Pool(2) as p:\n    print(p.map(double, [1, 2]))\n"
    ),
    # a pool stuck on unpicklable work that the first interrupt does not end (a lost
    # SIGINT, or one that lands where the pool's terminate then waits)
    "stubborn": fx.GA_CORRECT + (
        "import signal, sys, time\nhits = []\ndef first_is_lost(signum, frame):\n"
        "    hits.append(signum)\n    if len(hits) > 1:\n        raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGINT, first_is_lost)\n"
        "print('Process SpawnPoolWorker-1:\\n  File \"pool.py\", line 114, in worker\\n'\n"
        "      \"AttributeError: Can't get attribute 'double' on <module '__main__'>\", "
        "file=sys.stderr, flush=True)\ntime.sleep(60)\n"
    ),
}


def sysv_keys() -> set[int]:
    """The host's SysV shared memory and message queue keys."""
    keys = set()
    for table in ("shm", "msg"):
        lines = Path(f"/proc/sysvipc/{table}").read_text().splitlines()[1:]
        keys |= {int(line.split()[0]) for line in lines if line.split()}
    return keys


class HostServer:
    """A host service no submission may reach: on the host's loopback, or with
    ``path`` on a filesystem Unix socket (open to every uid)."""

    def __init__(self, path: Path | None = None):
        if path is None:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(str(path))
            path.chmod(0o777)
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_grader(root: Path, *extra_args: str):
    return course_grade(root, fx.GA, "--workers", "2", "--cell-timeout", str(CELL_TIMEOUT),
                        "--notebook-timeout", "60", "--memory-mb", "512",
                        "--max-processes", str(MAX_PROCS), "--max-notebook-mb", "1",
                        *extra_args)


def grade_class(tmp_path: Path, extra_args: tuple[str, ...] = ()) -> dict:
    """Grade the hostile class once, with course-grade's ``extra_args`` (``--scheduler
    ADDRESS``: on a Dask cluster)."""
    root = fx.ga_course(tmp_path / "course",
                        f"c.SandboxKernelManager.disk_bytes = {DISK_MB} << 20\n")
    server = HostServer()
    fx.ga_submit(root, "good")
    for student, answer in ATTACKS.items():
        fx.ga_submit(root, student, answer)
    teacher = tmp_path / "teacher-notes.txt"
    teacher.write_text("answers")
    teacher.chmod(0o644)
    unix = HostServer(tmp_path / "host.sock")
    host = {"teacher file": teacher, "unix socket": tmp_path / "host.sock", "unix": unix,
            "marker": f"snoop-{tmp_path.name}"}
    fx.ga_submit(root, "snoop", snoop_code(root, server.port, host))
    (root / "submitted/snoop/ga/secret").symlink_to(root / "gradebook.db")
    fx.ga_submit(root, "edited", ATTACKS["wrong"], edit_test="assert True")
    # modules that would run as root if the grader imported from the kernel's folder
    fx.ga_submit(root, "shadow")
    pwn = f"open({str(tmp_path / 'pwned')!r}, 'w').write('root ran student code')\n"
    for rel in ("course_tools/__init__.py", "course_tools/grade/__init__.py",
                "course_tools/grade/sandbox_init.py", "json.py"):
        path = root / "submitted/shadow/ga" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pwn if rel != "json.py" else pwn + "from _json import *\n")
    fx.ga_submit(root, "duplicated", fx.GA_CORRECT, duplicate_answer=True)
    xss = fx.ga_submit(root, "xss", fx.GA_CORRECT + XSS_CODE)
    nb = nbformat.read(xss, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(XSS_MARKDOWN))
    nbformat.write(nb, xss)
    fx.ga_submit_raw(root, "invalid", b'{"cells": [ this is not json')
    big = fx.ga_release(root)
    big.cells.append(nbformat.v4.new_markdown_cell("x" * (2 << 20)))
    fx.ga_submit_raw(root, "huge", nbformat.writes(big).encode())
    (root / "submitted" / "missing" / fx.GA).mkdir(parents=True)
    (root / "submitted" / "missing" / fx.GA / "notes.txt").write_text("forgot it")
    fx.ga_submit(root, "bad name")
    # notebooks that are links, refused unread (as root, a link could read any file or
    # block on one of /proc): to another student's, to a host file
    for student, target in (("linked", root / "submitted/good/ga/ga.ipynb"),
                            ("linked-passwd", Path("/etc/passwd"))):
        link = fx.ga_submit(root, student)
        link.unlink()
        link.symlink_to(target)
    source = root / "source" / fx.GA / f"{fx.GA}.ipynb"
    before = {"source": sha(source), "good": sha(root / "submitted/good/ga/ga.ipynb")}
    started = time.monotonic()
    try:
        proc = run_grader(root, *extra_args)
    finally:
        server.close()
        unix.close()
    elapsed = time.monotonic() - started
    rows = grade_rows(root, fx.GA)
    return {"root": root, "proc": proc, "rows": rows, "server": server, "before": before,
            "host": host, "args": tuple(extra_args), "cluster": "--scheduler" in extra_args,
            "elapsed": elapsed, "pwned": tmp_path / "pwned"}


def row(graded, student):
    assert graded["proc"].returncode == 0, graded["proc"].stderr[-3000:]
    return graded["rows"][student]


def score(graded, student) -> float:
    return float(row(graded, student)["score"])


def output_text(graded, student) -> str:
    nb = nbformat.read(graded["root"] / "autograded" / student / "ga" / "ga.ipynb", as_version=4)
    return "\n".join(o.get("text", "") + str(o.get("evalue", "")) + o.get("ename", "")
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def check_correct_submission_gets_full_marks_in_the_same_run(graded):
    assert score(graded, "good") == fx.GA_MAX_SCORE
    assert row(graded, "good")["reasons"] == ""
    assert (graded["root"] / "feedback" / "good" / "ga" / "ga.html").is_file()


def check_wrong_answer_scores_zero_with_the_failing_tests_named(graded):
    assert score(graded, "wrong") == 0
    assert "test failed in cell 3 (test_square)" in row(graded, "wrong")["reasons"]


def check_hanging_cell_times_out_and_grading_goes_on(graded, student):
    assert score(graded, student) == 0
    assert "timeout in cell 2 (answer)" in row(graded, student)["reasons"]


def check_fork_flood_is_capped_and_reported(graded):
    text = output_text(graded, "forkflood")
    forked = int(text.split("forked", 1)[1].split()[0])
    assert 0 < forked < MAX_PROCS
    assert "process limit reached" in row(graded, "forkflood")["reasons"]
    assert score(graded, "forkflood") == fx.GA_MAX_SCORE  # it cleaned up, then passed


def check_memory_hog_is_stopped_and_reported(graded):
    r = row(graded, "memory")
    assert "memory" in r["reasons"].lower()
    assert score(graded, "memory") == 0


def check_daemon_left_running_is_killed_and_reported(graded):
    assert "process left running" in row(graded, "daemon")["reasons"]
    assert score(graded, "daemon") == fx.GA_MAX_SCORE


def check_disk_filler_is_capped_and_graded(graded):
    text = output_text(graded, "filler")
    assert "stopped 28" in text  # ENOSPC
    wrote = int(text.split("wrote MiB", 1)[1].split()[0])
    assert DISK_MB // 2 <= wrote <= DISK_MB
    folder = graded["root"] / "autograded" / "filler" / fx.GA
    kept = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert kept <= (DISK_MB + 2) << 20, kept
    assert score(graded, "filler") == fx.GA_MAX_SCORE


def cell_story(graded, student: str, index: int) -> str:
    """A graded cell's outputs and nbclient's timestamps: what a failed check shows."""
    nb = nbformat.read(graded["root"] / "autograded" / student / "ga" / "ga.ipynb", as_version=4)
    cell = nb.cells[index]
    outs = [(o.output_type, (o.get("text") or o.get("evalue") or "")[-800:]) for o in cell.outputs]
    return f"timestamps {dict(cell.metadata.get('execution', {}))}, outputs {outs}"


def check_unpicklable_worker_is_diagnosed_before_the_timeout(graded):
    r = row(graded, "unpicklable")
    assert "worker not picklable under spawn (cell 2 (answer)" in r["reasons"]
    assert "timeout in cell 2" not in r["reasons"], cell_story(graded, "unpicklable", 1)
    assert score(graded, "unpicklable") == fx.GA_MAX_SCORE
    # interrupted again while the cell runs on: the first SIGINT is lost here
    r = row(graded, "stubborn")
    assert "worker not picklable under spawn (cell 2 (answer)" in r["reasons"]
    assert "timeout in cell 2" not in r["reasons"], cell_story(graded, "stubborn", 1)
    assert score(graded, "stubborn") == fx.GA_MAX_SCORE


def check_sandbox_hides_the_host_teacher_files_other_students_and_host_network(graded):
    text = output_text(graded, "snoop")
    assert "LEAK" not in text
    for what in ("gradebook", "gradebook snapshot", "source", "other student", "config",
                 "teacher file", "other checkout", "host passwd"):
        assert f"blocked read {what}" in text and f"blocked write {what}" in text
    assert "course listing ['autograded']" in text
    assert "autograded listing ['snoop']" in text
    # the grading run's folder holds only this kernel's own socket folder, its
    # init's copy, spec and status file (root's, unreadable); on a cluster's worker
    # also the path down to the kernel's folder: the private course is in its run folder
    listing = ["kernels", "sandbox_init.py", "specs", "status"]
    if graded["cluster"]:
        listing.insert(0, "course")
    assert f"run listing [{listing}]" in text, text
    assert "kernels listing [1]" in text
    assert "blocked host port" in text and graded["server"].connections == 0
    assert "own loopback ok" in text
    # its own /var/tmp, /run and IPC namespace: written inside, gone with the kernel
    host = graded["host"]
    assert "wrote /var/tmp" in text and "wrote /run/lock" in text
    assert not Path("/var/tmp", host["marker"]).exists()
    assert not Path("/run/lock", host["marker"]).exists()
    assert "blocked host unix socket" in text and host["unix"].connections == 0
    assert "sysv ipc True True" in text and SYSV_KEY not in sysv_keys()
    assert "notebook bytes 0" in text and "blocked symlink" in text
    assert "userns syscall -1" in text and "userns tool 0" not in text
    assert "userns tool" in text
    uid = int(text.split("uid", 1)[1].split()[0])
    assert uid >= 61000
    assert score(graded, "snoop") == fx.GA_MAX_SCORE
    root = graded["root"]
    assert sha(root / "source/ga/ga.ipynb") == graded["before"]["source"]
    assert sha(root / "submitted/good/ga/ga.ipynb") == graded["before"]["good"]


def check_feedback_runs_no_student_script(graded):
    page = graded["root"] / "feedback" / "xss" / "ga" / "ga.html"
    parser = LiveScript()
    parser.feed(page.read_text())
    assert parser.found == [], parser.found
    assert "pwned" in page.read_text()  # shown as text, not dropped unseen
    assert score(graded, "xss") == fx.GA_MAX_SCORE


def check_student_modules_never_run_as_root(graded):
    assert not graded["pwned"].exists()
    assert row(graded, "shadow")["status"] in ("graded", "failed")
    # only the notebooks (and timestamp) of a submission reach grading
    assert not (graded["root"] / "autograded/shadow/ga/course_tools").exists()
    assert not (graded["root"] / "autograded/shadow/ga/json.py").exists()


def check_edited_test_cell_is_restored_and_reported(graded):
    assert "edited test cell 'test_square'" in row(graded, "edited")["reasons"]
    assert score(graded, "edited") == 0


BAD_INPUT = [
    ("invalid", "invalid notebook file ga.ipynb"),
    ("huge", "too large"),
    ("missing", "missing notebook ga.ipynb"),
    ("bad name", "not a usable student id"),
    ("duplicated", "duplicated grade cell 'answer'"),
    ("linked", "notebook ga.ipynb is a link, not the notebook itself"),
    ("linked-passwd", "notebook ga.ipynb is a link, not the notebook itself"),
]


def check_bad_input_is_reported_for_that_student_only(graded, student, reason):
    assert reason in row(graded, student)["reasons"]
    # nbgrader alone aborts a notebook with a duplicated grade cell; here the last
    # copy is graded
    assert score(graded, student) == (fx.GA_MAX_SCORE if student == "duplicated" else 0)


def check_gradebook_holds_every_student(graded):
    with Gradebook(f"sqlite:///{graded['root'] / 'gradebook.db'}") as gb:
        scores = {s.student.id: s.score for s in gb.find_assignment("ga").submissions}
    expected = set(graded["rows"]) - {"bad name"}
    assert set(scores) == expected
    assert scores["good"] == fx.GA_MAX_SCORE
    assert "student" in graded["proc"].stdout and "good" in graded["proc"].stdout


def check_nothing_is_left_running(graded):
    assert leftovers() == []
    run = graded["proc"].stderr.split("grading run ", 1)[1].split()[0]
    for controller in ("pids", "memory"):
        assert not list(Path(f"/sys/fs/cgroup/{controller}/course-grade").glob(f"{run}-*"))


def check_resume_regrades_only_changed_submissions(graded):
    root = graded["root"]
    again = run_grader(root, *graded["args"])
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 to grade" in again.stderr
    fx.ga_submit(root, "wrong")  # the student fixed it and resubmitted
    third = run_grader(root, *graded["args"])
    assert third.returncode == 0, third.stderr[-2000:]
    assert "1 to grade" in third.stderr
    rows = grade_rows(root, fx.GA)
    assert float(rows["wrong"]["score"]) == fx.GA_MAX_SCORE
    assert rows["loop"] == graded["rows"]["loop"]  # kept from the first run


def hostile_checks() -> list[tuple]:
    """Every check of a graded hostile class, as (check, its arguments): the local test
    and the cluster's (tests/test_grade_dask.py) run this one list."""
    return [
        (check_correct_submission_gets_full_marks_in_the_same_run, ()),
        (check_wrong_answer_scores_zero_with_the_failing_tests_named, ()),
        (check_hanging_cell_times_out_and_grading_goes_on, ("loop",)),
        (check_hanging_cell_times_out_and_grading_goes_on, ("deadlock",)),
        (check_fork_flood_is_capped_and_reported, ()),
        (check_memory_hog_is_stopped_and_reported, ()),
        (check_daemon_left_running_is_killed_and_reported, ()),
        (check_unpicklable_worker_is_diagnosed_before_the_timeout, ()),
        (check_disk_filler_is_capped_and_graded, ()),
        (check_sandbox_hides_the_host_teacher_files_other_students_and_host_network, ()),
        (check_edited_test_cell_is_restored_and_reported, ()),
        (check_student_modules_never_run_as_root, ()),
        (check_feedback_runs_no_student_script, ()),
        *[(check_bad_input_is_reported_for_that_student_only, case) for case in BAD_INPUT],
        (check_gradebook_holds_every_student, ()),
        (check_nothing_is_left_running, ()),
        (check_resume_regrades_only_changed_submissions, ()),
    ]


def run_checks(graded: dict, checks: list[tuple]) -> None:
    """Every check runs; all failures are listed."""
    failures = []
    for check, args in checks:
        try:
            check(graded, *args)
        except Exception as exc:  # noqa: BLE001 - collect every failing check
            failures.append(f"{check.__name__}{args}: {type(exc).__name__}: {exc}"[:1500])
    print(graded["proc"].stdout)
    print(f"graded the class in {graded['elapsed']:.0f} s")
    assert not failures, "\n\n".join(failures)


def test_hostile_class(tmp_path):
    """One grading run (pytest-xdist would split separate tests across workers and
    grade the class twice); every check runs and all failures are listed."""
    run_checks(grade_class(tmp_path), hostile_checks())
