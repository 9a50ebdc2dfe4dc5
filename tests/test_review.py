"""Tests for lecture 00's helpers: helpers/review.py, helpers/review_exercises.py and
helpers/startmethod_demos.py. Run under every start method:
MP_START_METHOD=spawn|forkserver|fork. No test asserts a speed."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from late_queue import LateContext

from helpers import review, review_exercises, startmethod_demos
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
def test_max_concurrency():
    def spans(*pairs):
        return [Span(f"w{i}", "x", a, b) for i, (a, b) in enumerate(pairs)]

    assert review.max_concurrency(spans((0, 1), (1, 2), (2, 3))) == 1  # touching ends
    assert review.max_concurrency(spans((0, 3), (1, 2), (1.5, 4))) == 3
    assert review.max_concurrency(spans((0, 2), (1, 3), (2.5, 4))) == 2
    assert review.max_concurrency([]) == 0


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


def test_blocked_child_sleeps_then_runs(ctx):
    inbox, outbox, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    p = ctx.Process(target=review.wait_then_spin, args=(inbox, outbox, stop))
    p.start()
    try:
        assert outbox.get(timeout=30) == "waiting"
        blocked = review.blocked_status(p.pid)
        if sys.platform == "linux":
            assert blocked == "sleeping"  # what the notebook's committed output shows
        elif sys.platform == "win32":
            assert blocked == review.NO_BLOCKED_STATE_ON_WINDOWS
        else:
            assert blocked in review.BLOCKED_STATES
        inbox.put("item")
        assert outbox.get(timeout=30) == ("got", "item")
        assert review.wait_for_status(p.pid, "running") == "running"
        stop.set()
        assert outbox.get(timeout=30) == "done"
    finally:
        stop.set()
        review.finish([p])
    assert p.exitcode == 0


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_pinned_spinners_share_one_cpu(ctx):
    cpu = min(os.sched_getaffinity(0))
    stop, outbox = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=review.spin_pinned, args=(cpu, stop, outbox)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        pids = sorted(outbox.get(timeout=30)[1] for _ in procs)
        assert pids == sorted(p.pid for p in procs)
        for pid in pids:
            assert os.sched_getaffinity(pid) == {cpu}
            assert review.status_of(pid) == "running"
    finally:
        stop.set()
        review.finish(procs)


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


def test_child_has_its_own_globals_and_reports_pid(ctx):
    review.COUNTER = 7
    try:
        out = ctx.Queue()
        p = ctx.Process(target=review.introspect, args=(out,))
        p.start()
        report = out.get(timeout=30)
        review.finish([p])
        assert report["pid"] == p.pid != os.getpid()
        # one program, several processes: the child runs the same interpreter file
        assert report["exe"] == psutil.Process().exe()
        # fork copies the parent's memory; spawn and forkserver import the module afresh
        expected = 7 if ctx.get_start_method() == "fork" else 0
        assert report["seen"] == expected
        assert report["after"] == expected + 100
        assert review.COUNTER == 7  # the child's change did not reach the parent
        parent = review.describe_parent(report["ppid"])
        if ctx.get_start_method() == "forkserver":
            assert parent.startswith("the fork server")
        else:
            assert parent == "this process"
    finally:
        review.COUNTER = 0


@independent
def test_describe_parent_of_a_stranger():
    assert review.describe_parent(os.getppid()) in {"another process", "a process that has exited"}


# --- Lock, Semaphore, Event --------------------------------------------------------


@pytest.mark.parametrize("keys", [1, 2])
def test_semaphore_never_lets_more_than_n_inside(ctx, keys):
    spans = review.measure_occupancy(ctx, ctx.Semaphore(keys), n_workers=4, hold=0.1)
    assert sorted(s.lane for s in spans) == [f"worker {i}" for i in range(4)]
    assert 1 <= review.max_concurrency(spans) <= keys


def test_lock_lets_one_inside(ctx):
    spans = review.measure_occupancy(ctx, ctx.Lock(), n_workers=3, hold=0.05)
    assert review.max_concurrency(spans) == 1


def test_no_guard_still_records_every_worker(ctx):
    spans = review.measure_occupancy(ctx, None, n_workers=3, hold=0.05)
    assert len(spans) == 3


def test_event_wait_returns_true_when_set_and_false_on_timeout(ctx):
    out, ev = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=review.wait_for_event, args=(ev, out, 30))
    p.start()
    assert out.get(timeout=30) == "waiting"
    ev.set()
    flag, _ = out.get(timeout=30)
    review.finish([p])
    assert flag is True and ev.is_set()

    ev.clear()
    p = ctx.Process(target=review.wait_for_event, args=(ev, out, 0.1))
    p.start()
    assert out.get(timeout=30) == "waiting"
    flag, waited = out.get(timeout=30)
    review.finish([p])
    assert flag is False and waited >= 0.1


CARS = """
from helpers.timing import now

def waits(light, out, name):
    out.put(("arrived", name, now()))
    light.wait(10)
    out.put(("passed", name, now()))

def runs_red(light, out, name):
    out.put(("arrived", name, now()))
    out.put(("passed", name, now()))

def crashes(light, out, name):
    raise RuntimeError("engine failure")
"""


@pytest.fixture
def cars(tmp_path, monkeypatch):
    """A module of car functions, importable by children (like the notebook's %%writefile)."""
    (tmp_path / "_test_cars.py").write_text(CARS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import _test_cars

    yield importlib.reload(_test_cars)
    sys.modules.pop("_test_cars", None)


def test_traffic_cars_that_wait_pass_after_green(ctx, cars):
    green, passed = review_exercises.run_traffic(ctx, cars.waits, n_cars=3, red_seconds=0.2)
    assert green is not None and sorted(passed) == ["car 0", "car 1", "car 2"]
    assert all(t >= green for t in passed.values())


def test_traffic_cars_that_run_the_red_light_are_caught(ctx, cars):
    green, passed = review_exercises.run_traffic(ctx, cars.runs_red, n_cars=2, red_seconds=0.2)
    assert green is not None and len(passed) == 2
    assert all(t < green for t in passed.values())


def test_traffic_reads_what_cars_sent_before_they_exited(ctx, cars):
    green, passed = review_exercises.run_traffic(LateContext(ctx), cars.runs_red, n_cars=3,
                                       red_seconds=0.1)
    assert green is not None, "every car arrived: the messages were still in the queue"
    assert len(passed) == 3 and all(t < green for t in passed.values())


def test_traffic_with_crashing_cars_returns_instead_of_hanging(ctx, cars):
    green, passed = review_exercises.run_traffic(ctx, cars.crashes, n_cars=2, red_seconds=0.1)
    assert green is None and passed == {}


def test_finish_terminates_a_process_that_will_not_end(ctx):
    never_set, out = ctx.Event(), ctx.Queue()  # kept referenced while the child uses them
    p = ctx.Process(target=review.wait_for_event, args=(never_set, out, 60))
    p.start()
    review.finish([p], timeout=2)
    assert not p.is_alive()
    if sys.platform != "win32":
        assert p.exitcode == -signal.SIGTERM


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
def test_child_stderr_to_file_catches_a_spawn_childs_traceback(cars):
    spawn = multiprocessing.get_context("spawn")  # what the notebook uses, whatever the method
    with startmethod_demos.child_stderr_to_file() as err:
        p = spawn.Process(target=cars.crashes, args=(None, None, "car 0"))
        p.start()
        p.join(timeout=60)
    assert p.exitcode == 1
    assert "engine failure" in err.text
    assert startmethod_demos.error_names(err.text) == ["RuntimeError"]
    os.write(2, b"")  # descriptor 2 is usable again after the block


@independent
def test_child_stderr_to_file_restores_stderr_after_an_exception(capfd):
    with pytest.raises(ZeroDivisionError), startmethod_demos.child_stderr_to_file() as err:
        os.write(2, b"inside\n")
        1 / 0  # noqa: B018
    os.write(2, b"outside\n")
    assert err.text == "inside\n"
    assert capfd.readouterr().err == "outside\n"


@independent
def test_a_function_only_the_parents_main_has_kills_a_spawn_child(monkeypatch):
    """The notebook's section 4.1: a target defined in ``__main__`` (a notebook cell)."""

    def square_into(x, out):
        out.put(x * x)

    square_into.__module__ = "__main__"
    square_into.__qualname__ = "_review_test_only_in_parent"
    monkeypatch.setattr(sys.modules["__main__"], square_into.__qualname__, square_into,
                        raising=False)
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    with startmethod_demos.child_stderr_to_file() as err:
        p = spawn.Process(target=square_into, args=(7, out))
        p.start()  # no exception in the parent
        p.join(timeout=60)
    assert p.exitcode == 1
    assert "AttributeError" in startmethod_demos.error_names(err.text)


SCRIPT = """import multiprocessing


def greet(name):
    print("hello from", name, flush=True)


print("this module runs as", __name__, flush=True)
{guard}spawn = multiprocessing.get_context("spawn")
{indent}p = spawn.Process(target=greet, args=("the child",))
{indent}p.start()
{indent}p.join(timeout=30)
{indent}print("child exit code:", p.exitcode, flush=True)
"""


@independent
@pytest.mark.parametrize("guarded", [False, True], ids=["no_guard", "with_guard"])
def test_scripts_with_and_without_the_main_guard(tmp_path, guarded):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(guard='if __name__ == "__main__":\n    ' if guarded else "",
                                    indent="    " if guarded else ""))
    result = startmethod_demos.run_script(str(script), timeout=60)
    assert result.returncode == 0  # the parent itself ends normally either way
    lines = result.stdout.splitlines()
    assert lines[:2] == ["this module runs as __main__", "this module runs as __mp_main__"]
    if guarded:
        assert lines[2:] == ["hello from the child", "child exit code: 0"]
        assert startmethod_demos.error_names(result.stderr) == []
    else:
        assert lines[2:] == ["child exit code: 1"]
        assert startmethod_demos.error_names(result.stderr) == ["RuntimeError"]
        assert "bootstrapping phase" in startmethod_demos.error_message(result.stderr, "RuntimeError")


@independent
def test_run_script_stops_a_script_that_runs_too_long(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(30)\n")
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        startmethod_demos.run_script(str(script), timeout=0.5)
    assert time.monotonic() - start < 10
