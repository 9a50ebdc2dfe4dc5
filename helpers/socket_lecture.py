"""Measuring lecture 06's servers (sockets and a pool server): start a server in
its own process, drive it with clients that run in threads of the calling
process, and turn every connection into timestamped spans.

The servers themselves are the code being taught: the notebook writes them with
``%%writefile`` and passes them in. A server is any importable function

    serve(address, stop, ready, **kwargs)

that listens on ``address`` ((host, port); port 0 lets the system choose), puts
the (host, port) it bound on the ``ready`` queue once clients can connect, and
returns soon after the ``stop`` event is set, having closed every socket and
ended every process it started.

Every wait here has a timeout; everything binds and connects on 127.0.0.1 only.
Nothing here asserts a speed: the notebook prints what the run measured.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import psutil

from courselib.procs import get_or_none, kill_all, max_concurrency, still_running
from helpers.timing import Span, Stats, now

HOST = "127.0.0.1"
START_TIMEOUT = 60.0  # spawn on a busy 2-core machine: a server with a pool may take seconds
STOP_TIMEOUT = 10.0  # from stop.set() to the server process having exited
IO_TIMEOUT = 10.0  # one answer to one client

WAITING = "waiting for its first answer"
SERVED = "being served"


class ServerTrouble(RuntimeError):
    """The server did not start, or did not stop by itself; the message says which."""


@dataclass
class Server:
    """A server running in its own process (see :func:`running`)."""

    address: tuple[str, int]
    process: object  # a multiprocessing Process
    stop: object  # the multiprocessing Event that asks it to stop
    ready_after: float  # seconds from starting its process to its address on ``ready``


@contextmanager
def running(ctx, serve: Callable, **kwargs) -> Iterator[Server]:
    """Run ``serve((HOST, 0), stop, ready, **kwargs)`` in a new process of ``ctx``.

    Yields a :class:`Server` once the server reported its address. On leaving the
    block it sets ``stop`` and waits up to ``STOP_TIMEOUT`` seconds; a server still
    running then is killed with everything it started, and :class:`ServerTrouble`
    is raised, so a server that ignores ``stop`` cannot outlive the cell.
    """
    stop, ready = ctx.Event(), ctx.Queue()
    process = ctx.Process(target=serve, args=((HOST, 0), stop, ready), kwargs=kwargs, name="server")
    started = now()
    process.start()
    try:
        address = _wait_for_address(process, ready)
        yield Server(address, process, stop, now() - started)
    finally:
        family = _family(process)  # before stop: a server that exits at once orphans them
        stop.set()
        _stop(process, family)
        ready.close()
        ready.join_thread()


def _wait_for_address(process, ready) -> tuple[str, int]:
    address = get_or_none(ready, time.monotonic() + START_TIMEOUT, process.is_alive, poll=0.1)
    if address is not None:
        host, port = address
        return (host, port)
    if not process.is_alive():
        raise ServerTrouble(
            f"the server process ended (exit code {process.exitcode}) before it put its "
            "address on `ready`: read the traceback above"
        )
    raise ServerTrouble(f"the server did not put its address on `ready` within {START_TIMEOUT:.0f} s")


def _family(process) -> list[psutil.Process]:
    """The processes ``process`` has started (and they started), as far as they still run."""
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        return []


def _stop(process, family: list[psutil.Process]) -> None:
    """Wait for the server ``process`` to end by itself, then check that ``family`` (its
    descendants, listed before it was asked to stop) ended too; kill what did not."""
    process.join(STOP_TIMEOUT)
    if process.is_alive():
        descendants = family + _family(process)
        process.kill()  # through multiprocessing: it reaps its own child (psutil would too)
        process.join(STOP_TIMEOUT)
        kill_all(descendants)
        raise ServerTrouble(
            f"the server was still running {STOP_TIMEOUT:.0f} s after stop was set: killed it "
            "and every process it started. Does every loop look at the stop event?"
        )
    # the server's own multiprocessing helpers (resource tracker, fork server) end
    # when they notice their parent is gone: give them a moment
    leftover = still_running(family, STOP_TIMEOUT / 2)
    if leftover:
        kill_all(leftover)
        raise ServerTrouble(f"the server returned but left {len(leftover)} process(es) running: killed them")


# --------------------------------------------------------------------------- clients


def session(address, lines: Sequence[str], think: float = 0.0, name: str = "client",
            timeout: float = IO_TIMEOUT) -> tuple[list[Span], list[str]]:
    """One well-behaved client: connect, then for each line send it, read the answer
    and wait ``think`` seconds; then close.

    Returns two spans on lane ``name`` (``WAITING``: from connecting until the first
    answer; ``SERVED``: from then until it closed) and the answers. Raises
    ``TimeoutError`` when an answer takes longer than ``timeout`` seconds and
    ``ConnectionError`` when the server closes before answering.
    """
    answers = []
    start = now()
    with socket.create_connection(address, timeout=timeout) as sock, sock.makefile("rb") as reader:
        first = None
        for line in lines:
            sock.sendall(line.encode("utf-8") + b"\n")
            answer = reader.readline()  # bounded: the socket has a timeout
            if not answer.endswith(b"\n"):
                raise ConnectionError(f"{name}: the server closed before answering {line!r}")
            first = first or now()
            answers.append(answer[:-1].decode("utf-8", errors="replace"))
            if think:
                time.sleep(think)
        # stamped before closing: the server cannot see the close, and serve the next
        # client, before this moment
        end = now()
    first = first or end
    return [Span(name, WAITING, start, first), Span(name, SERVED, first, end)], answers


def clients(address, n: int, lines: int = 2, think: float = 0.05, stagger: float = 0.0,
            timeout: float = IO_TIMEOUT) -> list[Span]:
    """``n`` clients at once, each in its own thread of this process: client ``i``
    starts ``i * stagger`` seconds after the first and runs :func:`session` with
    ``lines`` lines and ``think`` seconds after each answer. Returns every client's
    spans; raises the first client's error, if any (after all threads ended)."""
    results: list[list[Span]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    texts = [f"line {k}" for k in range(lines)]

    def one(i: int) -> None:
        try:
            if stagger:
                time.sleep(i * stagger)
            results[i] = session(address, texts, think, name=f"client {i + 1}", timeout=timeout)[0]
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    limit = now() + n * stagger + (lines + 2) * (timeout + think) + 5
    for t in threads:
        t.join(max(0.0, limit - now()))
    if any(t.is_alive() for t in threads):
        raise TimeoutError("a client thread did not finish in time")
    if errors:
        raise errors[0]
    return [span for spans in results for span in spans]


def wall(spans: Sequence[Span]) -> float:
    """Seconds from the first client's connect to the last client's close."""
    return max(s.end for s in spans) - min(s.start for s in spans)


def most_at_once(spans: Sequence[Span], label: str = SERVED) -> int:
    """The most spans with ``label`` in progress at the same moment."""
    return max_concurrency([s for s in spans if s.label == label])


def longest(spans: Sequence[Span], label: str = WAITING) -> float:
    """The longest span with ``label`` (e.g. the longest wait for a first answer)."""
    return max((s.duration for s in spans if s.label == label), default=0.0)


def latency(address, count: int = 20, timeout: float = IO_TIMEOUT) -> Stats:
    """``count`` connections one after another, each: connect, one line, its answer,
    close. Returns the time per connection (connect to answer)."""
    samples = []
    for _ in range(count):
        spans, _ = session(address, ["x"], name="latency", timeout=timeout)
        samples.append(spans[0].duration)
    return Stats(tuple(samples))


# --------------------------------------------------------------------------- comparisons


@dataclass
class Comparison:
    """What :func:`compare` measured, per server name."""

    counts: list[int]
    series: dict[str, list[Stats]]  # wall time of each round, one Stats per count
    ready: dict[str, float]  # seconds from starting the server process to the end of warm-up
    peak: dict[str, int]  # the most clients served at the same moment, over every round


def compare(ctx, servers: dict[str, Callable], counts: Sequence[int], repeats: int = 3,
            lines: int = 2, think: float = 0.05) -> Comparison:
    """For each server (name -> serve function, e.g. a ``functools.partial``), start it
    once, warm it up with ``max(counts)`` clients, then time ``repeats`` rounds of ``n``
    simultaneous clients for each ``n`` in ``counts``."""
    result = Comparison(list(counts), {}, {}, {})
    for name, serve in servers.items():
        with running(ctx, serve) as server:
            start = now() - server.ready_after
            clients(server.address, max(counts), lines=1, think=0.0)
            result.ready[name] = now() - start
            stats, peak = [], 0
            for n in counts:
                rounds = [clients(server.address, n, lines, think) for _ in range(repeats)]
                stats.append(Stats(tuple(wall(spans) for spans in rounds)))
                peak = max([peak] + [most_at_once(spans) for spans in rounds])
            result.series[name], result.peak[name] = stats, peak
    return result


def same_or_ratio(a: float, b: float, margin: float = 0.25) -> str:
    """'about the same as' when ``a`` and ``b`` differ by less than ``margin`` (a
    fraction of the smaller one), else 'N.Nx as long as'."""
    low = min(a, b)
    if low <= 0 or abs(a - b) <= margin * low:
        return "about the same as"
    return f"{a / b:.1f}x as long as"


def conclusion(result: Comparison, one_client: float, margin: float = 0.25) -> list[str]:
    """Plain-words reading of :func:`compare`'s result at the largest count.

    ``one_client`` is how long one client needs when it is served at once (its lines
    times its think time). Servers whose median is within ``margin`` of the fastest
    are called about the same as it."""
    n = result.counts[-1]
    medians = {name: stats[-1].median for name, stats in result.series.items()}
    fastest = min(medians, key=medians.get)
    out = [f"{n} clients at once, each needing {one_client:.2f} s when served at once "
           f"({n * one_client:.2f} s one after another):"]
    for name, t in sorted(medians.items(), key=lambda kv: kv[1]):
        rel = "the fastest" if name == fastest else f"{same_or_ratio(t, medians[fastest], margin)} the fastest"
        out.append(f"  {name}: {t:.2f} s, {rel}; at most {result.peak[name]} client(s) served at the same moment")
    return out
