"""What crosses the network when grading on a cluster (:mod:`.cluster`), and nothing else.

To a worker machine: once per grading run the course's ``nbgrader_config.py``, the
assignment's ``source/`` files and a gradebook of the assignment's structure, in which
no person appears (:func:`course_parcel`, :func:`.gradebook.assignment_snapshot`); per
student the submitted notebooks, the submission's time and that student's own rows of
the gradebook, its id alone and no name or email (:func:`pack_submission`,
:func:`.gradebook.own_rows`).
Back: the autograded and feedback folders of that student (:func:`collect`), written
into the teacher's course by the coordinator alone (:func:`write_tree`).

Only regular files travel, never links (of a notebook that is a link, its name alone:
the grader refuses it unread, here and on the worker); sizes and counts
are bounded, names are checked before anything is written, so neither a student's files
nor a worker can write outside the student's own folders.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from .gradebook import submission_time

MAX_SOURCE_BYTES = 64 << 20  # an assignment's source/ folder, all files
MAX_FILES = 5000  # files sent back per folder (autograded/ or feedback/)
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # nbgrader's timestamp.txt


class ParcelError(RuntimeError):
    pass


def _walk(top: Path):
    """(relative posix name, path, lstat) of every regular file under ``top``; no
    recursion, links never followed (a deep or looping tree costs no stack)."""
    stack = [(str(top), "")]
    while stack:
        path, rel = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.name not in SKIP_DIRS:
                    stack.append((entry.path, name))
            elif stat.S_ISREG(st.st_mode):
                yield name, Path(entry.path), st


def course_parcel(course: Path, assignment: str, snapshot: Path, settings: dict) -> dict:
    """Everything a worker machine needs for every student of this run; ``key`` names
    it (a worker keeps one prepared course per key). ``snapshot``: the SQLite file of
    :func:`.gradebook.assignment_snapshot`."""
    config = course / "nbgrader_config.py"
    source, total = {}, 0
    for name, path, st in _walk(course / "source" / assignment):
        total += st.st_size
        if total > MAX_SOURCE_BYTES:
            raise ParcelError(f"source/{assignment} is larger than "
                              f"{MAX_SOURCE_BYTES >> 20} MiB: too much to send to workers")
        source[name] = path.read_bytes()
    parcel = {"assignment": assignment,
              "config": config.read_bytes() if config.is_file() else b"",
              "source": source, "snapshot": snapshot.read_bytes(), "settings": settings}
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    for part in (parcel["config"], parcel["snapshot"], *sorted(source.items())):
        digest.update(repr(part).encode() if isinstance(part, tuple) else part)
    parcel["key"] = digest.hexdigest()[:16]
    return parcel


def pack_submission(course: Path, assignment: str, student: str, notebooks: list[str],
                    max_notebook_bytes: int, own: dict | None = None) -> dict:
    """One student's notebooks as the local grader's precheck and private copy see them:
    each regular one as its bytes or, when over the size limit, as its size alone (the
    worker's precheck then rejects it as locally, and nothing large travels); of each
    one that is a link, its name only (the precheck refuses a link, never following
    it, and so does the worker's: nothing is read through it); the names of the student's other
    notebooks (nbgrader matches them by name only, and never reads them); the
    submission's time as the local grader would read it; ``own``, the student's rows
    of the gradebook (:func:`.gradebook.own_rows`)."""
    folder = course / "submitted" / student / assignment
    wanted = {f"{name}.ipynb" for name in notebooks}
    files: dict[str, bytes | int] = {}
    mtimes: dict[str, int] = {}
    linked: list[str] = []
    others: list[str] = []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.endswith(".ipynb"):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if entry.name not in wanted:
            if stat.S_ISREG(st.st_mode) and len(others) < MAX_FILES:
                others.append(entry.name)
        elif stat.S_ISREG(st.st_mode):
            path = Path(entry.path)
            files[entry.name] = (st.st_size if st.st_size > max_notebook_bytes
                                 else path.read_bytes())
            mtimes[entry.name] = st.st_mtime_ns
        elif stat.S_ISLNK(st.st_mode):
            linked.append(entry.name)
        # a FIFO or a folder: missing for the grader, read by no one
    when = submission_time(folder)
    return {"student": student, "files": files, "mtimes": mtimes, "linked": linked,
            "others": others, "timestamp": when.strftime(TIME_FORMAT) if when else None,
            "gradebook": own or {}}


def unpack_submission(course: Path, assignment: str, sub: dict) -> None:
    """``sub`` as ``submitted/<student>/<assignment>`` of the worker's private course;
    a linked notebook as a link again (to nothing: the precheck refuses it unread)."""
    folder = course / "submitted" / sub["student"] / assignment
    folder.mkdir(parents=True)
    for name, data in sub["files"].items():
        path = folder / _safe(name, single=True)
        if isinstance(data, int):
            with path.open("wb") as fh:
                fh.truncate(data)  # sparse: its size, no disk
        else:
            path.write_bytes(data)
        mtime = sub["mtimes"].get(name)
        if mtime is not None:
            os.utime(path, ns=(mtime, mtime))
    for name in sub["linked"]:
        (folder / _safe(name, single=True)).symlink_to(folder / ".linked-notebook")
    for name in sub["others"]:
        (folder / _safe(name, single=True)).touch()
    if sub["timestamp"]:
        (folder / "timestamp.txt").write_text(sub["timestamp"])


def write_course(course: Path, parcel: dict) -> None:
    """The worker's private course: the config, ``source/<assignment>``."""
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_bytes(parcel["config"])
    write_tree(course / "source" / parcel["assignment"],
               {name: (0o644, data) for name, data in parcel["source"].items()})


def collect(top: Path, max_bytes: int) -> tuple[dict[str, tuple[int, bytes]], list[str]]:
    """The regular files under ``top`` as {name: (mode, bytes)}, at most ``max_bytes`` in
    all and MAX_FILES files; and the words of what was left out."""
    files, total, left = {}, 0, 0
    for name, path, st in _walk(top):
        if len(files) >= MAX_FILES or total + st.st_size > max_bytes:
            left += 1
            continue
        try:
            files[name] = (stat.S_IMODE(st.st_mode), path.read_bytes())
        except OSError:
            left += 1
            continue
        total += st.st_size
    why = [f"{left} file(s) of {top.parent.parent.name}/ not sent back from the grading "
           f"machine (more than {MAX_FILES} files or {max_bytes >> 20} MiB)"] if left else []
    return files, why


def _safe(name: str, single: bool = False) -> str:
    parts = PurePosixPath(name).parts
    if (not parts or name.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or "\0" in name or (single and len(parts) != 1)):
        raise ParcelError(f"refusing a file name from a worker: {name!r}")
    return name


def write_tree(top: Path, files: dict[str, tuple[int, bytes]]) -> None:
    """Write ``files`` (as :func:`collect` returned them) under ``top``, which must not
    exist yet or be a plain folder; no name may leave it and no link is followed."""
    top.mkdir(parents=True, exist_ok=True)
    for name, (mode, data) in files.items():
        path = top / _safe(name)
        parent = top
        for part in PurePosixPath(name).parts[:-1]:
            parent = parent / part
            if parent.is_symlink():
                raise ParcelError(f"refusing to write through a link: {parent}")
            parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode & 0o777)
