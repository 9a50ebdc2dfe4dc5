"""Fixtures for the end-to-end tests: the course's own JupyterLab, started on
127.0.0.1 in a temporary copy of the course, driven by Playwright in Debian's
headless Chromium (browser downloads do not work on these machines).

Everything is module-scoped: each test file starts its own JupyterLab and
browser and stops them (the whole process tree) in its teardown, because the
repository's conftest fails a file that leaves a process behind.

There is no skip: without Chromium or Playwright the tests fail and say how to
get them (`make test-browser` installs both).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect

from courselib.procs import terminate_then_kill

# Assertions on the page wait this long (ms) before failing: 2 busy cores.
expect.set_options(timeout=30_000)

REPO = Path(__file__).resolve().parents[2]
# The course copied into the temporary root: this checkout, or another one
# (COURSE_BROWSER_SRC=/path/to/course) to try the tests on work in progress.
COURSE_SRC = Path(os.environ.get("COURSE_BROWSER_SRC", REPO))
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
# The flags these machines need (see the machine notes): no sandbox as root,
# no GPU, and no background connections to Google's hosts on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# What of the course a student's or teacher's JupyterLab sees. Copied, so the
# tests never save over committed notebooks or write a gradebook at the root.
COURSE_PARTS = ("notebooks", "release", "source", "nbgrader_config.py")
SERVER_START_TIMEOUT = 90  # seconds; 2 cores shared by many processes
# Settings for a clean, quiet JupyterLab: no news or update checks (no
# internet here), and every cell kept in the page so the tests can see all
# prompts and outputs.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(procs: list[psutil.Process], grace: float = 10.0) -> None:
    terminate_then_kill(procs, grace)


class Lab:
    """A running JupyterLab: its URL, token, course root and REST helpers."""

    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root = root
        self.port = port
        self.token = token
        self.proc = proc
        self.log = log
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, timeout: float = 10):
        req = urllib.request.Request(
            f"{self.base}/{path.lstrip('/')}",
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


@pytest.fixture(scope="module")
def course_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    for part in COURSE_PARTS:
        src = COURSE_SRC / part
        if src.is_dir():
            shutil.copytree(src, root / part, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        elif src.is_file():
            shutil.copy2(src, root / part)
    return root


@pytest.fixture(scope="module")
def lab(course_root: Path, tmp_path_factory):
    """The course's JupyterLab (from this venv) serving the temporary course root."""
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    settings_dir = jupyter_dir / "lab-settings"
    for rel, values in LAB_SETTINGS.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # Kernels talk over Unix sockets, not TCP ports: with many kernels starting
    # at once on a busy machine (notebooks, nbgrader's Validate, the grader),
    # TCP port picking races ("Address already in use", "Kernel died before
    # replying to kernel_info"). Unix socket paths must stay short (< 108
    # bytes), hence a runtime folder right under /tmp.
    runtime_dir = Path(tempfile.mkdtemp(prefix="jrt", dir="/tmp"))
    config_dir = jupyter_dir / "config"
    config_dir.mkdir()
    ipc = json.dumps({"KernelManager": {"transport": "ipc"}})
    for app in ("jupyter_server_config", "nbgrader_config"):  # lab's kernels, Validate's
        (config_dir / f"{app}.json").write_text(ipc)
    env = dict(os.environ)
    env.update(
        # user-level config, settings, workspaces and runtime files in temp
        # folders: nothing from ~/.jupyter leaks in, nothing is left behind
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_DATA_DIR=str(jupyter_dir / "data"),
        JUPYTER_RUNTIME_DIR=str(runtime_dir),
        JUPYTERLAB_SETTINGS_DIR=str(settings_dir),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter_dir / "workspaces"),
        MP_START_METHOD=os.environ.get("MP_START_METHOD", "spawn"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    log = jupyter_dir / "server.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={course_root}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI and these machines run as root
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=course_root, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Lab(course_root, port, token, proc, log)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                server.api("api/status", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(0.5)
        yield server
    finally:
        _stop_server(proc)
        shutil.rmtree(runtime_dir, ignore_errors=True)


def _stop_server(proc: subprocess.Popen) -> None:
    """Stop JupyterLab and everything it started (kernels and their workers)."""
    try:
        parent = psutil.Process(proc.pid)
        tree = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    if proc.poll() is None:
        # SIGTERM: Jupyter stops and shuts its kernels down cleanly; anything
        # still alive after that is killed.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    _kill_tree([p for p in tree if p.is_running()], grace=5)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium, headless, driven by Playwright's sync API."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium "
            "(`make test-browser` installs it: scripts/ensure-debian-packages.sh chromium)"
        )
    from playwright.sync_api import sync_playwright

    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    pw = sync_playwright().start()
    started = [p for p in me.children(recursive=True) if p.pid not in before]
    try:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        started += [p for p in me.children(recursive=True) if p.pid not in before]
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
        # Playwright's driver and Chromium exit on close/stop; anything that
        # did not is killed here so no browser process outlives the file.
        _kill_tree([p for p in {p.pid: p for p in started}.values() if p.is_running()], grace=5)


@pytest.fixture(scope="module")
def page(browser, lab: Lab):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture(scope="module")
def shot():
    """``shot(page, "01-lecture-ran")`` saves tests/browser/screenshots/01-lecture-ran.png."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(pg, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=False, timeout=30_000)
        return path

    return take


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request):
    """A failed step leaves FAILED-<test>.png showing what the browser showed."""
    yield
    if request.node.stash.get(_CALL_FAILED, False) and "page" in request.fixturenames:
        pg = request.getfixturevalue("page")
        SCREENSHOTS.mkdir(exist_ok=True)
        try:
            pg.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), timeout=15_000)
        except Exception as exc:  # the page may be gone; the test failed anyway
            print(f"no failure screenshot: {exc}")
