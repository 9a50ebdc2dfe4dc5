"""Tests of the pool task functions (helpers/pool_tasks.py), run under every start method."""

import os
import sys

import pytest

from helpers import context
from helpers.pool_tasks import (
    exit_on,
    silence_stderr,
    sleep_pid,
    sleep_task,
    start_child,
    timed_sleep,
    timed_sleep_item,
    trivial,
    worker_info,
)
from helpers.timing import now


@pytest.mark.start_method_independent
def test_trivial_computes_its_result():
    assert trivial(41) == 42


@pytest.mark.start_method_independent
def test_sleep_task_waits_at_least_its_time():
    start = now()
    assert sleep_task(0.05) == 0.05
    assert now() - start >= 0.05


@pytest.mark.start_method_independent
def test_timed_variants_report_this_process_and_a_span():
    pid, span = timed_sleep("a", 0.02)
    assert pid == os.getpid() and span.lane == str(pid) and span.label == "a"
    assert span.duration >= 0.02
    pid, span = timed_sleep_item(("b", 0.0))
    assert span.label == "b" and span.end >= span.start
    assert sleep_pid(0.0) == os.getpid()


def test_timed_sleep_in_a_worker_reports_the_worker_pid(pool):
    pid, span = pool.apply(timed_sleep, ("x", 0.0))
    assert pid != os.getpid() and span.lane == str(pid)
    assert pool.apply(sleep_pid, (0.0,)) != os.getpid()


def test_start_child_and_worker_info_in_an_ordinary_process():
    # inside a pool worker (a daemon) start_child raises: lecture 04 shows both
    assert start_child() == 0
    pid, _, daemon = worker_info()
    assert pid == os.getpid() and daemon is False


def test_exit_on_returns_or_kills_the_process():
    assert exit_on(3, bad=4) == 3
    p = context().Process(target=exit_on, args=(4, 4))
    p.start()
    p.join(timeout=30)
    assert p.exitcode == 1


@pytest.mark.start_method_independent
def test_silence_stderr_points_stderr_at_devnull(monkeypatch):
    monkeypatch.setattr(sys, "stderr", sys.stderr)  # restored after the test
    silence_stderr()
    try:
        assert sys.stderr.name == os.devnull
        print("hidden", file=sys.stderr)
    finally:
        sys.stderr.close()
