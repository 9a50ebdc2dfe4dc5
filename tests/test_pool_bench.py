"""Tests of the lecture-04 measurements (helpers/pool_bench.py).

They check what is measured and returned, never how fast anything is.
"""

import math
import multiprocessing.pool
import os
from itertools import pairwise

import pytest
from pool_test_workers import cpu_task, fetch, more_work_in_a_child, record_call

from helpers import context, pool_bench, speedup
from helpers.local_http import DelayServer
from helpers.timing import Span, Stats


@pytest.mark.parametrize("n", [1, 7, 8, 9, 100, 1000])
def test_default_chunksize_matches_what_map_uses(pool, monkeypatch, n):
    seen = []
    original = multiprocessing.pool.Pool._get_tasks

    def spy(func, it, size):
        seen.append(size)
        return original(func, it, size)

    monkeypatch.setattr(multiprocessing.pool.Pool, "_get_tasks", staticmethod(spy))
    assert pool.map(pool_bench.trivial, range(n)) == [i + 1 for i in range(n)]
    assert seen == [pool_bench.default_chunksize(n, 2)]
    assert pool_bench.default_chunksize(0, 2) == 0


def test_run_helpers_do_the_work():
    assert pool_bench.run_processes(2) == [0, 0]
    assert pool_bench.run_pool(5, processes=2) == [1, 2, 3, 4, 5]
    assert pool_bench.run_sequential(3) == [1, 2, 3]


def test_start_cost_returns_repeated_samples():
    method = context().get_start_method()
    stats = pool_bench.start_cost(method, repeats=2)
    assert isinstance(stats, Stats) and len(stats.samples) == 2


def test_handover_cost(pool):
    assert len(pool_bench.handover_cost(pool, repeats=3).samples) == 3


def test_pool_vs_process_limits_the_process_series():
    result = pool_bench.pool_vs_process([3, 1], max_process_tasks=1, repeats=2, processes=2)
    assert set(result) == {"sequential", "one Process per task", "Pool.map (start-up included)"}
    assert result["sequential"][0] == [1, 3]
    assert result["one Process per task"][0] == [1]
    assert result["Pool.map (start-up included)"][0] == [1, 3]
    for xs, stats in result.values():
        assert len(stats) == len(xs) and all(len(s.samples) == 2 for s in stats)


def test_speedup_vs_pool_size_measures_each_size_on_a_warm_pool():
    sweep = speedup.speedup_vs_pool_size(cpu_task, 1000, [1, 2], n_tasks=2, repeats=2)
    assert len(sweep.sequential.samples) == 2
    assert sorted(sweep.per_size) == [1, 2] and all(len(s.samples) == 2 for s in sweep.per_size.values())
    assert sorted(sweep.startup) == [1, 2] and all(t > 0 for t in sweep.startup.values())
    speedups = sweep.speedups()
    assert sorted(speedups) == [1, 2] and all(len(s.samples) == 2 for s in speedups.values())
    # every task timed where it ran: 2 rounds x 2 tasks, here and in each pool
    assert len(sweep.task_here.samples) == 4
    assert sorted(sweep.task_in_pool) == [1, 2]
    assert all(len(s.samples) == 4 for s in sweep.task_in_pool.values())


def test_paces_compare_a_task_in_the_workers_with_one_here():
    # five times the work in a worker: about five times the processor time, even with
    # more workers than cores (waiting for a core uses none)
    sweep = speedup.speedup_vs_pool_size(more_work_in_a_child, os.getpid(), [1, 4],
                                         n_tasks=4, repeats=3)
    assert len(sweep.task_here.samples) == 12
    paces = sweep.paces()
    for size in (1, 4):
        assert len(paces[size].samples) == 3
        assert 2.5 < paces[size].median < 10, (paces[size], sweep.task_here)


def test_no_round_beats_its_ceiling():
    # real pools on this machine: each round's speedup is at most the speedup its
    # workers' processor time allows (spread over min(size, cores) cores)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    sweep = speedup.speedup_vs_pool_size(cpu_task, 200_000, [1, 2, 4], n_tasks=4, repeats=2)
    speedups, ceilings = sweep.speedups(), sweep.ceilings(cores)
    for size in (1, 2, 4):
        for got, ceiling in zip(speedups[size].samples, ceilings[size].samples, strict=True):
            assert got <= ceiling * 1.001, (size, speedups[size], ceilings[size])


def test_speedup_vs_pool_size_runs_the_worker_it_is_given(tmp_path):
    # sequential, then pools of 1 and 2: 3 runs x 2 repeats x 3 tasks of record_call(path)
    path = tmp_path / "calls.txt"
    speedup.speedup_vs_pool_size(record_call, str(path), [1, 2], n_tasks=3, repeats=2)
    assert path.read_text(encoding="utf-8").count("ran") == 18


def test_wait_for_workers_sees_every_worker():
    with context().Pool(3) as p:
        assert pool_bench.wait_for_workers(p, 3) == 3
        p.close()
        p.join()


@pytest.mark.start_method_independent
def test_speedups_pair_the_samples_of_each_round():
    sweep = speedup.Sweep(Stats((2.0, 6.0)), {1: Stats((2.0, 6.0)), 2: Stats((1.0, 4.0))}, {})
    assert sweep.speedups() == {1: Stats((1.0, 1.0)), 2: Stats((2.0, 1.5))}


@pytest.mark.start_method_independent
def test_paces_and_ceilings_are_taken_round_by_round():
    # round 1: 2 tasks used 1.0 s here and 2.5 s in the pool's workers; round 2: as fast
    sweep = speedup.Sweep(Stats((1.0, 1.0)), {2: Stats((0.8, 0.5))}, {},
                          Stats((0.5, 0.5, 0.5, 0.5)), {2: Stats((1.5, 1.0, 0.5, 0.5))})
    assert sweep.paces() == {2: Stats((2.5, 1.0))}
    assert sweep.ceilings(cores=2) == {2: Stats((0.8, 2.0))}
    assert sweep.ceilings(cores=1) == {2: Stats((0.4, 1.0))}


@pytest.mark.start_method_independent
def test_paces_and_ceilings_are_nan_for_tasks_that_use_no_processor_time():
    sweep = speedup.Sweep(Stats((1.0,)), {2: Stats((0.5,))}, {}, Stats((0.0, 0.0)), {2: Stats((0.0, 0.0))})
    assert math.isnan(sweep.paces()[2].median)
    assert math.isnan(sweep.ceilings(2)[2].median)


@pytest.mark.start_method_independent
def test_best_size_is_the_smallest_within_the_margin():
    def s(x):
        return Stats((x,))

    assert speedup.best_size({1: s(1.0), 2: s(1.9), 4: s(1.95)}) == 2
    assert speedup.best_size({1: s(1.0), 2: s(1.5), 4: s(1.95)}) == 4
    assert speedup.best_size({1: s(1.0), 2: s(1.5), 4: s(1.95)}, margin=0.3) == 2


@pytest.mark.start_method_independent
def test_load_report_warns_when_busy(monkeypatch):
    assert speedup.load_report(0.2, 2).endswith("quiet enough to measure")
    assert speedup.load_report(1.5, 2).startswith("WARNING: the machine is busy")
    assert "not reported" in speedup.load_report(None, 2)
    load, cores = speedup.machine_load()
    assert cores >= 1 and (load is None or load >= 0)
    monkeypatch.delattr("os.getloadavg", raising=False)
    assert speedup.machine_load()[0] is None


def test_apply_loop_and_apply_async_give_the_same_results(pool):
    assert pool_bench.apply_loop(pool, 5) == pool_bench.apply_async_all(pool, 5) == [1, 2, 3, 4, 5]
    timings = pool_bench.apply_vs_apply_async(pool, [1, 4], repeats=2)
    assert list(timings) == ["apply in a loop", "apply_async, then get"]
    assert all(len(v) == 2 for v in timings.values())


@pytest.mark.start_method_independent
def test_name_lanes_numbers_workers_by_first_start():
    results = [(50, Span("50", "a", 2.0, 3.0)), (7, Span("7", "b", 1.0, 2.0)), (50, Span("50", "c", 3.0, 4.0))]
    lanes = [s.lane for s in pool_bench.name_lanes(results)]
    assert lanes == ["worker 2", "worker 1", "worker 2"]


def test_apply_runs_tasks_one_after_another(pool):
    spans = pool_bench.spans_apply(pool, 4, 0.01)
    assert [s.label for s in spans] == [f"task {i}" for i in range(4)]
    for earlier, later in pairwise(spans):
        assert earlier.end <= later.start


def test_apply_async_spans_come_back_in_submission_order(pool):
    spans = pool_bench.spans_apply_async(pool, 4, 0.01)
    assert [s.label for s in spans] == [f"task {i}" for i in range(4)]
    assert {s.lane for s in spans} <= {"worker 1", "worker 2"}


def test_map_runs_each_chunk_on_one_worker_in_order(pool):
    spans = pool_bench.spans_map(pool, [0.0] * 12, chunksize=4)
    assert [s.label for s in spans] == [f"chunk {i // 4}" for i in range(12)]
    for c in range(3):
        chunk = spans[4 * c: 4 * c + 4]
        assert len({s.lane for s in chunk}) == 1
        for earlier, later in pairwise(chunk):
            assert earlier.end <= later.start


def test_map_default_chunks_are_labelled_with_the_size_map_picks(pool):
    spans = pool_bench.spans_map(pool, [0.0] * 16)
    size = pool_bench.default_chunksize(16, 2)
    assert [s.label for s in spans] == [f"chunk {i // size}" for i in range(16)]


@pytest.mark.start_method_independent
def test_messages_and_idle_time():
    assert pool_bench.messages_sent(16, 1) == 16
    assert pool_bench.messages_sent(16, 5) == 4
    spans = [Span("worker 1", "a", 0.0, 1.0), Span("worker 2", "b", 0.0, 3.0), Span("worker 1", "c", 1.0, 2.0)]
    assert pool_bench.idle_at_end(spans) == {"worker 1": 1.0, "worker 2": 0.0}


def test_fetch_comparison_measures_four_ways(pool):
    with DelayServer(delay=0) as server:
        urls = [server.url(f"/{i}") for i in range(3)]
        result = pool_bench.fetch_comparison(pool, fetch, urls, threads=3, repeats=2)
        # 4 ways x 2 repeats x 3 urls
        assert server.requests == 24
    assert list(result) == ["sequential", "Pool.apply loop", "Pool.apply_async", "3 threads"]
    assert all(len(s.samples) == 2 for s in result.values())


