"""Results of a grading run: the resume state, the grades CSV and the summary table."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

COLUMNS = ["student_id", "score", "max_score", "status", "reasons", "seconds"]


def state_path(course: Path, assignment: str) -> Path:
    return course / "grades" / f"{assignment}.state.json"


def load_state(course: Path, assignment: str) -> dict:
    path = state_path(course, assignment)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def save_state(course: Path, assignment: str, state: dict) -> None:
    path = state_path(course, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)  # a run killed half-way never leaves a torn file


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for row in rows:
            w.writerow({**{k: row.get(k, "") for k in COLUMNS}, "reasons": "; ".join(row["reasons"])})


def _fmt(x: float) -> str:
    return f"{x:g}"


def summary_table(rows: list[dict]) -> str:
    """Plain-text table: one line per student, then one indented line per reason."""
    w = max([len("student")] + [len(r["student_id"]) for r in rows])
    lines = [f"{'student':<{w}}  {'score':>11}  status", "-" * (w + 24)]
    for r in rows:
        score = f"{_fmt(r['score'])}/{_fmt(r['max_score'])}"
        lines.append(f"{r['student_id']:<{w}}  {score:>11}  {r['status']}")
        lines.extend(f"{'':<{w}}    - {reason}" for reason in r["reasons"])
    return "\n".join(lines)
