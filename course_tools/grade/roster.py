"""A class roster (``course-grade --roster students.csv``): student ids with names and
email, for nbgrader's student table (formgrader lists students by name).

Accepts a plain CSV (``id,first_name,last_name,email``) and the gradebook or
participant exports of the usual LMSs: Canvas (``Student`` as "Last, First", ``ID``,
``SIS User ID``, ``SIS Login ID``), Moodle (``First name``, ``Surname``, ``ID number``,
``Username``, ``Email address``) and the like. Header case, spacing, column order, a
byte order mark, ``;`` or tab separators and Latin-1 files are all fine. When several
columns could hold the id, the one whose values match the most submitted folders wins.
Bad rows are reported by line and skipped; nothing here raises on a bad file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from .intake import STUDENT_ID
from .report import printable

MAX_BYTES = 10 << 20  # a class list; anything larger is not one
MAX_FIELD = 100  # characters kept of a name or an email
# candidate id columns, most specific first (normalised: lower case, single spaces)
ID_COLUMNS = ["id", "student id", "student_id", "username", "user name", "login",
              "login id", "sis login id", "sis user id", "id number", "user id",
              "student number", "matriculation number", "netid"]
FIRST = ["first name", "first_name", "firstname", "first", "given name", "given names",
         "forename"]
LAST = ["last name", "last_name", "lastname", "last", "surname", "family name"]
FULL = ["student", "name", "full name", "student name"]  # "Last, First" or "First Last"
EMAIL = ["email", "email address", "e-mail", "e-mail address", "mail"]
# rows of an LMS export that are not students (Canvas: the points row, its test student)
NOT_STUDENTS = re.compile(r"^\s*(points possible|test student)\s*$", re.IGNORECASE)


@dataclass
class Person:
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None


def _key(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").strip().lower().split())


def clean(text: str | None) -> str | None:
    """A name or email as stored: no control characters, no markup brackets, single
    spaces, at most MAX_FIELD characters; None when empty."""
    if text is None:
        return None
    text = " ".join(printable(text).replace("<", "").replace(">", "").split())
    return text[:MAX_FIELD] or None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # spreadsheet exports from older systems


def _dialect(text: str):
    first = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _column(headers: dict[str, int], names: list[str]) -> int | None:
    return next((headers[n] for n in names if n in headers), None)


def _split_full(full: str) -> tuple[str | None, str | None]:
    if "," in full:  # Canvas: "Last, First"
        last, first = (p.strip() for p in full.split(",", 1))
        return first or None, last or None
    parts = full.split()
    if len(parts) < 2:
        return None, full or None
    return " ".join(parts[:-1]), parts[-1]


def read(path: Path, known_ids: set[str] = frozenset()) -> tuple[list[Person], list[str]]:
    """The students listed in ``path`` and the problems found (by line)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return [], [f"{path}: cannot read ({exc.strerror or exc})"]
    if len(data) > MAX_BYTES:
        return [], [f"{path}: larger than {MAX_BYTES >> 20} MiB; not a class list"]
    text = _decode(data)
    rows = list(csv.reader(io.StringIO(text), _dialect(text)))
    if not rows:
        return [], [f"{path}: empty"]
    headers: dict[str, int] = {}
    for i, h in enumerate(rows[0]):
        headers.setdefault(_key(h), i)
    candidates = [headers[n] for n in ID_COLUMNS if n in headers]
    if not candidates:
        return [], [f"{path}: no id column (one of: {', '.join(ID_COLUMNS[:6])}, ...)"]

    def matches(col: int) -> int:
        return sum(1 for r in rows[1:] if len(r) > col and r[col].strip() in known_ids)

    id_col = max(candidates, key=lambda c: (matches(c), -candidates.index(c)))
    first_col, last_col = _column(headers, FIRST), _column(headers, LAST)
    full_col, email_col = _column(headers, FULL), _column(headers, EMAIL)

    def cell(row, col):
        return row[col].strip() if col is not None and col < len(row) else None

    people: dict[str, Person] = {}
    problems: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(f.strip() for f in row):
            continue
        if any(NOT_STUDENTS.match(f) for f in row[:2]):
            continue
        sid = cell(row, id_col) or ""
        if not sid:
            problems.append(f"{path.name} line {line}: no student id; skipped")
            continue
        if not STUDENT_ID.fullmatch(sid):
            problems.append(f"{path.name} line {line}: {printable(sid)[:60]!r} is not a usable "
                            "student id; skipped")
            continue
        if sid in people:
            problems.append(f"{path.name} line {line}: student {sid} listed again; "
                            "the first entry is kept")
            continue
        first, last = cell(row, first_col), cell(row, last_col)
        if first is None and last is None and full_col is not None:
            first, last = _split_full(cell(row, full_col) or "")
        people[sid] = Person(sid, clean(first), clean(last), clean(cell(row, email_col)))
    return list(people.values()), problems
