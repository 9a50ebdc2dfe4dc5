"""The fairness sets' shared part (tests/test_fairness_hw1.py, ..._hw2.py, ..._hw3.py): grade one
sample the verdict's way, every question side by side, and read what it lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hwcheck.questions import questions
from hwcheck.verdict import judge
from tests.support.course import SAMPLES

FAIR = SAMPLES / "fair"
MODULE = {"hw1": "hw1_solution", "hw2": "hw2_solution", "hw3": "hw3_server"}


# hw3's stage samples (tests/submissions/hw3/) that are classic mistakes too: the fair
# set grades them under the name bug_<stage sample>, without a copy of its own
REUSED = {"hw3": ["crash_utf8", "main_process_io", "one_at_a_time", "recv_is_a_line"]}


def samples(assignment: str, kind: str) -> list[str]:
    """The names of ``assignment``'s fair samples of ``kind`` ("ok" or "bug")."""
    names = [p.stem for p in (FAIR / assignment).glob(f"{kind}_*.py")]
    if kind == "bug":
        names += [f"bug_{name}" for name in REUSED.get(assignment, [])]
    return sorted(names)


def sample_path(assignment: str, sample: str) -> Path:
    """Where sample ``sample`` of ``assignment`` lives (a fair sample, or a reused one)."""
    own = FAIR / assignment / f"{sample}.py"
    if own.exists() or sample.removeprefix("bug_") not in REUSED.get(assignment, []):
        return own
    return SAMPLES / assignment / f"{sample.removeprefix('bug_')}.py"


def grade(tmp_path: Path, assignment: str, sample: str) -> dict[str, dict]:
    """Every question of ``sample``, judged as the verdict does (:func:`hwcheck.verdict.judge`),
    side by side: independent checker runs that mostly wait. {question: its result}."""
    folder = tmp_path / sample
    folder.mkdir(parents=True)
    (folder / f"{MODULE[assignment]}.py").write_text(sample_path(assignment, sample).read_text())
    table = questions(assignment)
    with ThreadPoolExecutor(len(table)) as pool:
        running = {n: pool.submit(judge, n, q, folder, None, None) for n, q in table.items()}
        return {n: job.result() for n, job in running.items()}


def lost(result: dict) -> set[str]:
    """The graded cells that get no points (a lost question loses its public and hidden
    cells when its public check, a smaller run of the same property, fails too)."""
    return {cell for r in result.values() for cell, c in r["cells"].items() if not c["passed"]}


def cells(result: dict, names) -> set[str]:
    """The graded cells of questions ``names``."""
    return {cell for n in names for cell in result[n]["cells"]}


def deserved(result: dict, bugs: dict, sample: str) -> set[str]:
    """The cells ``sample`` should lose: those of the questions its mistake breaks
    (``bugs``: sample -> {question: words}), none for a correct sample."""
    return cells(result, bugs.get(sample, {}))


# "the same file gets the same grade": each sample is graded this many more times,
# every run checked against what it deserves (with the fair set's own run, three in all)
REPEATS = 2


def problems(result: dict) -> dict[str, list[str]]:
    return {q: r["problems"] for q, r in result.items()}
