import json
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import namedtuple

import psutil
import pytest
from late_queue import LateQueue

from courselib.procs import (
    drain,
    finish,
    get_or_none,
    is_mp_helper,
    kill_all,
    kill_session,
    kill_started,
    kill_tree,
    marked,
    max_concurrency,
    posix_sessions,
    still_running,
    terminate_then_kill,
    tree,
)
from courselib.startmethod import context

pytestmark = pytest.mark.start_method_independent

IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _start(code: str) -> tuple[subprocess.Popen, psutil.Process]:
    popen = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return popen, psutil.Process(popen.pid)


def test_kill_all_ends_processes_and_skips_gone_ones():
    popen, proc = _start("import time; time.sleep(60)")
    gone_popen, gone = _start("pass")
    gone_popen.wait(timeout=30)
    kill_all([proc, gone])
    # psutil reaps its own children and records how they ended
    assert not proc.is_running()
    assert proc.returncode == -9


def test_terminate_then_kill_kills_a_process_that_ignores_sigterm():
    popen, proc = _start(IGNORES_SIGTERM)
    assert popen.stdout.readline().strip() == "ready"
    terminate_then_kill([proc], grace=0.5)
    assert not proc.is_running()
    assert proc.returncode == -9


def test_terminate_then_kill_lets_a_polite_process_exit_on_sigterm():
    popen, proc = _start("import time; time.sleep(60)")
    terminate_then_kill([proc], grace=10)
    assert not proc.is_running()
    assert proc.returncode == -15


PARENT_OF_SLEEPER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_kill_tree_kills_a_process_and_its_children():
    popen, proc = _start(PARENT_OF_SLEEPER)
    child = psutil.Process(int(popen.stdout.readline()))
    assert [p.pid for p in tree(proc.pid)] == [proc.pid, child.pid]
    killed = kill_tree(proc.pid)
    assert {p.pid for p in killed} == {proc.pid, child.pid}
    popen.wait(timeout=30)
    assert not child.is_running()
    assert tree(proc.pid) == [] and kill_tree(proc.pid) == []


def test_marked_finds_what_an_exited_parent_left_behind(monkeypatch):
    """The orphan can no longer be found through its parent, but its environment
    still carries the mark its parent was given."""
    monkeypatch.setenv("PROCS_TEST_MARK", "")  # this process has the name, not the value
    env = dict(os.environ, PROCS_TEST_MARK=f"mark-{os.getpid()}")
    code = PARENT_OF_SLEEPER.replace("time.sleep(60)\n", "") + "\n"
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    orphan = psutil.Process(int(parent.stdout.readline()))
    parent.wait(timeout=30)
    try:
        assert [p.pid for p in marked("PROCS_TEST_MARK", f"mark-{os.getpid()}")] == [orphan.pid]
    finally:
        kill_all([orphan])
    assert marked("PROCS_TEST_MARK", f"mark-{os.getpid()}") == []


def test_still_running_counts_a_zombie_as_ended_and_waits_for_the_rest():
    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        quick_p, slow_p = psutil.Process(quick.pid), psutil.Process(slow.pid)
        deadline = time.monotonic() + 10
        while quick_p.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.02)  # it exits; nobody reaps it: a zombie
        assert quick_p.status() == psutil.STATUS_ZOMBIE
        start = time.monotonic()
        assert still_running([quick_p, slow_p], timeout=0.3) == [slow_p]
        assert time.monotonic() - start >= 0.3  # waited for the one still running
        slow.kill()
        slow.wait(timeout=10)
        assert still_running([quick_p, slow_p], timeout=5) == []
    finally:
        for p in (quick, slow):
            p.kill()
            p.wait(timeout=10)


# --- is this a multiprocessing helper process? ------------------------------------

TRACKER_AND_SLEEPER = (
    "import subprocess, sys\n"
    "from multiprocessing import resource_tracker\n"
    "import psutil\n"
    "sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "resource_tracker.ensure_running()\n"
    "tracker = [c.pid for c in psutil.Process().children() if c.pid != sleeper.pid]\n"
    "print(tracker[0], sleeper.pid, flush=True)\n"
    "sys.stdin.readline()\n"
    "sleeper.kill()\n"
    "sleeper.wait(30)\n"
)


def test_is_mp_helper_knows_the_resource_tracker_from_an_ordinary_child():
    """Both are children of one process; only the tracker is multiprocessing's own."""
    popen = subprocess.Popen([sys.executable, "-c", TRACKER_AND_SLEEPER],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tracker, sleeper = (psutil.Process(int(pid)) for pid in popen.stdout.readline().split())
        assert is_mp_helper(tracker)
        assert not is_mp_helper(sleeper)
        assert not is_mp_helper(psutil.Process())
    finally:
        popen.communicate("\n", timeout=30)
    assert not is_mp_helper(sleeper)  # gone: psutil cannot read it, and says no


def _forkserver_child():
    """A child started through the fork server (it sleeps), and the fork server."""
    ctx = multiprocessing.get_context("forkserver")
    child = ctx.Process(target=time.sleep, args=(60,))
    child.start()
    return child, psutil.Process(psutil.Process(child.pid).ppid())


needs_forkserver = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here")


@needs_forkserver
def test_is_mp_helper_knows_the_fork_server():
    child, server = _forkserver_child()
    try:
        assert server.pid != os.getpid() and is_mp_helper(server)
    finally:
        finish([child], 0)


@needs_forkserver
def test_is_mp_helper_does_not_take_a_fork_server_child_for_the_server():
    child, _ = _forkserver_child()
    try:
        assert not is_mp_helper(psutil.Process(child.pid))
    finally:
        finish([child], 0)


def _pool_in_a_forkserver_child(pids, done):
    """A fork server child that starts a forkserver Pool of 2: its own fork server."""
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(2) as pool:
        pool.map_async(time.sleep, [0, 0]).get(timeout=30)
        pids.put(os.getpid())
        done.wait(60)


@needs_forkserver
def test_is_mp_helper_knows_a_fork_server_started_by_a_fork_server_child():
    ctx = multiprocessing.get_context("forkserver")
    pids, done = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_pool_in_a_forkserver_child, args=(pids, done))
    server.start()
    try:
        pid = pids.get(timeout=60)
        below = psutil.Process(pid).children(recursive=True)
        helpers = [p for p in below if is_mp_helper(p)]
        assert not is_mp_helper(psutil.Process(pid))
        assert len(helpers) == 1 and helpers[0].ppid() == pid, [p.cmdline() for p in below]
        workers = [p for p in below if not is_mp_helper(p)]
        assert len(workers) == 2 and all(p.ppid() == helpers[0].pid for p in workers)
    finally:
        done.set()  # the pool ends as a student's would, and unlinks its semaphores
        finish([server], 30)


# --- ending processes: descendants, a session --------------------------------------

KILL_DESCENDANTS = (
    "import json, subprocess, sys\n"
    "from multiprocessing import resource_tracker\n"
    "import psutil\n"
    "from courselib.procs import kill_descendants, still_running\n"
    "parent = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE, text=True)\n"
    "grandchild = psutil.Process(int(parent.stdout.readline()))\n"
    "resource_tracker.ensure_running()\n"
    "keep = sys.argv[2] == 'keep'\n"
    "killed = kill_descendants(keep_mp_helpers=keep)\n"
    "left = psutil.Process().children(recursive=True)\n"
    "print(json.dumps({'killed': sorted(p.pid for p in killed),\n"
    "                  'expected': sorted([parent.pid, grandchild.pid]),\n"
    "                  'running': [p.pid for p in still_running(killed, 5)],\n"
    "                  'left_helpers': [p.pid for p in left if 'resource_tracker' in ' '.join(p.cmdline())]}))\n"
)


@pytest.mark.parametrize("keep", ["keep", "all"])
def test_kill_descendants_kills_children_and_grandchildren_but_keeps_the_tracker(keep):
    """Run in a process of its own: here it would kill what other tests started."""
    out = subprocess.run([sys.executable, "-c", KILL_DESCENDANTS, PARENT_OF_SLEEPER, keep],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    report = json.loads(out)
    assert report["running"] == []
    if keep == "keep":
        assert report["killed"] == report["expected"]
        assert len(report["left_helpers"]) == 1  # the resource tracker is still there
    else:
        assert set(report["expected"]) < set(report["killed"])  # the tracker too
        assert report["left_helpers"] == []


@pytest.mark.skipif(not posix_sessions(), reason="no POSIX sessions (Windows)")
def test_kill_session_kills_every_process_of_the_group():
    popen = subprocess.Popen([sys.executable, "-c", PARENT_OF_SLEEPER], stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    child = psutil.Process(int(popen.stdout.readline()))
    leader = psutil.Process(popen.pid)
    try:
        assert os.getpgid(child.pid) == popen.pid != os.getpgid(0)
        kill_session(popen.pid)
        popen.wait(timeout=30)
        assert popen.returncode == -9
        assert still_running([child], timeout=10) == []
        assert not still_running([leader])
    finally:
        kill_all([leader, child])


def test_kill_session_of_a_group_that_is_gone_is_no_error(monkeypatch):
    # not a real number: a group id that was freed may already belong to another
    # process group (a kernel of a test running beside this one was killed that way)
    def gone(pgid, sig):
        raise ProcessLookupError(pgid)

    monkeypatch.setattr(os, "killpg", gone)
    kill_session(12345)


def test_kill_session_does_nothing_where_there_are_no_sessions(monkeypatch):
    import courselib.procs as procs

    popen, proc = _start("import time; time.sleep(60)")
    monkeypatch.setattr(procs, "posix_sessions", lambda: False)
    try:
        kill_session(popen.pid)
        assert still_running([proc], timeout=0.3) == [proc]
    finally:
        kill_all([proc])


# --- multiprocessing processes and queues we started ------------------------------


def test_kill_started_ends_the_child_and_its_descendants_and_multiprocessing_sees_it():
    ctx = context()
    child = ctx.Process(target=subprocess.call,
                        args=([sys.executable, "-c", "import time; time.sleep(60)"],))
    child.start()
    deadline = time.monotonic() + 30
    while not tree(child.pid)[1:] and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchildren = tree(child.pid)[1:]
    assert grandchildren, "the child never started its own child"
    killed = kill_started(child)
    assert [p.pid for p in killed] == [p.pid for p in grandchildren]
    assert not child.is_alive() and child.exitcode is not None and child.exitcode < 0
    assert still_running(grandchildren, timeout=5) == []


def test_finish_joins_what_ends_and_terminates_what_does_not():
    ctx = context()
    quick = ctx.Process(target=time.sleep, args=(0,))
    stuck = [ctx.Process(target=time.sleep, args=(60,)) for _ in range(2)]
    for p in (quick, *stuck):
        p.start()
    start = time.monotonic()
    assert finish([quick, *stuck], timeout=2) == stuck
    # one deadline for all: the second stuck process gets no 2 s of its own
    assert time.monotonic() - start < 3.5
    assert quick.exitcode == 0
    for p in stuck:
        assert not p.is_alive()
        if sys.platform != "win32":
            assert p.exitcode == -signal.SIGTERM
    assert finish([], timeout=1) == []


def _put_and_exit(q, item):
    q.put(item)


def test_get_or_none_returns_what_arrives():
    ctx = context()
    q = ctx.Queue()
    writer = ctx.Process(target=_put_and_exit, args=(q, "hello"))
    writer.start()
    try:
        assert get_or_none(q, time.monotonic() + 30, writer.is_alive) == "hello"
    finally:
        finish([writer], 30)


def test_get_or_none_waits_for_the_deadline_while_a_writer_lives():
    q = queue.Queue()
    start = time.monotonic()
    assert get_or_none(q, start + 0.5, lambda: True) is None
    assert 0.5 <= time.monotonic() - start < 5


def test_get_or_none_gives_up_soon_once_the_writers_are_gone():
    q = queue.Queue()
    start = time.monotonic()
    assert get_or_none(q, start + 30, lambda: False, last_look=0.2) is None
    assert time.monotonic() - start < 5


def test_get_or_none_reads_what_a_writer_put_just_before_it_exited():
    """The race behind "results lost on a busy machine": the writer puts its item and
    exits while get() is timing out, so the item is there when "is it alive?" says no."""
    ctx = context()
    q = ctx.Queue()
    late = LateQueue(q)  # its first get() waits 1.5 s, then says Empty
    writer = ctx.Process(target=_put_and_exit, args=(q, "last words"))
    writer.start()
    try:
        assert get_or_none(late, time.monotonic() + 30, writer.is_alive) == "last words"
    finally:
        finish([writer], 30)


def test_drain_reads_everything_then_stops_when_quiet():
    q = queue.Queue()
    for i in (0, 1, None, 2):  # None is an item like any other
        q.put(i)
    assert drain(q, quiet=0.05) == [0, 1, None, 2]
    start = time.monotonic()
    assert drain(q, quiet=0.3) == []
    assert 0.3 <= time.monotonic() - start < 5


def test_drain_stops_at_its_limit_on_a_queue_that_never_goes_quiet():
    q, stop = queue.Queue(), threading.Event()

    def chatter():
        while not stop.wait(0.01):
            q.put("more")

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        start = time.monotonic()
        got = drain(q, quiet=0.5, limit=0.5)
        assert got and time.monotonic() - start < 2
    finally:
        stop.set()
        thread.join(timeout=10)


class _BreaksAfter:
    """A queue whose writer died while writing: items, then EOFError."""

    def __init__(self, items, error):
        self._items, self._error = list(items), error

    def get(self, timeout=None):
        if self._items:
            return self._items.pop(0)
        raise self._error


@pytest.mark.parametrize("error", [EOFError, OSError, ValueError])
def test_drain_returns_what_came_before_a_queue_broke(error):
    assert drain(_BreaksAfter([1, 2], error())) == [1, 2]


# --- a measurement --------------------------------------------------------------------


Span = namedtuple("Span", "start end")  # anything with .start and .end, like helpers.timing.Span


def test_max_concurrency_counts_spans_open_at_one_instant():
    def spans(*pairs):
        return [Span(a, b) for a, b in pairs]

    assert max_concurrency([]) == 0
    assert max_concurrency(spans((0, 1))) == 1
    assert max_concurrency(spans((0, 1), (1, 2), (2, 3))) == 1  # touching ends do not overlap
    assert max_concurrency(spans((0, 3), (1, 2), (1.5, 4))) == 3
    assert max_concurrency(spans((0, 2), (1, 3), (2.5, 4))) == 2
    assert max_concurrency(spans((0, 1), (0, 1), (0, 1))) == 3  # the same span three times
    # plain (start, end) pairs count the same way
    assert max_concurrency([(0, 2), (1, 3), (4, 6), (5, 7)]) == 2
    assert max_concurrency([(1, 2), (0, 1)]) == 1  # in any order
