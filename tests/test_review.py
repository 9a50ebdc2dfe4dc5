"""Tests for lecture 00's helpers: helpers/review.py and helpers/startmethod_demos.py.
No test asserts a speed. What the notebook runs and prints under every start method
(a blocked child's state, pinned spinners, a child's pid and globals, its parent,
Lock/Semaphore/Event occupancy, a spawn child that cannot find its target, scripts
with and without the main guard) is checked by nbval against its committed outputs,
not again here. The traffic-light harness is tested in tests/test_exercises.py,
``max_concurrency`` and ``finish`` (courselib.procs) in tests/test_procs.py."""

import os
import subprocess
import sys
import time

import pytest

from helpers import review, startmethod_demos
from helpers.timing import Span

# no child process involved: the start method cannot matter (make test runs these once)
independent = pytest.mark.start_method_independent


# --- pure functions -----------------------------------------------------------------


@independent
def test_busy_is_deterministic_cpu_work():
    assert review.busy(4) == 0 + 1 + 4 + 9
    assert review.busy(0) == 0


@independent
def test_calibrate_scales_with_the_target():
    small, large = review.calibrate(0.001), review.calibrate(0.05)
    assert small >= 1 and large > small


@independent
def test_stamps_to_spans_drops_a_paused_chunk_and_merges_the_rest():
    # chunks of 1 s, except the fourth, which took 10 s (it was paused)
    stamps = [0, 1, 2, 3, 13, 14, 15]
    spans = review.stamps_to_spans("A", stamps)
    assert [(s.start, s.end) for s in spans] == [(0, 3), (13, 15)]
    assert {s.lane for s in spans} == {"A"}


@independent
def test_stamps_to_spans_without_chunks():
    assert review.stamps_to_spans("A", [5.0]) == []


@independent
def test_overlap_and_window_overlap():
    spans = [
        Span("A", "A", 0, 1), Span("A", "A", 2, 3),  # A runs 0-1 and 2-3
        Span("B", "B", 0.5, 2.5),                      # B runs 0.5-2.5
    ]
    assert review.overlap_seconds(spans, "A", "B") == pytest.approx(1.0)
    assert review.running_seconds(spans, "A") == pytest.approx(2.0)
    assert review.window_overlap(spans, "A", "B") == pytest.approx(2.0)
    apart = [Span("A", "A", 0, 1), Span("B", "B", 2, 3)]
    assert review.overlap_seconds(apart, "A", "B") == 0
    assert review.window_overlap(apart, "A", "B") == 0


# --- the three ways to run two tasks ------------------------------------------------


def _check_two_lanes(spans, lanes):
    assert {s.lane for s in spans} == set(lanes)
    for lane in lanes:
        assert review.running_seconds(spans, lane) > 0
    assert all(s.end >= s.start for s in spans)


@independent
def test_one_after_another_never_overlaps():
    it = review.calibrate(0.0005)
    spans = review.one_after_another(40, it)
    _check_two_lanes(spans, ["task A", "task B"])
    assert review.window_overlap(spans, "task A", "task B") == 0


@independent
def test_in_threads_runs_both_lanes():
    spans = review.in_threads(40, review.calibrate(0.0005))
    _check_two_lanes(spans, ["thread A", "thread B"])


def test_in_processes_runs_both_lanes_in_children(ctx):
    spans = review.in_processes(ctx, 40, review.calibrate(0.0005))
    _check_two_lanes(spans, ["process A", "process B"])


# --- process states ---------------------------------------------------------------


@independent
def test_wait_for_status_accepts_any_of_several_names(monkeypatch):
    monkeypatch.setattr(review, "status_of", lambda pid: "idle")  # how macOS may say blocked
    start = time.monotonic()
    assert review.wait_for_status(1, review.BLOCKED_STATES, timeout=5) == "idle"
    assert review.wait_for_status(1, "idle", timeout=5) == "idle"
    assert time.monotonic() - start < 2, "it waited although the state was there at once"


@independent
def test_blocked_status_on_windows_says_what_is_skipped_without_waiting(monkeypatch):
    # psutil on Windows reports every live process as 'running': waiting for a
    # blocked state there would only run into the timeout
    def never(pid):
        raise AssertionError("no state to wait for on Windows")

    monkeypatch.setattr(review, "status_of", never)
    monkeypatch.setattr(sys, "platform", "win32")
    note = review.blocked_status(os.getpid(), timeout=30)
    monkeypatch.undo()
    assert note == review.NO_BLOCKED_STATE_ON_WINDOWS
    assert "Windows" in note and "running" in note


@independent
def test_cpu_seconds_grows_while_busy():
    before = review.cpu_seconds(os.getpid())
    review.busy(2_000_000)
    assert review.cpu_seconds(os.getpid()) > before


# --- what a process is ------------------------------------------------------------


@independent
def test_describe_parent_names_this_process_a_stranger_and_one_that_is_gone():
    # the fork server case is the notebook's (section 2, a child under each start method)
    assert review.describe_parent(os.getpid()) == "this process"
    assert review.describe_parent(os.getppid()) == "another process"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    assert review.describe_parent(gone.pid) == "a process that has exited"


# --- start methods (lecture 00, section 4) ----------------------------------------

TRACEBACK = """Traceback (most recent call last):
  File "<string>", line 1, in <module>
RuntimeError:
        An attempt has been made to start a new process before the
        current process has finished its bootstrapping phase.

        This probably means ...
AttributeError: Can't get attribute 'f' on <module '__main__' (built-in)>
RuntimeError: again
"""


@independent
def test_error_names_reads_the_exception_lines_of_a_traceback():
    assert startmethod_demos.error_names(TRACEBACK) == ["RuntimeError", "AttributeError"]
    assert startmethod_demos.error_names("") == []
    assert startmethod_demos.error_names("hello: world\nNote: x\n  ValueError: indented") == []


@independent
def test_error_message_is_the_first_sentence_with_whitespace_folded():
    assert startmethod_demos.error_message(TRACEBACK, "AttributeError") == (
        "Can't get attribute 'f' on <module '__main__' (built-in)>"
    )
    assert startmethod_demos.error_message(TRACEBACK, "RuntimeError") == "again"  # the last one
    first = TRACEBACK.split("AttributeError")[0]
    assert startmethod_demos.error_message(first, "RuntimeError") == (
        "An attempt has been made to start a new process before the current process "
        "has finished its bootstrapping phase."
    )
    assert startmethod_demos.error_message(TRACEBACK, "KeyError") == ""


@independent
def test_child_stderr_to_file_restores_stderr_after_an_exception(capfd):
    with pytest.raises(ZeroDivisionError), startmethod_demos.child_stderr_to_file() as err:
        os.write(2, b"inside\n")
        1 / 0  # noqa: B018
    os.write(2, b"outside\n")
    assert err.text == "inside\n"
    assert capfd.readouterr().err == "outside\n"


@independent
def test_run_script_stops_a_script_that_runs_too_long(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(30)\n")
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        startmethod_demos.run_script(str(script), timeout=0.5)
    assert time.monotonic() - start < 10
