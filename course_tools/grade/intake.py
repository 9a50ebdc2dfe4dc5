"""Which submissions to grade, and importing an LMS export into ``submitted/``.

An LMS export is a folder or zip of notebooks named by student: either
``<student>/<notebook>.ipynb`` or ``<student>_<anything>.ipynb`` (Canvas,
Moodle and most others put the student first), or ``<student>.ipynb`` when the
assignment has a single notebook. An imported notebook keeps the export's file
time (the submission's time when nothing else tells it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path, PurePosixPath

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
MAX_IMPORT_BYTES = 20 << 20


def submissions(course: Path, assignment: str) -> tuple[list[str], list[str]]:
    """(gradable student ids, rejected folder names) under submitted/."""
    root = course / "submitted"
    ok, bad = [], []
    if not root.is_dir():
        return ok, bad
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and (entry / assignment).is_dir():
            (ok if STUDENT_ID.fullmatch(entry.name) and "_" not in entry.name[:1] else bad).append(
                entry.name)
    return ok, bad


def fingerprint(course: Path, assignment: str, student: str) -> str:
    """Changes whenever the submitted files change (used to resume). Walks without
    recursion and hashes names as bytes: a deep tree or a name that is not UTF-8
    changes the fingerprint like any other file, and crashes nothing. Each file's
    digest is added into a sum (the order of a walk does not matter), so a folder of
    millions of files costs no memory of its own."""
    folder = course / "submitted" / student / assignment
    stack = [(os.fsencode(folder), b"")]
    total, count = 0, 0
    while stack:
        path, rel = stack.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    name = rel + b"/" + entry.name if rel else entry.name
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, name))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        item = b"%s\0%d\0%d\0" % (name, st.st_size, st.st_mtime_ns)
                        total += int.from_bytes(hashlib.sha256(item).digest(), "big")
                        count += 1
        except OSError:
            continue
    return hashlib.sha256(b"%d\0%d" % (count, total % (1 << 256))).hexdigest()


def remove_tree(path: Path) -> None:
    """``rm -rf path``, also for a tree deeper than Python's recursion limit (what an
    earlier run's student may have left in ``autograded/``)."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    except RecursionError:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], timeout=300,
                       check=False)


def _student_and_notebook(entry: str, notebooks: list[str]) -> tuple[str, str] | None:
    parts = PurePosixPath(entry).parts
    if any(p in ("..", "") for p in parts) or entry.startswith("/") or not entry.endswith(".ipynb"):
        return None
    stem = PurePosixPath(entry).stem
    if len(parts) >= 2:
        student = parts[-2]
    elif "_" in stem:
        student = stem.split("_", 1)[0]
    elif len(notebooks) == 1:
        student = stem
    else:
        return None
    if len(notebooks) == 1:
        return student, notebooks[0]
    for name in sorted(notebooks, key=len, reverse=True):
        if stem == name or stem.endswith(name):
            return student, name
    return None


def import_lms(export: Path, course: Path, assignment: str, notebooks: list[str]) -> list[str]:
    """Copy an LMS export into submitted/<student>/<assignment>/; returns problems found."""
    problems: list[str] = []
    if export.is_dir():
        entries = {str(p.relative_to(export).as_posix()): p for p in export.rglob("*.ipynb")
                   if p.is_file() and not p.is_symlink()}
        sizes = {k: p.stat().st_size for k, p in entries.items()}

        def read(k):
            return entries[k].read_bytes()

        def mtime(k):
            return entries[k].stat().st_mtime
    else:
        zf = zipfile.ZipFile(export)
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        entries, sizes = infos, {k: i.file_size for k, i in infos.items()}

        def read(k):
            with zf.open(infos[k]) as fh:
                return fh.read(MAX_IMPORT_BYTES + 1)

        def mtime(k):
            return time.mktime(infos[k].date_time + (0, 0, -1))
    for entry in sorted(entries):
        if PurePosixPath(entry).name.startswith(".") or "__MACOSX" in entry:
            continue
        target = _student_and_notebook(entry, notebooks)
        if target is None:
            problems.append(f"{entry}: cannot tell the student or notebook from the name; skipped")
            continue
        student, name = target
        if not STUDENT_ID.fullmatch(student):
            problems.append(f"{entry}: '{student}' is not a usable student id; skipped")
            continue
        if sizes[entry] > MAX_IMPORT_BYTES:
            problems.append(f"{entry}: larger than {MAX_IMPORT_BYTES >> 20} MiB; skipped")
            continue
        data = read(entry)
        dest = course / "submitted" / student / assignment / f"{name}.ipynb"
        if dest.is_file() and dest.read_bytes() == data:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        try:  # the export's file time: the submission's time when there is no other
            os.utime(dest, (mtime(entry), mtime(entry)))
        except (OSError, OverflowError, ValueError):
            pass
    return problems
