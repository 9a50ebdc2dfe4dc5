"""helpers.shared_state: the shared-state demos and measurements of lecture 03,
under the start method chosen by MP_START_METHOD."""

import os

import pytest

from helpers import context, shared_state


def _shm():
    return (
        {n for n in os.listdir("/dev/shm") if n.startswith("psm_")}
        if os.path.isdir("/dev/shm")
        else set()
    )


@pytest.mark.parametrize("kind", shared_state.KINDS)
def test_ops_per_second_is_positive_and_leaves_nothing(kind):
    before = _shm()
    rate = shared_state.measure_ops_per_second(kind, 200)
    assert isinstance(rate, float) and rate > 0
    assert _shm() == before


@pytest.mark.start_method_independent
def test_ops_per_second_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        shared_state.measure_ops_per_second("redis", 10)
    with pytest.raises(ValueError):
        shared_state.measure_ops_per_second("value", 0)


def test_child_appends_to_its_own_copy():
    ctx = context()
    numbers = [1, 2, 3]
    result, report = ctx.Pipe(duplex=False)
    p = ctx.Process(target=shared_state.append_and_report, args=(numbers, 4, report))
    p.start()
    report.close()
    assert result.poll(30)
    assert result.recv() == [1, 2, 3, 4]
    p.join(30)
    result.close()
    assert numbers == [1, 2, 3]


def test_decrement_first_through_a_manager_proxy():
    ctx = context()
    with ctx.Manager() as m:
        num = m.list([1, 2, 3])
        p = ctx.Process(target=shared_state.decrement_first, args=(num,))
        p.start()
        p.join(30)
        assert list(num) == [0, 2, 3]


def test_manager_race_with_lock_loses_nothing():
    ctx = context()
    with ctx.Manager() as m:
        r = shared_state.manager_race(m, 3, 200, use_lock=True, ctx=ctx)
    assert r.expected == -600 and r.final == -600 and r.lost == 0
    assert r.seconds > 0


def test_manager_race_counts_lost_updates_consistently():
    ctx = context()
    with ctx.Manager() as m:
        alone = shared_state.manager_race(m, 1, 200, use_lock=False, ctx=ctx)
        crowd = shared_state.manager_race(m, 3, 200, use_lock=False, ctx=ctx)
    assert alone.lost == 0  # one process cannot race with itself
    # a lost update can undo any number of others, but never add a decrement
    assert -600 <= crowd.final <= -1
    assert crowd.lost == crowd.final + 600


def test_value_race_with_get_lock_is_exact():
    assert shared_state.value_race(2, 5000, use_lock=True) == 10_000


def test_value_race_without_lock_never_exceeds_the_true_count():
    assert 5000 <= shared_state.value_race(2, 5000, use_lock=False) <= 10_000


def test_move_money_alone_is_exact():
    ctx = context()
    with ctx.Manager() as m:
        account = m.dict({"balance": 100})
        start = ctx.Barrier(1)
        p = ctx.Process(target=shared_state.move_money, args=(account, -3, 10, start))
        p.start()
        p.join(30)
        assert account["balance"] == 70


def test_square_in_place_changes_the_parents_array():
    ctx = context()
    arr = ctx.Array("i", [1, 2, 3])
    p = ctx.Process(target=shared_state.square_in_place, args=(arr,))
    p.start()
    p.join(30)
    assert list(arr) == [1, 4, 9]
