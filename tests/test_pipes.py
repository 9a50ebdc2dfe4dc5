"""Lecture 02: the workers the notebook teaches (its ``%%writefile pipe_echo.py`` and
``pipe_eof.py`` cells), the measurements in helpers/pipes.py and the "two senders on
one end" demo in helpers/pipe_sharing.py, under the start method chosen by
MP_START_METHOD. What the notebook's run already shows (the workers answering, a
fork child that keeps its copy of the sending end never seeing EOF, the rates
measured) is not repeated here; the exercise checks are in tests/test_exercises.py."""

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import notebook_cells
import pytest

from helpers import context, pipe_sharing, pipes

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02-pipe.ipynb"
MODULES = ("pipe_echo", "pipe_eof")


@pytest.fixture
def nbw(tmp_path, monkeypatch):
    """The notebook's worker modules, written and imported the way the notebook does
    (spawn and forkserver children find them through sys.path, as they find the
    notebook's)."""
    sources = notebook_cells.writefile_modules(NOTEBOOK, MODULES)
    with notebook_cells.importable_from(tmp_path, sources, monkeypatch):
        echo, eof = (importlib.import_module(name) for name in MODULES)
        yield SimpleNamespace(echo_upper=echo.echo_upper, read_until_eof=eof.read_until_eof,
                              pipe_echo=echo, path=tmp_path / "pipe_echo.py")


def _echo(ctx, echo, words=("ab", "cd")):
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=echo, args=(theirs,))
    p.start()
    theirs.close()
    replies = []
    for word in words:
        mine.send(word)
        assert mine.poll(30)
        replies.append(mine.recv())
    mine.send(None)
    p.join(30)
    mine.close()
    assert p.exitcode == 0
    return replies


def test_the_taught_workers_are_on_the_page_not_in_helpers(nbw):
    assert callable(nbw.echo_upper) and callable(nbw.read_until_eof)
    for module in (pipes, pipe_sharing):
        assert not hasattr(module, "echo_upper") and not hasattr(module, "read_until_eof")


def test_an_edit_to_the_written_module_reaches_the_child(nbw):
    """What the notebook's load cell promises: rewrite the file, reload, and a child
    (under any start method) runs the edited code."""
    edited = notebook_cells.edit_and_reload(nbw.pipe_echo, "text.upper()", "text[::-1]")
    assert _echo(context(), edited.echo_upper) == ["ba", "dc"]


@pytest.mark.start_method_independent
def test_pipe_throughput_rejects_nonsense():
    with pytest.raises(ValueError):
        pipes.measure_pipe_throughput(10, 0)
    with pytest.raises(ValueError):
        pipes.measure_pipe_throughput(-1, 10)


@pytest.mark.start_method_independent
def test_one_way_pipe_refuses_to_send_on_the_receive_end():
    r, w = context().Pipe(duplex=False)
    with pytest.raises(OSError):
        r.send("x")
    r.close()
    w.close()


@pytest.mark.start_method_independent
def test_is_intact():
    assert pipe_sharing.is_intact(b"\x01" * 5, 5)
    assert not pipe_sharing.is_intact(b"\x01" * 4, 5)
    assert not pipe_sharing.is_intact(b"\x01\x01\x02\x01\x01", 5)


def _accounted_for(r):
    assert r.tried == 20
    assert r.intact + r.garbled + r.not_received == r.tried
    assert 0 <= r.intact <= r.tried and 0 <= r.garbled and r.not_received >= 0
    assert r.reader_stop in pipe_sharing._READER_STOPS
    assert all(0 <= done <= r.n_each for done in r.sends_done)
    assert r.details().startswith(pipe_sharing.HOW[r.how])


@pytest.mark.parametrize("how", [pipe_sharing.QUEUE, pipe_sharing.PIPE_EACH])
def test_a_queue_or_a_pipe_each_keeps_two_senders_messages_intact(how):
    r = pipe_sharing.two_senders(how, size=50_000, n_each=10)
    _accounted_for(r)
    assert (r.intact, r.garbled, r.reader_stop, r.sends_done) == (20, 0, 0, (10, 10))


def test_two_senders_on_one_end_garble_the_stream_and_every_message_is_accounted_for():
    r = pipe_sharing.two_senders(pipe_sharing.SHARED_END, size=200_000, n_each=10)
    _accounted_for(r)
    # the reader waits until both senders are sending, so the race shows every time
    assert not r.all_intact
    assert r.reader_stop in (0, 1)  # every message read, or the message boundaries lost
    if r.garbled:
        ones, twos, other = r.first_garbled
        assert ones + twos + other > 0
    if r.reader_stop == 1 and sys.platform != "win32":
        # the reader drains the rest as plain bytes: the senders finish, and every byte
        # they wrote (a 4-byte length + the message, per send) came out of the pipe
        assert r.sends_done == (10, 10)
        assert sum(r.bytes_read) == 20 * (200_000 + 4)
        assert r.bytes_read[1] == 4
        assert "every byte written came out of the pipe" in r.details()
    table = pipe_sharing.accounting_table([r])
    assert "not received" in table and pipe_sharing.HOW[pipe_sharing.SHARED_END] in table


@pytest.mark.start_method_independent
def test_two_senders_rejects_unknown_kind():
    with pytest.raises(ValueError):
        pipe_sharing.two_senders("socket")


