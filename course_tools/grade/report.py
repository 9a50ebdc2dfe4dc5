"""Results of a grading run: the resume state, the grades CSV and the summary table."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

COLUMNS = ["student_id", "score", "max_score", "status", "reasons", "seconds"]
MAX_CSV_REASONS = 1000  # characters of reasons per CSV row (the state file keeps them all)
# control characters (a leftover process named with terminal escapes...): never
# written raw into a terminal or a spreadsheet
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character shown as ``?``."""
    return _CONTROL.sub("?", str(text))


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
            reasons = printable("; ".join(row["reasons"]))
            if len(reasons) > MAX_CSV_REASONS:
                reasons = reasons[:MAX_CSV_REASONS - 1] + "…"
            w.writerow({**{k: printable(row.get(k, "")) for k in COLUMNS}, "reasons": reasons})


def _fmt(x: float) -> str:
    return f"{x:g}"


def summary_table(rows: list[dict]) -> str:
    """Plain-text table: one line per student, then one indented line per reason."""
    w = max([len("student")] + [len(r["student_id"]) for r in rows])
    lines = [f"{'student':<{w}}  {'score':>11}  status", "-" * (w + 24)]
    for r in rows:
        score = f"{_fmt(r['score'])}/{_fmt(r['max_score'])}"
        lines.append(f"{printable(r['student_id']):<{w}}  {score:>11}  {r['status']}")
        lines.extend(f"{'':<{w}}    - {printable(reason)}" for reason in r["reasons"])
    return "\n".join(lines)
