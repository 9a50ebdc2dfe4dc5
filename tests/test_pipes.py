"""helpers.pipes: the Pipe demos, measurements and exercise checks of lecture 02,
under the start method chosen by MP_START_METHOD (the fork-only hang test uses fork
on purpose). The workers the lecture writes with %%writefile have test copies in
tests/pipe_test_workers.py."""

import multiprocessing

import pipe_test_workers as workers
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
    p = ctx.Process(target=workers.echo_upper, args=(theirs,))
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
    p = ctx.Process(target=workers.read_until_eof, args=args)
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


def _accounted_for(r):
    assert r.tried == 20
    assert r.intact + r.garbled + r.not_received == r.tried
    assert 0 <= r.intact <= r.tried and 0 <= r.garbled and r.not_received >= 0
    assert r.reader_stop in pipes._READER_STOPS
    assert all(0 <= done <= r.n_each for done in r.sends_done)
    assert r.details().startswith(pipes.HOW[r.how])


@pytest.mark.parametrize("how", [pipes.QUEUE, pipes.PIPE_EACH])
def test_a_queue_or_a_pipe_each_keeps_two_senders_messages_intact(how):
    r = pipes.two_senders(how, size=50_000, n_each=10)
    _accounted_for(r)
    assert (r.intact, r.garbled, r.reader_stop, r.sends_done) == (20, 0, 0, (10, 10))


def test_two_senders_on_one_end_garble_the_stream_and_every_message_is_accounted_for():
    r = pipes.two_senders(pipes.SHARED_END, size=200_000, n_each=10)
    _accounted_for(r)
    # the reader waits until both senders are sending, so the race shows every time
    assert not r.all_intact
    assert r.reader_stop in (0, 1)  # every message read, or the message boundaries lost
    if r.garbled:
        ones, twos, other = r.first_garbled
        assert ones + twos + other > 0
    table = pipes.accounting_table([r])
    assert "not received" in table and pipes.HOW[pipes.SHARED_END] in table


@pytest.mark.start_method_independent
def test_two_senders_rejects_unknown_kind():
    with pytest.raises(ValueError):
        pipes.two_senders("socket")


def test_square_server_check_accepts_a_right_answer_and_explains_the_starter():
    assert pipes.check_square_server(workers.square_server).startswith("Right:")
    assert pipes.check_square_server(workers.square_server_starter).startswith("No reply came back")


def test_sum_until_eof_check_accepts_a_right_answer_and_explains_the_missing_close():
    assert pipes.check_sum_until_eof(workers.sum_until_eof).startswith("Right:")
    msg = pipes.check_sum_until_eof(workers.sum_until_eof_keeps_send_end, patience=1)
    assert msg.startswith("No total after 1 s"), msg
