"""Benchmark: course-grade on this machine vs course-grade on a Dask cluster (issue 19).

Makes one copy of homework 1 with N honest (correct) submissions (default 16), copies it
twice, and grades one copy locally (``--workers 2``) and the other through a Dask
scheduler and two ``dask worker`` processes started here on 127.0.0.1 (one thread each,
as a teacher would run them; started, and idle, before the clock starts). Prints both
wall times and the ratio, and whether both gave the same grades.

    .venv/bin/python bench/bench_grade_dask.py [--students 16] [--cluster-first]

Target: the cluster path costs at most 15% more wall time than the local one. Run it on
an otherwise idle machine: the figures are wall times (the load average is printed).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import course as fx  # noqa: E402
from tests.support.nbgrader_cli import nbgrader  # noqa: E402

BIN = Path(sys.executable).parent
HW = "hw1"
UP_WITHIN = 120  # seconds for the scheduler or a worker to come up


def env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path, ready: str) -> subprocess.Popen:
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(BIN / "dask"), *args], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=ROOT, env=env(), start_new_session=True)
    deadline = time.monotonic() + UP_WITHIN
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"dask {args[0]} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def grade(course: Path, *extra: str) -> float:
    started = time.monotonic()
    done = subprocess.run([str(BIN / "course-grade"), HW, "--course", str(course), *extra],
                          cwd=course, env=env(), capture_output=True, text=True, timeout=7200)
    secs = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"course-grade {' '.join(extra)} exited {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    return secs


def grades(course: Path) -> dict[str, tuple[str, str]]:
    with (course / "grades" / f"{HW}.csv").open() as fh:
        return {r["student_id"]: (r["score"], r["status"]) for r in csv.DictReader(fh)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=16)
    p.add_argument("--cluster-first", action="store_true",
                   help="grade on the cluster first (to see any order or load bias)")
    p.add_argument("--no-feedback", action="store_true", help="both sides without feedback")
    args = p.parse_args()
    extra = ["--no-feedback"] if args.no_feedback else []
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-dask-"))
    procs: list[subprocess.Popen] = []
    try:
        (tmp / "base").mkdir()
        base = fx.make_course(tmp / "base", HW)
        nbgrader(["generate_assignment", HW, "--force"], base, timeout=300)
        release_nb = base / "release" / HW / f"{HW}.ipynb"
        for i in range(args.students):
            fx.submit(base, HW, f"s{i:02d}", fx.submission(release_nb, HW, "correct"))
        local, remote = tmp / "local", tmp / "cluster"
        shutil.copytree(base, local)
        shutil.copytree(base, remote)
        port = free_port()
        address = f"tcp://127.0.0.1:{port}"
        procs.append(start(["scheduler", "--host", "127.0.0.1", "--port", str(port),
                            "--no-dashboard"], tmp / "scheduler.log", "Scheduler at"))
        for i in (1, 2):
            procs.append(start(["worker", address, "--nthreads", "1", "--no-dashboard"],
                               tmp / f"worker{i}.log", "Registered to"))
        load_before = os.getloadavg()[0]
        runs = {"local": lambda: grade(local, "--workers", "2", *extra),
                "cluster": lambda: grade(remote, "--scheduler", address, *extra)}
        order = ["cluster", "local"] if args.cluster_first else ["local", "cluster"]
        secs = {name: runs[name]() for name in order}
        same = grades(local) == grades(remote)
        print(f"{HW}: {args.students} correct submissions, feedback "
              f"{'off' if args.no_feedback else 'on'}; {os.cpu_count()} cores; 1-min load "
              f"average at start/end {load_before:.1f}/{os.getloadavg()[0]:.1f}")
        print(f"  local   (course-grade --workers 2)            : {secs['local']:7.1f} s")
        print(f"  cluster (2 dask workers on this machine)      : {secs['cluster']:7.1f} s")
        ratio = secs["cluster"] / secs["local"]
        print(f"  ratio cluster/local: {ratio:.2f} (target <= 1.15); same grades: "
              f"{'yes' if same else 'NO'}")
        return 0 if same else 1
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
