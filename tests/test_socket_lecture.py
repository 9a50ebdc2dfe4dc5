"""Tests of lecture 06's measurement machinery (helpers/socket_lecture.py).

The servers are small ones from tests/socket_test_servers.py. Every test is bounded
(timeouts on every socket and wait); the root conftest fails a test file that leaves
a process behind. Nothing here asserts a speed."""

import importlib
import re
import socket
from pathlib import Path

import nbformat
import notebook_cells
import psutil
import pytest
import socket_test_servers as servers

from helpers import socket_lecture
from helpers.timing import Span, Stats


def _refuses(address) -> bool:
    try:
        socket.create_connection(address, timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_running_starts_serves_and_stops_cleanly(ctx):
    with socket_lecture.running(ctx, servers.serve_sequential) as server:
        assert server.address[0] == "127.0.0.1" and server.address[1] > 0
        assert server.ready_after > 0
        spans, answers = socket_lecture.session(server.address, ["abc", "汉字 xyz"])
        address = server.address
    assert answers == ["ABC", "汉字 XYZ"]
    assert [s.label for s in spans] == [socket_lecture.WAITING, socket_lecture.SERVED]
    assert spans[0].end == spans[1].start and all(s.lane == "client" for s in spans)
    assert not server.process.is_alive() and server.process.exitcode == 0
    assert _refuses(address)


def test_a_server_that_never_reports_its_address_fails_fast(ctx):
    with pytest.raises(socket_lecture.ServerTrouble, match="before it put its address"):
        with socket_lecture.running(ctx, servers.never_ready):
            pass


def test_a_server_that_ignores_stop_is_killed_and_reported(ctx, monkeypatch):
    monkeypatch.setattr(socket_lecture, "STOP_TIMEOUT", 1.0)
    with pytest.raises(socket_lecture.ServerTrouble, match="still running"):
        with socket_lecture.running(ctx, servers.ignores_stop) as server:
            pass
    assert not server.process.is_alive()


def test_a_process_the_server_left_behind_is_killed_and_reported(ctx, monkeypatch):
    monkeypatch.setattr(socket_lecture, "STOP_TIMEOUT", 2.0)  # it waits half of it for helpers
    with pytest.raises(socket_lecture.ServerTrouble, match="left 1 process"):
        with socket_lecture.running(ctx, servers.leaves_a_process) as server:
            pid = server.process.pid
            children = psutil.Process(pid).children()
            assert len(children) >= 1
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_clients_sequential_server_serves_one_at_a_time(ctx):
    with socket_lecture.running(ctx, servers.serve_sequential) as server:
        spans = socket_lecture.clients(server.address, 3, lines=2, think=0.05)
    assert len(spans) == 6
    assert sorted({s.lane for s in spans}) == ["client 1", "client 2", "client 3"]
    assert socket_lecture.most_at_once(spans) == 1
    assert socket_lecture.longest(spans) >= 2 * 0.05  # someone waited for a whole client


def test_clients_thread_server_serves_them_at_once(ctx):
    with socket_lecture.running(ctx, servers.serve_threads) as server:
        spans = socket_lecture.clients(server.address, 3, lines=2, think=0.3)
    assert socket_lecture.most_at_once(spans) >= 2


def test_clients_report_errors_in_the_callers_thread(ctx):
    with socket_lecture.running(ctx, servers.serve_closing) as server:
        with pytest.raises(ConnectionError):  # "closed before answering", or a reset
            socket_lecture.clients(server.address, 2, lines=1, think=0)
        address = server.address
    with pytest.raises(ConnectionRefusedError):
        socket_lecture.clients(address, 1)


def test_latency_times_each_connection(ctx):
    with socket_lecture.running(ctx, servers.serve_sequential) as server:
        stats = socket_lecture.latency(server.address, count=5)
    assert isinstance(stats, Stats) and len(stats.samples) == 5 and stats.low > 0


def test_compare_measures_every_server_and_count(ctx):
    result = socket_lecture.compare(
        ctx, {"seq": servers.serve_sequential, "threads": servers.serve_threads},
        counts=[1, 2], repeats=2, lines=1, think=0.05)
    assert result.counts == [1, 2]
    assert set(result.series) == set(result.ready) == set(result.peak) == {"seq", "threads"}
    assert all(len(stats) == 2 and len(stats[0].samples) == 2 for stats in result.series.values())
    assert result.peak["seq"] == 1
    assert len(socket_lecture.conclusion(result, one_client=0.05)) == 3


@pytest.mark.start_method_independent
def test_span_arithmetic():
    s = socket_lecture.SERVED
    spans = [Span("a", s, 0.0, 1.0), Span("b", s, 1.0, 2.0), Span("c", s, 1.5, 3.0),
             Span("c", socket_lecture.WAITING, 0.0, 1.5)]
    assert socket_lecture.wall(spans) == 3.0
    assert socket_lecture.most_at_once(spans) == 2  # a ends as b starts: not overlap
    assert socket_lecture.most_at_once(spans, socket_lecture.WAITING) == 1
    assert socket_lecture.longest(spans) == 1.5
    assert socket_lecture.longest([]) == 0.0


@pytest.mark.start_method_independent
def test_same_or_ratio_and_conclusion_wording():
    assert socket_lecture.same_or_ratio(1.1, 1.0) == "about the same as"
    assert socket_lecture.same_or_ratio(3.0, 1.0) == "3.0x as long as"
    assert socket_lecture.same_or_ratio(0.0, 0.0) == "about the same as"
    result = socket_lecture.Comparison(
        counts=[1, 4],
        series={"fast": [Stats((0.1,)), Stats((0.1, 0.11, 0.12))],
                "slow": [Stats((0.1,)), Stats((0.4, 0.4, 0.41))],
                "close": [Stats((0.1,)), Stats((0.12, 0.12, 0.12))]},
        ready={"fast": 0.1, "slow": 0.1, "close": 0.1},
        peak={"fast": 4, "slow": 1, "close": 4})
    lines = socket_lecture.conclusion(result, one_client=0.1)
    assert lines[0].startswith("4 clients at once")
    assert "fast: 0.11 s, the fastest; at most 4" in lines[1]
    assert "close: 0.12 s, about the same as the fastest" in lines[2]
    assert "slow: 0.40 s, 3.6x as long as the fastest; at most 1" in lines[3]


# --------------------------------------------------------------------------- the notebook's shape

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06-sockets-and-a-pool-server.ipynb"
LOAD_CELL = """import importlib
import sys

sys.dont_write_bytecode = True  # no stale cached copy of a file you rewrite within a second
importlib.invalidate_caches()
import {0}

{0} = importlib.reload({0})  # the version the cell above just wrote"""


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.mark.start_method_independent
def test_notebook_has_no_test_tool_noise_and_short_cells(nb):
    for cell in nb.cells:
        assert "NBVAL" not in cell.source and "not compared by the tests" not in cell.source
    assert notebook_cells.long_code_cells(nb) == []


@pytest.mark.start_method_independent
def test_each_module_being_taught_is_written_then_loaded(nb):
    cells = nb.cells
    written = []
    for i, cell in enumerate(cells):
        m = notebook_cells.WRITEFILE.match(cell.source)
        if m:
            written.append(m[1])
            assert cells[i + 1].source == LOAD_CELL.format(m[1]), f"no load cell after {m[1]}.py"
    assert written == ["echo_server", "line_reader", "line_server", "many_clients", "pool_server"]
    sanitize = (NOTEBOOK.parents[1] / "tests" / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    section = sanitize.split("[lecture 06 writefile]", 1)[1]
    assert all(name in section.split("\n[", 1)[0] for name in written)


@pytest.mark.start_method_independent
def test_everything_listens_on_loopback_port_0(nb):
    code = "\n".join(c.source for c in notebook_cells.code_cells(nb))
    assert set(re.findall(r"\d+\.\d+\.\d+\.\d+", code)) == {"127.0.0.1"}
    assert set(re.findall(r'\("127\.0\.0\.1", (\w+)\)', code)) == {"0"}
    assert "localhost" not in code and '("", ' not in code


@pytest.mark.start_method_independent
def test_lecture_shape(nb):
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("**Questions**", "**Objectives**", "## Glossary", "## Key points",
                    "## 6. Windows and macOS", "00-review.ipynb"):
        assert heading in text
    for term in ("套接字", "端口", "阻塞", "帧 / 分帧", "监听", "客户端", "服务器", "超时", "文件描述符"):
        assert term in text
    assert "kernel" not in text.lower()  # "this notebook's process" / "the operating system"


@pytest.mark.start_method_independent
def test_every_measurement_is_predicted_first(nb):
    last_markdown = ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            last_markdown = cell.source
        elif re.search(r"socket_lecture\.(clients|compare|latency)\(", cell.source):
            assert "**Predict, then run**" in last_markdown, cell.source.splitlines()[0]


def _run_exercise_check(nb, ctx, folder, monkeypatch, line_server_source) -> str:
    """The notebook's modules written to ``folder`` (line_server as given), then the
    exercise's self-check, run as the notebook runs it."""
    sources = notebook_cells.writefile_modules(nb) | {"line_server": line_server_source}
    check = notebook_cells.code_cell_containing(nb, "def check_quit")
    with notebook_cells.importable_from(folder, sources, monkeypatch):  # spawn children too
        namespace = {"ctx": ctx, "socket": socket, "socket_lecture": socket_lecture,
                     "line_server": importlib.import_module("line_server")}
        exec(check.replace("print(check_quit())", ""), namespace)
        return namespace["check_quit"]()


def test_exercise_check_fails_the_starter_and_passes_the_solution(nb, ctx, tmp_path, monkeypatch):
    starter = notebook_cells.writefile_source(nb, "line_server")
    message = _run_exercise_check(nb, ctx, tmp_path, monkeypatch, starter)
    assert message.startswith("QUIT should be answered with") and "TIUQ" in message
    solution_md = (NOTEBOOK.parent / "solutions" / "06-sockets-and-a-pool-server-solutions.md")
    block = re.search(r"```python\n(.*?)```", solution_md.read_text(encoding="utf-8"), re.S)[1]
    anchor = block.split("        if line == b\"QUIT\":")[0]
    assert anchor in starter, "the solution's context lines no longer match the notebook"
    solved = starter.replace(anchor, block.split("        last_line = time.monotonic()")[0], 1)
    assert solved != starter
    (tmp_path / "solved").mkdir()
    message = _run_exercise_check(nb, ctx, tmp_path / "solved", monkeypatch, solved)
    assert message == "Right: BYE, and the server closed the connection."
