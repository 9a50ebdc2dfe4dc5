"""Homework 3 (TCP upper-casing server on a process pool): the grading checks of
helpers/tcpcheck.py against the reference solution and sample submissions, the
by-hand client, and that release/ is in sync with source/ (nbgrader validate of
the notebook: tests/test_hw_release.py, with hw1 and hw2)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from helpers import tcpcheck, upper_client

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "submissions" / "hw3"
SOURCE_NB = ROOT / "source" / "hw3" / "hw3.ipynb"
RELEASE_NB = ROOT / "release" / "hw3" / "hw3.ipynb"
BIN = Path(sys.executable).parent


def answer_cell(notebook: Path) -> str:
    """The module text the notebook's %%writefile answer cell writes."""
    nb = json.loads(notebook.read_text())
    cells = [
        "".join(c["source"])
        for c in nb["cells"]
        if c["cell_type"] == "code" and "".join(c["source"]).startswith("%%writefile hw3_server.py")
    ]
    assert len(cells) == 1, f"{notebook} must have exactly one %%writefile hw3_server.py cell"
    return cells[0].split("\n", 1)[1]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Every submission as an importable module (children import it by name, so it is a
    real file on sys.path, which spawn and forkserver children inherit)."""
    folder = tmp_path_factory.mktemp("hw3_modules")
    texts = {
        "correct": answer_cell(SOURCE_NB),
        "blank": answer_cell(RELEASE_NB),
        **{p.stem: p.read_text() for p in SAMPLES.glob("*.py")},
    }
    for name, text in texts.items():
        (folder / f"hw3_sample_{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield {name: importlib.import_module(f"hw3_sample_{name}") for name in texts}
    finally:
        sys.path.remove(str(folder))


CHECKS = [
    "check_round_trip",
    "check_framing",
    "check_concurrent",
    "check_bad_clients",
    "check_silent_clients",
    "check_overlong_line",
    "check_shutdown",
]


def test_reference_respond(modules):
    """The reference respond() passes the unit check."""
    tcpcheck.check_respond(modules["correct"].respond)


@pytest.mark.parametrize("check", CHECKS)
def test_reference_passes(modules, check):
    """The reference solution passes every server check."""
    getattr(tcpcheck, check)(modules["correct"].serve)


def test_reference_distinct_workers(modules):
    """Four clients at once are held by four different pool workers."""
    tcpcheck.check_concurrent(modules["correct"].serve, workers=4, distinct_workers=True)


def test_design_a_passes(modules):
    """The other design the notebook describes (the main process accepts and hands each
    connection to the pool with apply_async) passes the checks too: they test behaviour,
    not one design."""
    sample = modules["design_a"]
    tcpcheck.check_respond(sample.respond)
    tcpcheck.check_round_trip(sample.serve)
    tcpcheck.check_concurrent(sample.serve, workers=3, distinct_workers=True)
    tcpcheck.check_bad_clients(sample.serve)
    tcpcheck.check_silent_clients(sample.serve)
    tcpcheck.check_shutdown(sample.serve)


def test_blank_fails_in_words(modules):
    """The released stub fails at once, saying it is not written yet (no timeout wait)."""
    with pytest.raises(NotImplementedError):
        tcpcheck.check_respond(modules["blank"].respond)
    start = time.monotonic()
    with pytest.raises(tcpcheck.ServerError, match="still raises NotImplementedError"):
        tcpcheck.check_round_trip(modules["blank"].serve)
    assert time.monotonic() - start < tcpcheck.START_TIMEOUT


def test_one_at_a_time_fails_concurrency(modules, monkeypatch):
    """A server that serves one client at a time answers a lone client but fails the
    concurrency check with a message saying so."""
    monkeypatch.setattr(tcpcheck, "IO_TIMEOUT", 4.0)  # the wait it must fail after
    sample = modules["one_at_a_time"]
    tcpcheck.check_round_trip(sample.serve)
    with pytest.raises(tcpcheck.ServerError, match="one client at a time") as info:
        tcpcheck.check_concurrent(sample.serve, workers=3)
    assert "only 1 of 3" in str(info.value)


def test_main_process_io_fails_worker_check(modules):
    """A server whose main process holds every connection answers all clients but fails
    the check that connections are served by pool workers."""
    with pytest.raises(tcpcheck.ServerError, match="main process"):
        tcpcheck.check_concurrent(modules["main_process_io"].serve, workers=2)


def test_crash_on_invalid_utf8_fails_bad_clients(modules):
    """A server whose worker crashes on invalid UTF-8 fails the bad-clients check by
    name, while a well-behaved client is served."""
    sample = modules["crash_utf8"]
    tcpcheck.check_round_trip(sample.serve)
    with pytest.raises(tcpcheck.ServerError, match="invalid UTF-8.*connection closed"):
        tcpcheck.check_bad_clients(sample.serve)


def test_leaking_server_is_stopped_and_reported(modules, monkeypatch):
    """A server that ignores stop is reported, killed with all its workers, and its port
    is closed afterwards: no process and no listening socket is left."""
    monkeypatch.setattr(tcpcheck, "STOP_TIMEOUT", 2.0)
    pids = []
    original = tcpcheck.RunningServer.remember_descendants

    addresses = []

    def spy(self):
        original(self)
        pids.extend([self.process.pid, *self.descendants])
        addresses.append(self.address)

    monkeypatch.setattr(tcpcheck.RunningServer, "remember_descendants", spy)
    with pytest.raises(tcpcheck.ServerError, match="did not return within 2 s") as info:
        tcpcheck.check_shutdown(modules["leak"].serve, workers=2)
    assert "still running" in str(info.value) and "killed now" in str(info.value)
    # the server and its two workers were seen (under forkserver also the server's own
    # forkserver process, the workers' parent) ...
    assert len(set(pids)) >= 3, pids
    alive = [p for p in set(pids) if psutil.pid_exists(p) and _not_zombie(p)]
    assert not alive, f"still running after the check: {alive}"  # ... and are gone
    assert addresses and not tcpcheck.port_accepts(addresses[0]), "the port still listens"


def _not_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_runner_reports_server_that_never_gets_ready(modules):
    with pytest.raises(tcpcheck.ServerError, match="did not put its address"):
        with tcpcheck.running_server(modules["fakes"].never_ready, start_timeout=1.0):
            pass


def test_runner_reports_exceptions_and_bad_ready(modules):
    with pytest.raises(tcpcheck.ServerError, match="RuntimeError: boom in serve"):
        with tcpcheck.running_server(modules["fakes"].raises):
            pass
    with pytest.raises(tcpcheck.ServerError, match="expected \\(host, port\\)"):
        with tcpcheck.running_server(modules["fakes"].bad_ready):
            pass


def test_upper_client(modules):
    """The by-hand client, as a function and as `python -m helpers.upper_client`."""
    with tcpcheck.running_server(modules["correct"].serve, workers=2) as server:
        assert upper_client.ask(server.address, ["hello", "abc汉字ß"]) == ["HELLO", "ABC汉字SS"]
        done = subprocess.run(
            [sys.executable, "-m", "helpers.upper_client", *map(str, server.address)],
            input="one\n汉字 two\n",
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "ONE\n汉字 TWO\n"


# ----------------------------------------------------------------- the notebook


@pytest.mark.start_method_independent
@pytest.mark.timeout(300)
def test_release_is_generated_from_source(tmp_path):
    """Regenerating release/hw3 from source/hw3 changes nothing."""
    (tmp_path / "source").mkdir()
    shutil.copytree(
        ROOT / "source" / "hw3",
        tmp_path / "source" / "hw3",
        ignore=shutil.ignore_patterns("hw3_server.py", "__pycache__"),
    )
    if (ROOT / "nbgrader_config.py").exists():
        shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(BIN / "nbgrader"),
            "generate_assignment",
            "hw3",
            f"--CourseDirectory.root={tmp_path}",
            f"--db=sqlite:///{tmp_path}/gradebook.db",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    generated = sorted(
        p.relative_to(tmp_path / "release")
        for p in (tmp_path / "release").rglob("*")
        if p.is_file()
    )
    assert generated == [Path("hw3/hw3.ipynb")], generated
    assert (tmp_path / "release" / "hw3" / "hw3.ipynb").read_text() == RELEASE_NB.read_text(), (
        "release/hw3 is out of date: regenerate it with nbgrader generate_assignment hw3"
    )
