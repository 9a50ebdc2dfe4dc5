"""helpers.pipes: the Pipe demos and measurements of lecture 02, under the
start method chosen by MP_START_METHOD (the fork-only hang test uses fork on purpose)."""

import multiprocessing

import pytest

from helpers import context, pipes


def test_pipe_throughput_is_a_positive_rate():
    rate = pipes.measure_pipe_throughput(1024, 50)
    assert isinstance(rate, float) and rate > 0


def test_one_way_pipe_throughput_is_a_positive_rate():
    rate = pipes.measure_pipe_throughput(1024, 50, duplex=False)
    assert isinstance(rate, float) and rate > 0


def test_queue_throughput_is_a_positive_rate():
    rate = pipes.measure_queue_throughput(1024, 50)
    assert isinstance(rate, float) and rate > 0


@pytest.mark.start_method_independent
@pytest.mark.parametrize("fn", [pipes.measure_pipe_throughput, pipes.measure_queue_throughput])
def test_throughput_rejects_nonsense(fn):
    with pytest.raises(ValueError):
        fn(10, 0)


def test_one_end_both_sends_and_receives():
    ctx = context()
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=pipes.echo_upper, args=(theirs,))
    p.start()
    theirs.close()
    replies = []
    for word in ("ab", "cd"):
        mine.send(word)
        assert mine.poll(30)
        replies.append(mine.recv())
    mine.send(None)
    p.join(30)
    mine.close()
    assert replies == ["AB", "CD"]
    assert p.exitcode == 0


@pytest.mark.start_method_independent
def test_one_way_pipe_refuses_to_send_on_the_receive_end():
    r, w = context().Pipe(duplex=False)
    with pytest.raises(OSError):
        r.send("x")
    r.close()
    w.close()


def _reader(ctx, close_inherited):
    recv_end, send_end = ctx.Pipe(duplex=False)
    result, report = ctx.Pipe(duplex=False)
    args = (recv_end, report, send_end) if close_inherited else (recv_end, report)
    p = ctx.Process(target=pipes.read_until_eof, args=args)
    p.start()
    recv_end.close()
    report.close()
    for i in range(7):
        send_end.send(i)
    send_end.close()
    return p, result


def test_reader_gets_eof_when_every_sending_copy_is_closed():
    p, result = _reader(context(), close_inherited=True)
    assert result.poll(30)
    assert result.recv() == 7
    p.join(30)
    result.close()
    assert p.exitcode == 0


@pytest.mark.start_method_independent  # fork on purpose, whatever MP_START_METHOD says
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_fork_child_keeping_its_inherited_copy_never_sees_eof():
    p, result = _reader(multiprocessing.get_context("fork"), close_inherited=False)
    p.join(1.0)
    try:
        assert p.is_alive(), "the child should still be blocked in recv()"
        assert not result.poll(0)
    finally:
        p.terminate()
        p.join(10)
        result.close()


@pytest.mark.start_method_independent
def test_is_intact():
    assert pipes.is_intact(b"\x01" * 5, 5)
    assert not pipes.is_intact(b"\x01" * 4, 5)
    assert not pipes.is_intact(b"\x01\x01\x02\x01\x01", 5)


def test_queue_keeps_two_senders_messages_intact():
    r = pipes.two_senders_one_end("queue", size=50_000, n_each=10)
    assert r == {"sent": 20, "intact": 20, "corrupted": 0, "reader_failed": False}


def test_two_senders_on_one_pipe_end_reports_consistent_counts():
    # Whether the stream gets garbled is a race, so only the bookkeeping is checked.
    r = pipes.two_senders_one_end("pipe", size=50_000, n_each=10)
    assert r["sent"] == 20
    assert 0 <= r["intact"] + r["corrupted"] <= 20
    if r["intact"] < 20:
        assert r["corrupted"] > 0 or r["reader_failed"]


@pytest.mark.start_method_independent
def test_two_senders_rejects_unknown_kind():
    with pytest.raises(ValueError):
        pipes.two_senders_one_end("socket")
