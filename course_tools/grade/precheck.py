"""Before anything of a submission runs: what the gradebook expects, what the
student handed in (missing, oversized, unreadable, duplicated, edited or deleted
cells), and the private copy nbgrader grades from."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config

from .gradebook import submission_time


@dataclass
class SourceCell:
    released: set[str]  # the cell's text as in the source and as released, normalised
    locked: bool
    grade: bool


def _normal(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def released_forms(source: str, config: Config) -> set[str]:
    """A locked cell as the source has it, and as released: hidden tests removed by
    nbgrader's own ``ClearHiddenTests`` with the course's markers."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    try:
        nb, _ = ClearHiddenTests(config=config, enforce_metadata=False).preprocess(nb, {})
    except RuntimeError:  # unbalanced markers: the source form is all there is
        return {_normal(source)}
    return {_normal(source), _normal(nb.cells[0].source)}


def source_cells(db_url: str, assignment: str, config: Config
                 ) -> tuple[list[str], dict[tuple[str, str], SourceCell]]:
    """The assignment's notebooks and, by (notebook, grade id), its cells."""
    cells = {}
    with Gradebook(db_url) as gb:
        a = gb.find_assignment(assignment)
        notebooks = [nb.name for nb in a.notebooks]
        for nb in a.notebooks:
            grade_ids = {g.name for g in nb.grade_cells}
            for sc in nb.source_cells:
                cells[(nb.name, sc.name)] = SourceCell(
                    released_forms(sc.source, config), sc.locked, sc.name in grade_ids)
    return notebooks, cells


def precheck(folder: Path, notebooks: list[str], cells: dict[tuple[str, str], SourceCell],
             max_bytes: int) -> tuple[list[str], bool]:
    """Problems found in the submission ``folder``, and whether grading can go on."""
    reasons, runnable = [], True
    for name in notebooks:
        path = folder / f"{name}.ipynb"
        try:
            st = path.lstat()
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            # never followed: as root it could read any file, or block on one of /proc
            reasons.append(f"notebook {name}.ipynb is a link, not the notebook itself "
                           "(hand in the file); not graded")
            runnable = False
            continue
        if st is None or not stat.S_ISREG(st.st_mode):
            reasons.append(f"missing notebook {name}.ipynb (scored 0)")
            continue
        size = st.st_size
        if size > max_bytes:
            reasons.append(f"notebook {name}.ipynb too large ({size >> 20} MiB > "
                           f"{max_bytes >> 20} MiB limit); not graded")
            runnable = False
            continue
        try:
            with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), encoding="utf8") as fh:
                nb = nbformat.read(fh, as_version=4)
            nbformat.validate(nb)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the student's file
            reasons.append(f"invalid notebook file {name}.ipynb ({type(exc).__name__}); not graded")
            runnable = False
            continue
        reasons += _cell_problems(name, nb, cells)
    return reasons, runnable


def _cell_problems(name: str, nb, cells: dict[tuple[str, str], SourceCell]) -> list[str]:
    reasons, seen, dups = [], set(), set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if not grade_id or not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
            continue
        if grade_id in seen and grade_id not in dups:
            dups.add(grade_id)
            reasons.append(f"duplicated grade cell '{grade_id}' in {name}.ipynb "
                           "(only the last copy is graded)")
        seen.add(grade_id)
        src = cells.get((name, grade_id))
        if src and src.locked and _normal(cell.source) not in src.released:
            reasons.append(f"edited test cell '{grade_id}' in {name}.ipynb "
                           "(restored from source before grading)")
    for (nb_name, grade_id), src in cells.items():
        if nb_name == name and src.grade and grade_id not in seen:
            reasons.append(f"deleted grade cell '{grade_id}' in {name}.ipynb (scored 0)")
    return reasons


def private_copy(src: Path, top: Path, student: str, assignment: str) -> Path:
    """Copy the submission ``src`` into ``top/<student>/<assignment>`` (nbgrader's
    ``submitted/`` layout) for nbgrader to read; returns ``top``. Only what grading
    needs: the notebooks and the submission's time (nbgrader adds the assignment's other
    files from ``source/``; a student's own ``helpers/`` or ``hwcheck.py`` would only
    shadow the course's modules). Regular files only (a symlink would make nbgrader,
    as root, copy whatever it points to next to the kernel), and in notebooks every
    duplicated grade cell but the last made a plain cell (nbgrader would abort that
    student)."""
    shutil.rmtree(top, ignore_errors=True)
    dest = top / student / assignment
    dest.mkdir(parents=True)
    for entry in os.scandir(src):
        if entry.name.endswith(".ipynb") and entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, dest / entry.name, follow_symlinks=False)
    # the time nbgrader would record, read safely, else the file time; rewritten in
    # nbgrader's own format (nbgrader reads the file whole, and fails on a bad one)
    when = submission_time(src)
    if when is not None:
        (dest / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    for path in dest.glob("*.ipynb"):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - prechecked; nbgrader reports it
            continue
        last = {}
        for index, cell in enumerate(nb.cells):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid:
                last[gid] = index
        changed = False
        for index, cell in enumerate(nb.cells):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid and last[gid] != index:
                del cell.metadata["nbgrader"]
                changed = True
        if changed:
            nbformat.write(nb, path)
    return top
