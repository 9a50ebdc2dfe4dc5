"""Everything a student runs works without the POSIX-only APIs (issue 13, section 5).

Each test runs a Python process, or a Jupyter kernel, with ``tests/without_posix``
first on PYTHONPATH: its ``sitecustomize`` takes ``os.fork``, ``os.killpg``,
``signal.SIGKILL``, ``os.sched_setaffinity`` and friends away from the course's
code and leaves multiprocessing only spawn, as on Windows, and ``Queue.qsize()``
raising NotImplementedError, as on macOS (see that module). The
environment is inherited, so the homework checker, the kernels and every spawn
child run under it too. In that environment:

* the homework 1 and 2 self-checks pass the reference solutions and name a wrong
  sample's mistake in plain words; the checker still ends what a run left behind;
* homework 3's public test cells pass its reference solution;
* every lecture notebook runs top to bottom with no error output, except in cells
  tagged as raising on purpose; each exercise runs a second time, right after the
  starter, with the solution from ``notebooks/solutions/``: its self-check says
  it is right.

The start method does not vary here (there is only spawn), so every test runs once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import psutil
import pytest

from tests.support.course import ROOT, sample_text

GUARD = ROOT / "tests" / "without_posix"
NOTEBOOKS = ROOT / "notebooks"
LECTURES = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
RAISES_TAGS = {"raises-exception", "nbval-raises-exception"}
POSIX_WORDS = re.compile(r"AttributeError: module '(os|signal)'|cannot find context for '(fork|forkserver)'")

pytestmark = pytest.mark.start_method_independent


def guarded_env(**extra: str) -> dict[str, str]:
    """This process's environment with the guard first on PYTHONPATH, the course
    root after it, and no MP_START_METHOD (a Windows student's default)."""
    env = {k: v for k, v in os.environ.items() if k != "MP_START_METHOD"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(GUARD), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env.update(extra)
    return env


def run_guarded(code: str, cwd: Path, timeout: float, **env: str) -> str:
    """Run ``code`` in a fresh Python without the POSIX APIs; return its stdout."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd,
                          env=guarded_env(**env), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


# nbclient in a guarded process: the kernel it starts inherits the environment
_EXECUTE = """
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=float(sys.argv[3]), kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def _execute(nb, folder: Path, name: str, cell_timeout: float = 120, timeout: float = 600):
    """Execute notebook ``nb`` in a kernel without the POSIX APIs, with ``folder`` as its
    working directory; return the executed notebook (errors are kept as outputs)."""
    path = folder / name
    nbformat.write(nb, path)
    proc = subprocess.run([sys.executable, "-c", _EXECUTE, str(path), str(folder), str(cell_timeout)],
                          cwd=folder, env=guarded_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"nbclient exited {proc.returncode}\n{proc.stderr[-3000:]}"
    return nbformat.read(path, as_version=4)


def text_of(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
    return "".join(parts)


def errors(cell) -> list[str]:
    return [re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(o.traceback))
            for o in cell.get("outputs", []) if o.output_type == "error"]


# ---- the guard itself


def test_guard_hides_posix_apis_from_course_code_also_in_spawn_children(tmp_path):
    out = run_guarded("""
        import json, multiprocessing, os, signal, subprocess, sys
        import psutil
        sys.path.insert(0, os.getcwd())
        from probe import probe

        ctx = multiprocessing.get_context()
        q = ctx.Queue()
        child = ctx.Process(target=probe, args=(q,))
        child.start()
        seen = {"parent": probe(None), "child": q.get(timeout=60)}
        child.join(30)
        refused = []
        for method in ("fork", "forkserver"):
            try:
                multiprocessing.get_context(method)
            except ValueError:
                refused.append(method)
        # the portable kill calls still work: on Linux they send SIGKILL inside the library
        pop = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        pop.kill()
        pop2 = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        psutil.Process(pop2.pid).kill()
        worker = ctx.Process(target=probe, args=(None, 60))
        worker.start()
        worker.kill()
        worker.join(30)
        try:
            q.qsize()
            refused.append("qsize worked")
        except NotImplementedError:  # as on macOS
            refused.append("qsize")
        seen.update(refused=refused, killed=[pop.wait(30) != 0, pop2.wait(30) != 0,
                                             worker.exitcode not in (0, None)])
        print(json.dumps(seen))
    """, cwd=_probe_module(tmp_path), timeout=120)
    seen = json.loads(out.strip().splitlines()[-1])
    for who in ("parent", "child"):
        assert seen[who] == {"guard": "1", "present": [], "methods": ["spawn"], "default": "spawn"}, who
    assert seen["refused"] == ["fork", "forkserver", "qsize"]
    assert seen["killed"] == [True, True, True]


def _probe_module(folder: Path) -> Path:
    (folder / "probe.py").write_text(textwrap.dedent("""
        import multiprocessing, os, signal, time

        NAMES = [(os, "fork"), (os, "killpg"), (os, "setsid"), (os, "getpgid"),
                 (os, "sched_setaffinity"), (os, "getloadavg"), (signal, "SIGKILL")]

        def probe(q, sleep=0):
            time.sleep(sleep)
            seen = {"guard": os.environ.get("MP_COURSE_WITHOUT_POSIX"),
                    "present": [f"{m.__name__}.{n}" for m, n in NAMES if hasattr(m, n)],
                    "methods": multiprocessing.get_all_start_methods(),
                    "default": multiprocessing.get_start_method()}
            if q is not None:
                q.put(seen)
            return seen
    """))
    return folder


# ---- (a) homework 1 and 2 self-checks


HW_CHECKS = """
    import json
    from hwcheck import Checker, CheckFailed

    results = {}
    for folder, assignment, questions in PLAN:
        for q in questions:
            try:
                import os
                os.chdir(folder)
                Checker(assignment).check(q)
                results[f"{folder}:{q}"] = "passed"
            except CheckFailed as exc:
                results[f"{folder}:{q}"] = str(exc)
            except Exception as exc:  # what a Windows student would meet
                results[f"{folder}:{q}"] = f"CRASH {type(exc).__name__}: {exc}"
    print(json.dumps(results))
"""


@pytest.mark.slow(25)
def test_homework_1_and_2_checks_without_posix(tmp_path):
    plan = []
    for assignment, sample, questions in [
        ("hw1", "correct", ["q1", "q2", "q3"]),
        ("hw2", "correct", ["q1", "q2"]),
        ("hw1", "polling_consumer", ["q1"]),
        ("hw2", "unlocked", ["q2"]),
    ]:
        folder = tmp_path / f"{assignment}_{sample}"
        folder.mkdir()
        (folder / f"{assignment}_solution.py").write_text(sample_text(assignment, sample))
        plan.append((str(folder), assignment, questions))
    code = f"PLAN = {plan!r}\n" + textwrap.dedent(HW_CHECKS)
    results = json.loads(run_guarded(code, tmp_path, timeout=300).strip().splitlines()[-1])
    for key, text in results.items():
        assert "CRASH" not in text and not POSIX_WORDS.search(text), f"{key}: {text}"
    for key, text in results.items():
        if "_correct:" in key:
            assert text == "passed", f"{key}: {text}"
    polling = results[f"{tmp_path / 'hw1_polling_consumer'}:q1"]
    assert "ended before any SENTINEL was sent" in polling
    unlocked = results[f"{tmp_path / 'hw2_unlocked'}:q2"]
    assert "did not hold account['lock']" in unlocked


@pytest.mark.slow(15)
def test_checker_ends_a_deadlock_and_what_it_left_behind_without_posix(tmp_path):
    """The runner's watchdog kills a deadlocked run; and a student's module that
    starts a process and sleeps as it is imported (in the child the checker starts
    for it, under the watchdog) is ended with every process it started, found by the
    run's mark in their environment: no POSIX session to kill."""
    (tmp_path / "hw1_solution.py").write_text(sample_text("hw1", "missing_sentinel"))
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "hw1_solution.py").write_text(textwrap.dedent("""
        import multiprocessing, os, time
        from pathlib import Path

        if __name__ == "hw1_solution" and not Path("pids.txt").exists():
            child = multiprocessing.get_context().Process(target=time.sleep, args=(120,))
            child.start()
            Path("pids.txt").write_text(f"{os.getpid()} {child.pid}")
            time.sleep(120)
    """))
    out = run_guarded(f"""
        import json
        from hwcheck import isolated, limits

        deadlock = isolated.run_isolated(
            "hw1_pipeline", "hw1_solution",
            dict(producers=3, per_producer=100, consumers=2, gap=0.2), timeout=4,
            folder={str(tmp_path)!r})
        limits.BACKSTOP = 3.0  # read by run_isolated when it runs
        hung = isolated.run_isolated("hw1_pipeline", "hw1_solution", timeout=3,
                                     folder={str(hang)!r})
        print(json.dumps([deadlock, hung]))
    """, tmp_path, timeout=120)
    deadlock, hung = json.loads(out.strip().splitlines()[-1])
    text = "\n".join(deadlock["problems"])
    assert "Still not finished after 4 s" in text and "SENTINEL(s) for 2 consumers" in text
    assert deadlock["facts"]["killed"] >= 1
    assert hung["problems"], hung
    pids = [int(p) for p in (hang / "pids.txt").read_text().split()]
    alive = [p for p in pids if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"


# ---- (b) homework 3's public tests


def _public_cells(nb) -> list:
    """The source notebook as a student with the reference answer runs it: every
    code cell, hidden tests removed, the by-hand server cell left out."""
    keep = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "TRY_BY_HAND" in cell.source:
            continue
        cell.source = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "",
                             cell.source, flags=re.S)
        cell.outputs, cell.execution_count = [], None
        keep.append(cell)
    nb.cells = keep
    return nb


@pytest.mark.slow(30)
def test_homework_3_public_tests_without_posix(tmp_path):
    nb = _public_cells(nbformat.read(ROOT / "source" / "hw3" / "hw3.ipynb", as_version=4))
    done = _execute(nb, tmp_path, "hw3.ipynb", cell_timeout=120)
    failed = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id", c.source[:60]): errors(c)
              for c in done.cells if errors(c)}
    assert not failed, f"hw3 public tests failed without POSIX APIs: {failed}"


# ---- (c) and (d): every lecture top to bottom, then each exercise with its solution


def _solution(lecture: Path, name: str, magic: str) -> str | None:
    """The solution's text of the function ``name``: the block that starts with the
    same ``%%writefile`` line, else the first block defining it."""
    md = (NOTEBOOKS / "solutions" / f"{lecture.stem}-solutions.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", md, flags=re.S)
    same = [b for b in blocks if magic and b.startswith(magic)]
    for block in same or blocks:
        if re.search(rf"^def {name}\(", block, flags=re.M):
            return re.sub(r"^%%writefile \S+\n", "", block)
    return None


def _exercises(lecture: Path, cells: list) -> list[tuple[str, str, list[int]]]:
    """(name, solution cell source, [indices of the answer cell and of the code cells
    after it, up to the next text cell]) for each exercise that runs processes: an
    answer cell ``%%writefile _exercise_*``, or a bare function definition handed to
    a ``check_*`` helper. The last of those cells prints the verdict."""
    found = []
    for i, cell in enumerate(cells):
        src = cell.source
        is_module = cell.cell_type == "code" and src.startswith("%%writefile _exercise_")
        is_def = cell.cell_type == "code" and src.startswith("def ")
        if not (is_module or is_def):
            continue
        group = [i]
        while group[-1] + 1 < len(cells) and cells[group[-1] + 1].cell_type == "code":
            group.append(group[-1] + 1)
        if len(group) < 2 or (is_def and not any("check_" in cells[j].source for j in group)):
            continue
        name = re.search(r"^def (\w+)\(", src, flags=re.M).group(1)
        magic = src.split("\n", 1)[0] + "\n" if is_module else ""
        solution = _solution(lecture, name, magic)
        assert solution, f"no solution defining {name}() in {lecture.stem}-solutions.md"
        found.append((name, magic + solution, group))
    return found


# seconds each took here, two at a time on a busy 2-core machine (xdist starts the longest first)
SECONDS = {"00": 30, "01": 35, "02": 30, "03": 40, "04": 40, "05": 20, "06": 40}


@pytest.mark.parametrize("lecture", [
    pytest.param(p, id=p.stem, marks=pytest.mark.slow(SECONDS.get(p.name[:2], 40))) for p in LECTURES
])
def test_lecture_runs_without_posix(lecture, tmp_path):
    """The lecture top to bottom: no error output, except in cells tagged as raising on
    purpose (outputs are not compared: nbval does that, on Linux, under each start
    method); each exercise's self-check does not call the starter right. Right after
    it, each exercise again with its solution: its self-check says "Right"."""
    nb = nbformat.read(lecture, as_version=4)
    after = {group[-1]: (name, solution, group) for name, solution, group in
             _exercises(lecture, nb.cells)}
    cells, verdicts = [], []
    for i, cell in enumerate(nb.cells):
        cells.append(cell)
        if i in after:  # the starter's verdict; then the solution, before the lecture goes on
            name, solution, group = after[i]
            verdicts.append((name, "starter", len(cells) - 1))
            cells.append(nbformat.v4.new_code_cell(solution))
            cells += [nbformat.v4.new_code_cell(nb.cells[j].source) for j in group[1:]]
            verdicts.append((name, "solution", len(cells) - 1))
    nb.cells = cells
    done = _execute(nb, tmp_path, lecture.name, cell_timeout=300, timeout=900)
    failed = []
    for i, cell in enumerate(done.cells):
        if RAISES_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        failed += [f"cell {i} (id {cell.get('id')}):\n{tb[-1500:]}" for tb in errors(cell)]
    for name, kind, i in verdicts:
        said = text_of(done.cells[i]).strip()
        if kind == "solution" and "Right" not in said:
            failed.append(f"exercise {name}: its solution got {said[-800:]!r}")
        if kind == "starter" and (not said or said.startswith("Right")):
            failed.append(f"exercise {name}: its starter got {said[-800:]!r}")
    assert not failed, f"{lecture.name} without POSIX APIs:\n" + "\n\n".join(failed)


def test_the_lectures_have_exercises_with_solutions():
    """What the test above runs (reading the notebooks only, no kernel)."""
    found = {lecture.stem: [name for name, _, _ in _exercises(lecture, nbformat.read(
        lecture, as_version=4).cells)] for lecture in LECTURES}
    assert sum(map(len, found.values())) >= 7, found
    assert all(found[lecture.stem] for lecture in LECTURES[:4]), found
