"""`course-grade` with the gradebook in PostgreSQL (`db_url`), against a real
server this test starts on 127.0.0.1 in a temporary directory and stops.

The server binaries come from Debian's postgresql package (`make test-unit`
installs it when missing: scripts/ensure-debian-packages.sh)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from tests.support import course as fx
from tests.support.nbgrader_cli import course_grade, grade_rows
from tests.support.sandboxing import sandbox_required  # noqa: F401 - fixture

# Debian's server binaries, newest version first (bookworm ships 15, trixie 17)
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
             default=Path("/usr/lib/postgresql/15/bin"))

pytestmark = [
    pytest.mark.start_method_independent, pytest.mark.slow(27),
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("sandbox_required"),
]


def _bin(name: str) -> str:
    path = PG_BIN / name if (PG_BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"PostgreSQL's {name} is missing: scripts/ensure-debian-packages.sh postgresql")
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A throw-away PostgreSQL cluster run as the unprivileged 'nobody' user
    (initdb refuses root), in a folder of its own that nobody can reach (pytest's
    tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="grade-pg-"))
    base.chmod(0o755)
    data, sock = base / "pgdata", base / "pgsock"
    for d in (data, sock):
        d.mkdir()
        shutil.chown(d, "nobody", "nogroup")
    as_nobody = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    ctl = [*as_nobody, _bin("pg_ctl"), "-D", str(data)]
    try:
        subprocess.run([*as_nobody, _bin("initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True,
                       timeout=120, cwd=base)
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        subprocess.run([*ctl, "-o", opts, "-w", "-t", "60", "-l", str(sock / "pg.log"), "start"],
                       cwd=base, check=True, capture_output=True, timeout=90)
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the pinned driver is psycopg2
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "-w", "-t", "60", "stop"],
                       capture_output=True, timeout=90, cwd=base)
        shutil.rmtree(base, ignore_errors=True)


def test_grades_land_in_postgresql(tmp_path, postgres):
    root = fx.ga_course(tmp_path / "course",
                        extra_config=f"c.CourseDirectory.db_url = {postgres!r}\n")
    assert not (root / "gradebook.db").exists()  # nbgrader wrote to PostgreSQL
    for student, answer in (("good", fx.GA_CORRECT), ("wrong", "def square(x):\n    return 0\n"),
                            ("also_good", fx.GA_CORRECT)):
        fx.ga_submit(root, student, answer)
    proc = course_grade(root, fx.GA, "--workers", "2", "--no-feedback", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Gradebook(postgres) as gb:
        got = {s.student.id: s.score for s in gb.find_assignment(fx.GA).submissions}
    assert got == {"good": fx.GA_MAX_SCORE, "also_good": fx.GA_MAX_SCORE, "wrong": 0.0}
    assert {s: float(r["score"]) for s, r in grade_rows(root, fx.GA).items()} == got
