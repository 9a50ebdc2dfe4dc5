"""Benchmark: plain sequential `nbgrader autograde` vs `course-grade` (make grade).

Generates one small course (tests/support/course.py) with N submissions
(default 40: mostly correct, some slow, a few deadlocking), copies it twice and
grades one copy each way, side by side in one run, with the same per-cell limit.
Prints both wall times, the ratio, and how long the deadlocking students took.

    .venv/bin/python bench/bench_grade.py [--students 40] [--workers N] [--cell-timeout 10]
    .venv/bin/python bench/bench_grade.py --homework hw1 [--students 16]

``--homework hw1``: the real homework 1 with N honest (correct) submissions
(``--homework ga``: the generated course's), graded by course-grade only (what ``make grade ASSIGNMENT=hw1`` does, feedback off):
the figure to compare before and after a change to the grader. With ``--versus-plain``
the same submissions are also graded by plain sequential ``nbgrader autograde`` (which
the course's config sandboxes and scores by the grading run, like course-grade), one
after the other in the same run, and the ratio is printed (issue 17: at least 1.8x).

Target (issue 8): at least 1.7x faster on 2 cores; a deadlock costs no more than
the configured cell timeout. Feedback is off on both sides (plain autograde does
not write it). Run it on an otherwise idle machine: the figure is a wall time.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import course as fx  # noqa: E402
from tests.support.nbgrader_cli import nbgrader  # noqa: E402

SLOW = fx.GA_CORRECT + "import time\ntime.sleep(3)\n"
DEADLOCK = "import threading\nlock = threading.Lock()\nlock.acquire()\nlock.acquire()\n" + fx.GA_CORRECT


def kinds(n: int) -> dict[str, str]:
    n_dead, n_slow = max(1, n // 13), max(1, n // 8)
    out = {}
    for i in range(n):
        if i < n_dead:
            out[f"s{i:02d}_deadlock"] = DEADLOCK
        elif i < n_dead + n_slow:
            out[f"s{i:02d}_slow"] = SLOW
        else:
            out[f"s{i:02d}_ok"] = fx.GA_CORRECT
    return out


def timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=7200)
    return time.monotonic() - start, proc


def gradebook_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(fx.GA).submissions}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--cell-timeout", type=int, default=10)
    p.add_argument("--homework", choices=["hw1", "ga"],
                   help="grade N correct submissions of this homework with course-grade only")
    p.add_argument("--versus-plain", action="store_true",
                   help="with --homework: also grade with plain sequential nbgrader autograde")
    p.add_argument("--keep", action="store_true", help="keep the generated courses")
    p.add_argument("--ours-first", action="store_true",
                   help="run course-grade before nbgrader (to see any order/load bias)")
    args = p.parse_args()
    if args.homework:
        return bench_homework(args)

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    try:
        base = fx.ga_course(tmp / "plain")
        subs = kinds(args.students)
        for student, answer in subs.items():
            fx.ga_submit(base, student, answer)
        shutil.copytree(base, tmp / "ours")
        bindir = Path(sys.executable).parent

        def run_plain():
            return timed([str(bindir / "nbgrader"), "autograde", fx.GA,
                          f"--Execute.timeout={args.cell_timeout}"], base)

        def run_ours():
            return timed([str(bindir / "course-grade"), fx.GA, "--course",
                          str(tmp / "ours"), "--workers", str(args.workers),
                          "--cell-timeout", str(args.cell_timeout), "--no-feedback"],
                         tmp / "ours")

        if args.ours_first:
            (ours_s, ours), (plain_s, plain) = run_ours(), run_plain()
        else:
            (plain_s, plain), (ours_s, ours) = run_plain(), run_ours()
        for name, proc in (("nbgrader autograde", plain), ("course-grade", ours)):
            if proc.returncode != 0:
                print(f"{name} exited {proc.returncode}:\n{proc.stderr[-3000:]}", file=sys.stderr)

        n_dead = sum(k.endswith("deadlock") for k in subs)
        n_slow = sum(k.endswith("slow") for k in subs)
        print(f"{args.students} submissions ({args.students - n_dead - n_slow} correct, "
              f"{n_slow} slow +3 s, {n_dead} deadlocking); cell timeout {args.cell_timeout} s; "
              f"{os.cpu_count()} cores; 1-min load average at start/end "
              f"{load_before:.1f}/{os.getloadavg()[0]:.1f}")
        print(f"  sequential nbgrader autograde : {plain_s:7.1f} s")
        print(f"  course-grade ({args.workers} workers, sandboxed): {ours_s:7.1f} s")
        print(f"  ratio: {plain_s / ours_s:.2f}x faster  (target >= 1.7x on 2 cores)")
        same = gradebook_scores(base) == gradebook_scores(tmp / "ours")
        print(f"  identical scores in both gradebooks: {'yes' if same else 'NO'}")
        with (tmp / "ours" / "grades" / f"{fx.GA}.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        for kind in ("deadlock", "slow", "ok"):
            secs = [float(r["seconds"]) for r in rows if r["student_id"].endswith(kind)]
            scores = sorted({r["score"] for r in rows if r["student_id"].endswith(kind)})
            if secs:
                print(f"  course-grade per {kind:8s} submission: max {max(secs):5.1f} s, "
                      f"mean {sum(secs) / len(secs):5.1f} s; scores {', '.join(scores)}")
        return 0 if plain.returncode == 0 and ours.returncode == 0 and same else 1
    finally:
        if args.keep:
            print(f"courses kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _children_cpu() -> float:
    """User + system CPU seconds of all finished descendants (each waited for by its
    parent: the grader's workers, their kernels and the kernels' children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_homework(args) -> int:
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    try:
        if args.homework == "ga":
            course = fx.ga_course(tmp / "course")
            for i in range(args.students):
                fx.ga_submit(course, f"s{i:02d}")
        else:
            course = fx.make_course(tmp, args.homework)
            nbgrader(["generate_assignment", args.homework, "--force"], course, timeout=300)
            release_nb = course / "release" / args.homework / f"{args.homework}.ipynb"
            for i in range(args.students):
                fx.submit(course, args.homework, f"s{i:02d}",
                          fx.submission(release_nb, args.homework, "correct"))
        bindir = Path(sys.executable).parent
        plain_s = None
        if args.versus_plain:
            plain = tmp / "plain"
            shutil.copytree(course, plain)
            plain_s, plain_proc = timed([str(bindir / "nbgrader"), "autograde", args.homework],
                                        plain)
            if plain_proc.returncode != 0:
                print(f"nbgrader autograde exited {plain_proc.returncode}:\n"
                      f"{plain_proc.stderr[-3000:]}", file=sys.stderr)
                return 1
        cpu_before = _children_cpu()
        secs, proc = timed([str(bindir / "course-grade"), args.homework, "--course", str(course),
                            "--workers", str(args.workers), "--no-feedback"], course)
        cpu = _children_cpu() - cpu_before
        if proc.returncode != 0:
            print(f"course-grade exited {proc.returncode}:\n{proc.stderr[-3000:]}",
                  file=sys.stderr)
            return 1
        with (course / "grades" / f"{args.homework}.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        per = [float(r["seconds"]) for r in rows]
        scores = sorted({r["score"] for r in rows})
        print(f"{args.homework}: {args.students} correct submissions; {os.cpu_count()} cores; "
              f"1-min load average at start/end {load_before:.1f}/{os.getloadavg()[0]:.1f}")
        print(f"  course-grade ({args.workers} workers, sandboxed): {secs:7.1f} s; per "
              f"submission max {max(per):5.1f} s, mean {sum(per) / len(per):5.1f} s; "
              f"scores {', '.join(scores)}")
        print(f"  CPU time of everything it ran (less sensitive to load): {cpu:7.1f} s")
        if plain_s is not None:
            print(f"  plain sequential nbgrader autograde (sandboxed, same checks): "
                  f"{plain_s:7.1f} s; ratio {plain_s / secs:.2f}x (target >= 1.8x on 2 cores); "
                  f"load average at the end {os.getloadavg()[0]:.1f}")
        return 0 if len(scores) == 1 else 1
    finally:
        if args.keep:
            print(f"course kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
