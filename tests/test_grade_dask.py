"""Grading on a Dask cluster (issue 19): a real ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 grade the generated course (tests/support/course.py) through
``course-grade --scheduler``: the same CSV, files and gradebook as the local grader,
a worker killed mid-task costs nobody a grade, an unreachable scheduler is an error
within seconds, the hostile class (tests/test_grade_sandbox.py) gets the same outcomes,
a worker gets the assignment and the one student it grades out of the gradebook (no
other person), and without ``--scheduler`` nothing of Dask is imported."""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil
import pytest
import sqlalchemy
from nbgrader import api
from nbgrader.api import Gradebook

from course_tools.grade import gradebook, parcel, precheck, report, stale
from tests import test_grade_sandbox as hostile
from tests.support import course as fx
from tests.support.sandboxing import sandbox_required  # noqa: F401 - a fixture
from tests.test_grade_postgres import postgres  # noqa: F401 - a fixture

pytestmark = [pytest.mark.start_method_independent, pytest.mark.usefixtures("sandbox_required")]

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
UP_WITHIN = 60  # seconds for a scheduler or worker to come up on a busy machine
SLOW = fx.GA_CORRECT + "import time\ntime.sleep(4)\n"
CLASS = {  # student -> answer: right, wrong, crashing the kernel, a memory bomb
    "alice": fx.GA_CORRECT, "bob": "def square(x):\n    return x + x\n",
    "carol": "import os\nos._exit(1)\n",
    "erin": "hog = []\nwhile True:\n    hog.append(b'x' * (64 << 20))\n",
}


def env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as fh:
        return subprocess.Popen([str(BIN / "dask"), *args], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=REPO, env=env(), start_new_session=True)


def stop(proc: subprocess.Popen, kill: bool = False) -> None:
    """The process and everything it started (its grading slot, kernels), however deep;
    multiprocessing's resource trackers are left to unlink the semaphores of the killed
    and end by themselves."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        family = []
    trackers = [p for p in family if "resource_tracker" in " ".join(_cmdline(p))]
    if not kill:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
    for p in family:
        if p not in trackers:
            try:
                p.kill()
            except psutil.Error:
                pass
    psutil.wait_procs(family, timeout=10)
    proc.wait(10)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def wait_for(what: str, log: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + UP_WITHIN
    while what not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def add_worker(address: str, logs: Path, name: str) -> subprocess.Popen:
    log = logs / f"{name}.log"
    proc = start(["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--name", name], log)
    wait_for("Registered to", log, proc)
    return proc


def start_scheduler(log: Path) -> tuple[str, subprocess.Popen]:
    """A scheduler on a free port of 127.0.0.1, up and listening: (address, process)."""
    port = free_port()
    proc = start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                 log)
    try:
        wait_for("Scheduler at", log, proc)
    except BaseException:
        stop(proc, kill=True)
        raise
    return f"tcp://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("dask")
    address, scheduler = start_scheduler(logs / "scheduler.log")
    procs = [scheduler]
    try:
        procs += [add_worker(address, logs, f"w{i}") for i in (1, 2)]
        yield address, logs
    finally:
        for proc in reversed(procs):
            stop(proc)
        stale.clean()  # what a killed worker's grading run left


@pytest.fixture(scope="module")
def ga(tmp_path_factory):
    """The generated course with CLASS submitted (made once, copied by each test)."""
    root = fx.ga_course(tmp_path_factory.mktemp("ga") / "course")
    for student, answer in CLASS.items():
        fx.ga_submit(root, student, answer)
    return root


def grade(course: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "course-grade"), fx.GA, "--course", str(course),
                           "--cell-timeout", "20", *args], cwd=course, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def table(out: str) -> str:
    """The summary table a run prints (stdout up to the CSV's path, which differs)."""
    return out.split("\ngrades CSV:")[0]


def bar_end(err: str) -> str:
    """The progress bar's last state, without its rates and times."""
    return re.findall(r"grading \S+: +100%\|[^|]*\| *\d+/\d+", err)[-1]


def rows(course: Path) -> dict[str, dict]:
    with (course / "grades" / f"{fx.GA}.csv").open() as fh:
        return {r["student_id"]: {k: v for k, v in r.items() if k != "seconds"}
                for r in csv.DictReader(fh)}


def files(course: Path, top: str) -> dict[str, bytes | None]:
    """Every file and folder under ``top``, notebooks without execution times."""
    out = {}
    for path in sorted((course / top).rglob("*")):
        key = str(path.relative_to(course))
        if path.is_dir():
            out[key] = None
        elif path.suffix == ".ipynb":
            out[key] = b"\n".join(line for line in path.read_bytes().splitlines()
                                  if b'"iopub.' not in line and b'"shell.' not in line)
        else:
            out[key] = path.read_bytes()
    return out


def scores(course: Path) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(fx.GA).submissions}


def grades(course: Path) -> dict[str, dict]:
    """Each student's grades and comments as the gradebook holds them."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: {
                    "grades": {(nb.name, g.name): (g.auto_score, g.manual_score,
                                                   g.needs_manual_grade)
                               for nb in s.notebooks for g in nb.grades},
                    "comments": {(nb.name, c.name): (c.auto_comment, c.manual_comment)
                                 for nb in s.notebooks for c in nb.comments}}
                for s in gb.find_assignment(fx.GA).submissions}


def earlier_round(course: Path) -> None:
    """What a teacher left from an earlier round: a due date the class missed, bob's
    first test graded by hand, with a comment, and an extension; and a course that has
    autograde refuse students not on its roster (the grader adds them itself)."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "fixture") as gb:
        gb.update_or_create_assignment(fx.GA, duedate=datetime(2026, 11, 25, 12))
        gb.update_or_create_student("bob", first_name="Bob", email="bob@school.example")
        gb.update_or_create_submission(fx.GA, "bob")
        gb.grant_extension(fx.GA, "bob", days=2)
        gb.find_grade("test_square", fx.GA, fx.GA, "bob").manual_score = 2
        gb.find_comment("answer", fx.GA, fx.GA, "bob").manual_comment = "see me, Bob"
        gb.db.commit()
    with (course / "nbgrader_config.py").open("a") as fh:
        fh.write("c.Autograde.create_student = False\n")


def test_cluster_grades_as_the_local_grader_and_resumes(cluster, ga, tmp_path):
    address, _ = cluster
    local, remote = tmp_path / "local", tmp_path / "remote"
    shutil.copytree(ga, local)
    shutil.copytree(ga, remote)
    for course in (local, remote):
        earlier_round(course)
    # the local run, in a process that then shows it never imported Dask
    code = (f"import sys; from course_tools.grade import cli\n"
            f"rc = cli.main(['{fx.GA}', '--course', '{local}', '--cell-timeout', '20'])\n"
            "assert rc == 0, rc\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask')]\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=local, env=env(),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    on_cluster = grade(remote, "--scheduler", address)
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    assert "2 worker(s)" in on_cluster.stderr
    assert rows(remote) == rows(local)
    assert table(on_cluster.stdout) == table(done.stdout) and "carol" in table(done.stdout)
    assert bar_end(on_cluster.stderr) == bar_end(done.stderr)
    assert rows(remote)["alice"]["score"] == "3.0" and rows(remote)["carol"]["status"] == "failed"
    assert scores(remote) == scores(local)
    # bob's hand-graded test needs a look again, as nbgrader autograde would say
    assert grades(remote) == grades(local)
    assert grades(remote)["bob"]["grades"][fx.GA, "test_square"] == (0.0, 2.0, True)
    for top in ("autograded", "feedback"):
        assert files(remote, top) == files(local, top), top
    assert b"see me, Bob" in (remote / "feedback" / "bob" / fx.GA / f"{fx.GA}.html").read_bytes()
    again = grade(remote, "--scheduler", address)
    assert again.returncode == 0 and "0 to grade" in again.stderr, again.stderr[-2000:]


def test_a_worker_killed_while_grading_costs_nobody_a_grade(cluster, ga, tmp_path):
    address, logs = cluster
    course = tmp_path / "course"
    shutil.copytree(ga, course)
    for i in range(3):  # slow, so that the victim is busy when killed
        fx.ga_submit(course, f"slow{i}", SLOW)
    victim = add_worker(address, logs, "victim")
    run = subprocess.Popen([str(BIN / "course-grade"), fx.GA, "--course", str(course),
                            "--cell-timeout", "20", "--scheduler", address], cwd=course,
                           env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # a student's kernel (its jail's PID 1) under the victim: it is grading (the
        # probe's own jail runs bwrap, and imports ipykernel, too)
        while not grading_under(victim.pid):
            assert run.poll() is None and time.monotonic() < deadline, "victim never graded"
            time.sleep(0.1)
        stop(victim, kill=True)  # the machine is gone: its slot and kernel with it
        out, err = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)
        if victim.poll() is None:
            stop(victim, kill=True)
    assert run.returncode == 0, err[-3000:]
    assert "3 worker(s)" in err and "refused" not in err, err[-3000:]
    got = rows(course)
    expected = {s: "3.0" for s in [*(f"slow{i}" for i in range(3)), "alice"]}
    expected.update(bob="0.0", carol="0.0", erin="0.0")
    assert {s: r["score"] for s, r in got.items()} == expected, out
    assert all(r["status"] == "graded" for s, r in got.items() if s == "alice" or
               s.startswith("slow")), out
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs = [s.student.id for s in gb.find_assignment(fx.GA).submissions]
    assert sorted(subs) == sorted(expected)


def recorded(course: Path) -> set[str]:
    """The students whose grades the gradebook holds."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id for s in gb.find_assignment(fx.GA).submissions
                if s.notebooks and all(g.auto_score is not None
                                       for nb in s.notebooks for g in nb.grades)}


def test_a_lost_scheduler_stops_the_run_and_a_rerun_grades_the_rest(cluster, ga, tmp_path):
    """The README's promise: if the scheduler goes away, the run stops saying how many
    were not graded; run again (here on another cluster) to grade those, the others kept."""
    address, logs = cluster
    course = tmp_path / "course"
    shutil.copytree(ga, course)
    for i in range(2):
        fx.ga_submit(course, f"slow{i}", SLOW)
    doomed, scheduler = start_scheduler(tmp_path / "doomed.log")
    worker = None
    run = None
    try:
        worker = add_worker(doomed, tmp_path, "lonely")
        run = subprocess.Popen([str(BIN / "course-grade"), fx.GA, "--course", str(course),
                                "--cell-timeout", "20", "--scheduler", doomed,
                                "--connect-timeout", "5"], cwd=course, env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        # one student recorded (the resume state is saved after the gradebook), the next
        # one grading (its kernel under the worker)
        while not (report.load_state(course, fx.GA) and grading_under(worker.pid)):
            assert run.poll() is None and time.monotonic() < deadline, "nothing graded"
            time.sleep(0.1)
        stop(scheduler, kill=True)
        lost = time.monotonic()
        out, err = run.communicate(timeout=120)
        waited = time.monotonic() - lost
    finally:
        for proc in (run, worker, scheduler):
            if proc is not None and proc.poll() is None:
                stop(proc, kill=True)
    assert run.returncode != 0, err[-3000:]
    said = re.search(r"(\d+) submission\(s\) not graded", err)
    assert said, err[-3000:]
    assert waited < 60, f"the run took {waited:.0f} s to notice"
    kept = recorded(course)
    everyone = {*CLASS, "slow0", "slow1"}
    assert kept and len(everyone - kept) == int(said.group(1)) > 0, (kept, err[-2000:])
    again = grade(course, "--scheduler", address)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{said.group(1)} to grade" in again.stderr, again.stderr[-2000:]
    assert set(rows(course)) == everyone
    assert all(rows(course)[s]["score"] == "3.0" for s in ("alice", "slow0", "slow1"))


def grading_under(pid: int) -> bool:
    """A student's kernel (its jail's PID 1, sandbox_init.py) runs below ``pid``."""
    return any("sandbox_init.py" in " ".join(_cmdline(p)) for p in _descendants(pid))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def check_nothing_is_left_running_on_the_workers(graded):
    """The cluster's equivalent of the local check_nothing_is_left_running, which cannot
    hold here: locally the grading run ends with the command, its processes and cgroups
    with it, and nothing is left under the test; here the Dask workers are this test's
    descendants and each keeps its grading slot for the next run (by design). What must
    be gone is all a student started (the slot has no child left) and every kernel's
    cgroup of the workers' grading runs."""
    address = graded["args"][graded["args"].index("--scheduler") + 1]
    workers = [p for p in psutil.Process().children()
               if "worker" in _cmdline(p) and address in _cmdline(p)]
    assert len(workers) == 2, [_cmdline(p) for p in workers]
    runs = [Path(f.path).parent.name for w in workers for f in w.open_files()
            if Path(f.path).name == stale.LOCK]
    assert len(runs) == 2, runs  # each worker graded, in its own grading run
    deadline = time.monotonic() + 10  # a killed process takes a moment
    while True:
        left = [" ".join(_cmdline(p))[:150] for w in workers for p in _descendants(w.pid)
                if p.ppid() != w.pid or not any(
                    helper in " ".join(_cmdline(p)) for helper in ("resource_tracker",
                                                                   "spawn_main"))]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == []
    for controller in ("pids", "memory"):
        for run in runs:
            assert not list(Path(f"/sys/fs/cgroup/{controller}/course-grade").glob(f"{run}-*"))


# the hostile class's checks that cannot hold on a cluster, and what replaces each
ON_CLUSTER = {hostile.check_nothing_is_left_running: check_nothing_is_left_running_on_the_workers}


# its own slow unit in make test would start a second cluster: kept with the file's tests
@pytest.mark.xdist_group("tests/test_grade_dask.py")
@pytest.mark.slow(45)
@pytest.mark.timeout(400)
def test_the_hostile_class_gets_the_same_outcomes_on_the_cluster(cluster, tmp_path):
    """Every check of the local test_hostile_class (one list: hostile_checks), on one
    grading run through the cluster; the few that must differ are in ON_CLUSTER."""
    address, _ = cluster
    graded = hostile.grade_class(tmp_path, ("--scheduler", address))
    assert "2 worker(s)" in graded["proc"].stderr, graded["proc"].stderr[-3000:]
    hostile.run_checks(graded, [(ON_CLUSTER.get(check, check), args)
                                for check, args in hostile.hostile_checks()])


def test_an_unreachable_scheduler_is_an_error_within_seconds(ga, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ga, course)
    started = time.monotonic()
    done = grade(course, "--scheduler", f"tcp://127.0.0.1:{free_port()}",
                 "--connect-timeout", "2", timeout=60)
    assert done.returncode == 4
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in done.stderr, done.stderr
    assert time.monotonic() - started < 20
    assert not (course / "grades" / f"{fx.GA}.csv").exists()


def test_what_travels_is_bounded_and_cannot_leave_the_students_folder(tmp_path):
    course = tmp_path / "course"
    folder = course / "submitted" / "eve" / "hw1"
    folder.mkdir(parents=True)
    with (folder / "big.ipynb").open("wb") as fh:
        fh.truncate(50 << 20)
    (folder / "link.ipynb").symlink_to("/etc/passwd")
    (folder / "ok.ipynb").write_text("{}")
    (folder / "timestamp.txt").write_text(fx.TIMESTAMP)
    sub = parcel.pack_submission(course, "hw1", "eve", ["big", "link", "ok"], 20 << 20)
    assert sub["files"] == {"big.ipynb": 50 << 20, "ok.ipynb": b"{}"}
    assert sub["timestamp"] == "2026-11-26 12:00:00.000000 UTC"
    worker = tmp_path / "worker"
    parcel.unpack_submission(worker, "hw1", sub)
    big = worker / "submitted" / "eve" / "hw1" / "big.ipynb"
    assert big.stat().st_size == 50 << 20 and big.stat().st_blocks == 0
    for name in ("../x", "/etc/x", "a/../../x", ""):
        with pytest.raises(parcel.ParcelError):
            parcel.write_tree(tmp_path / "out", {name: (0o644, b"x")})
    (tmp_path / "out" / "d").symlink_to(tmp_path)
    with pytest.raises(parcel.ParcelError):
        parcel.write_tree(tmp_path / "out", {"d/x": (0o644, b"x")})
    assert not (tmp_path / "x").exists()
    got, left = parcel.collect(folder, 1 << 20)
    assert set(got) == {"ok.ipynb", "timestamp.txt"} and left  # big one left out, link never


def test_a_linked_notebook_travels_as_its_name_and_is_refused_unread(tmp_path):
    """The precheck refuses a notebook that is a link without following it; of such a
    notebook only its name travels, and the worker's copy is a link again, refused
    with the same words. Nothing it points to is read or sent."""
    course = tmp_path / "course"
    folder = course / "submitted" / "eve" / "hw1"
    folder.mkdir(parents=True)
    (tmp_path / "other.ipynb").write_bytes(nbformat.writes(nbformat.v4.new_notebook()).encode())
    (tmp_path / "text").write_text("the teacher's answers")
    links = {"nb": tmp_path / "other.ipynb", "text": tmp_path / "text",
             "gone": tmp_path / "nothing", "dir": tmp_path, "kmsg": Path("/proc/kmsg")}
    for name, target in links.items():
        (folder / f"{name}.ipynb").symlink_to(target)
    (folder / "scratch.ipynb").write_text("not read")  # not an assignment notebook
    (folder / "loose.ipynb").symlink_to("/etc/passwd")  # nor a regular file
    sub = parcel.pack_submission(course, "hw1", "eve", list(links), 200)
    assert sub["files"] == {} and sub["others"] == ["scratch.ipynb"]
    assert sorted(sub["linked"]) == sorted(f"{name}.ipynb" for name in links)
    worker = tmp_path / "worker"
    parcel.unpack_submission(worker, "hw1", sub)
    got = worker / "submitted" / "eve" / "hw1"
    started = time.monotonic()
    for side in (folder, got):
        reasons, runnable = precheck.precheck(side, list(links), {}, 1 << 20)
        assert not runnable and reasons == [
            f"notebook {name}.ipynb is a link, not the notebook itself (hand in the file); "
            "not graded" for name in links], reasons
    assert time.monotonic() - started < 5  # /proc/kmsg was never read


PEOPLE = ("alice", "bob", "carol")  # none of them a string of hex digits (an id)
PRIVATE = (b"school.example", b"Doe", b"see me", b"exam", *(p.encode() for p in PEOPLE))
NOT_BOBS = [w for w in PRIVATE if w not in (b"bob", b"see me")]  # his comment is his


def class_gradebook(db_url: str) -> None:
    """A gradebook as a term leaves it: ga's structure, an exam, students with names
    and emails, their submissions of both, grades, comments, an extension."""
    when = datetime(2026, 11, 26, 12)
    with Gradebook(db_url, "fixture") as gb:
        for a in (fx.GA, "exam"):
            gb.add_assignment(a, duedate=datetime(2026, 11, 25, 12))
            gb.add_notebook(a, a)
            gb.add_grade_cell("test_square", a, a, max_score=2, cell_type="code")
            gb.add_solution_cell("answer", a, a)
            gb.add_task_cell("essay", a, a, max_score=1, cell_type="markdown")
            for name, locked in (("answer", False), ("test_square", True), ("essay", False)):
                gb.add_source_cell(name, a, a, cell_type="code", locked=locked,
                                   source=f"# {name} of {a}", checksum=f"{name}-sum")
        for student in PEOPLE:
            gb.add_student(student, first_name=student.title(), last_name="Doe",
                           email=f"{student}@school.example")
            for a in (fx.GA, "exam"):
                gb.add_submission(a, student, timestamp=when)
                gb.find_grade("test_square", a, a, student).auto_score = 2
                gb.find_comment("answer", a, a, student).manual_comment = f"see me, {student}"
        gb.grant_extension(fx.GA, "bob", days=2)
        gb.find_grade("essay", fx.GA, fx.GA, "bob").manual_score = 0.5
        gb.find_submission_notebook(fx.GA, fx.GA, "bob").late_submission_penalty = 1
        gb.db.commit()


def structure(gb: Gradebook) -> dict:
    a = gb.find_assignment(fx.GA)
    return {"duedate": a.duedate, "course": a.course_id, "notebooks": {
        nb.name: {"kernelspec": nb.kernelspec,
                  "grade": sorted((c.name, c.max_score, c.cell_type) for c in nb.grade_cells),
                  "solution": sorted(c.name for c in nb.solution_cells),
                  "task": sorted((c.name, c.max_score) for c in nb.task_cells),
                  "source": sorted((c.name, c.cell_type, c.locked, c.source, c.checksum)
                                   for c in nb.source_cells)} for nb in a.notebooks}}


def submission(gb: Gradebook, student: str) -> dict:
    sub = gb.find_submission(fx.GA, student)
    return {"timestamp": sub.timestamp, "extension": sub.extension,
            "late": sub.total_seconds_late, "score": sub.score,
            "notebooks": {nb.name: (nb.late_submission_penalty, nb.flagged) for nb in sub.notebooks},
            "grades": sorted((g.name, g.auto_score, g.manual_score, g.extra_credit,
                              g.needs_manual_grade) for nb in sub.notebooks for g in nb.grades),
            "comments": sorted((c.name, c.auto_comment, c.manual_comment)
                               for nb in sub.notebooks for c in nb.comments)}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_worker_gets_the_assignment_and_the_student_it_grades_alone(backend, tmp_path,
                                                                     request):
    """What crosses the network of the gradebook: the assignment's structure, and with
    each task the rows of the student it grades (its id alone), which its private copy
    then holds as the teacher's gradebook does."""
    db_url = (f"sqlite:///{tmp_path / 'gradebook.db'}" if backend == "sqlite"
              else request.getfixturevalue("postgres"))
    class_gradebook(db_url)
    shared = tmp_path / "assignment.db"
    gradebook.assignment_snapshot(db_url, fx.GA, shared)
    assert not [w for w in PRIVATE if w in shared.read_bytes()]
    with Gradebook(f"sqlite:///{shared}") as mine, Gradebook(db_url) as theirs:
        assert structure(mine) == structure(theirs) and structure(mine)["duedate"]
        assert [a.name for a in mine.assignments] == [fx.GA]
        for table in api.Base.metadata.sorted_tables:  # student, submissions, grades...
            if table.name not in gradebook.STRUCTURE:
                assert not mine.db.execute(sqlalchemy.select(table)).all(), table.name
        expected = submission(theirs, "bob")
    own = gradebook.own_rows(db_url, fx.GA, ["bob", "dave"])  # dave: not in the gradebook
    assert list(own) == ["bob"] and sorted(own["bob"]) == sorted(gradebook.OWN)
    assert not [w for w in NOT_BOBS if w in repr(own).encode()]
    private = tmp_path / "bob.db"
    shutil.copyfile(shared, private)
    gradebook.add_student(private, "bob", own["bob"])
    assert not [w for w in NOT_BOBS if w in private.read_bytes()]
    with Gradebook(f"sqlite:///{private}") as mine:
        assert [(s.id, s.first_name, s.last_name, s.email) for s in mine.students] == [
            ("bob", None, None, None)]
        assert submission(mine, "bob") == expected
        assert expected["extension"] and expected["late"] == 0 and expected["score"] == 2.5
    newcomer = tmp_path / "dave.db"
    shutil.copyfile(shared, newcomer)
    gradebook.add_student(newcomer, "dave", {})
    with Gradebook(f"sqlite:///{newcomer}") as mine:
        assert [s.id for s in mine.students] == ["dave"] and not mine.find_student("dave").email
    with pytest.raises(ValueError):
        gradebook.add_student(newcomer, "carol", own["bob"])


def _probe_in_daemon(conn) -> None:
    from course_tools.grade import remote

    conn.send(remote.probe(remote.code_version(), sandboxed=False))


def test_workers_that_cannot_grade_are_refused_saying_why():
    import multiprocessing as mp

    from course_tools.grade import remote

    assert remote.probe(remote.code_version(), sandboxed=False) is None
    assert "course code differs" in remote.probe("0123456789abcdef", sandboxed=False)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_probe_in_daemon, args=(child,), daemon=True)
    proc.start()
    try:
        assert parent.poll(60), "the probe did not answer"
        assert parent.recv() == remote.DAEMON_FIX  # a nanny's worker, daemonic by default
    finally:
        proc.join(10)


def test_the_hard_deadline_holds_on_a_worker(ga, tmp_path):
    """A worker's task (no Dask needed to call it) kills a submission at the hard limit,
    with the local grader's words, and its grading slot goes on with the next one."""
    from course_tools.grade import cli, cluster, remote

    course = tmp_path / "course"
    shutil.copytree(ga, course)
    fx.ga_submit(course, "sleeper", "import time\ntime.sleep(600)\n")
    args = cli.parse_args([fx.GA, "--course", str(course), "--cell-timeout", "120",
                           "--hard-limit", "8"])
    notebooks = [fx.GA]
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url) as gb:  # someone graded before, not in this run
        gb.update_or_create_student("mallory", email="mallory@school.example")
        gb.update_or_create_submission(fx.GA, "mallory")
    shared, own = cluster.what_travels(args, course, db_url, notebooks, ["sleeper", "alice"])
    assert b"mallory" not in shared["snapshot"] and own == {}
    try:
        started = time.monotonic()
        out = remote.grade(shared, parcel.pack_submission(course, fx.GA, "sleeper", notebooks,
                                                          20 << 20))
        assert time.monotonic() - started < 60
        assert out["result"].status == "failed"
        assert out["result"].reasons == [
            "grading exceeded the hard limit of 8 s (everything killed)"]
        out = remote.grade(shared, parcel.pack_submission(course, fx.GA, "alice", notebooks,
                                                          20 << 20))
        assert out["result"].status == "graded", out["result"].reasons
        assert "ga.ipynb" in out["autograded"] and "ga.html" in out["feedback"]
        assert not remote._host.snapshot.exists()  # nothing of alice's stays there
    finally:
        if remote._host is not None:
            remote._host.close()
            remote._host = None
