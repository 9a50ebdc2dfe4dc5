"""Homework 3's behaviour checks of a running server (the upper-casing TCP server),
which :mod:`hwcheck.hw3` combines into the homework's questions (the checks of
``respond()`` alone, no server, are in :mod:`hwcheck.respondcheck`).

Each check starts the server under test with :func:`running_server`
(:mod:`hwcheck.tcpserver_harness`: a child process, stopped within a bounded time)
and talks to it with :class:`LineClient` (:mod:`hwcheck.tcpclient`: every read has
a deadline); a misbehaving server fails with :class:`ServerError`, in words for
students. Every wait is bounded. ``ctx`` (every check): the multiprocessing context
the server is started with (default: the course's). Question 2's framing check is
:mod:`hwcheck.framingcheck` (re-exported here); what the server is, seen from outside
(where it listens, which processes serve), :mod:`hwcheck.serverfacts`.

The server API these checks expect (see ``source/hw3/hw3.ipynb``)::

    respond(line: bytes) -> bytes                              # one answer line
    handle_client(conn, stop, idle_timeout)                    # one connection, line by line
    serve_one(address, stop, ready, idle_timeout=5.0)          # one process, one client at a time
    serve(address, workers, stop, ready, idle_timeout=5.0)     # a pool; blocks until stop is set
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import ExitStack
from typing import Callable

from hwcheck.framingcheck import check_framing, sample_lines
from hwcheck.serverfacts import check_listens_only_on_host, check_pool_serves, pool_processes
from hwcheck.tcpclient import (
    LineClient,
    ServerError,
    answer_timeout,
    expect_answer,
    short_repr,
)
from hwcheck.tcpserver_harness import (
    RunningServer,
    connection_owners,
    explained,
    running_server,
    wait_workers_settled,
)

# --------------------------------------------------------------------------- the checks
# Each check tests one property and drives the server only with what earlier
# questions already required: the concurrency and bad-client checks send each line
# whole, in one send, and wait for its answer, so a server with wrong framing still
# passes them; only check_shutdown (question 5) reports a server that does not stop
# cleanly: every other check stops it quietly, by force if need be.


def check_line_at_a_time(serve_one: Callable, clients: int = 2, lines: int = 4,
                         seed: int = 0, ctx=None) -> None:
    """A one-process server: ``clients`` clients one after the other, each sending
    ``lines`` short lines one at a time (each line whole, in one send, and its answer
    awaited before the next); then that it listens only on the host it was given.
    Stopping cleanly is not checked here."""
    texts = (["hello", "abc汉字ß", "Several words, punctuation: ok!", ""]
             + sample_lines(max(0, lines - 4), seed))[:lines]
    with running_server(serve_one, workers=None, check_stop=False, ctx=ctx) as server, \
            explained(server):
        for i in range(clients):
            who = f"client {i + 1} of {clients} (one after the other): "
            try:
                try:
                    client = LineClient(server.address)
                except OSError as exc:
                    raise ServerError(f"{who}could not connect: {exc!r}") from None
                with client:
                    for text in texts:
                        expect_answer(client, text, who)
            except ServerError as exc:
                if i == 0:
                    raise
                raise ServerError(
                    f"{exc}\nThe first client was served, so the server does not go back to "
                    "accept() after a client leaves: serve_one must loop, one client after "
                    "the other, until stop is set (and handle_client must return when "
                    "recv() returns b'')."
                ) from None
        check_listens_only_on_host(server, "serve_one")


def check_concurrent(serve: Callable, workers: int = 3, rounds: int = 1, ctx=None) -> None:
    """``workers`` clients connected at once, each kept open: all must be answered,
    each connection held by a process of the pool that was running before the clients
    connected (not the server's main process, not a process started per client; a
    worker may hold several). Then: it listens only on the host it was given.
    Each line is sent whole; stopping cleanly is not checked here."""
    io_timeout = answer_timeout()
    # idle_timeout=60: a server that serves one client at a time must not get to the
    # next client merely because it dropped the first one as idle.
    with running_server(serve, workers, idle_timeout=60.0, check_stop=False, ctx=ctx) as server, \
            explained(server), ExitStack() as stack:
        before = pool_processes(server, workers)
        clients = [stack.enter_context(LineClient(server.address)) for _ in range(workers)]
        for r in range(rounds):
            for i, client in enumerate(clients):
                client.send_line(f"client {i} says hi, round {r}")
            answered, deadline = 0, time.monotonic() + io_timeout
            for i, client in enumerate(clients):
                try:
                    got = client.read_line(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    continue
                expected = f"CLIENT {i} SAYS HI, ROUND {r}".encode()
                if got != expected:
                    raise ServerError(f"client {i + 1} of {workers} (all connected at once) "
                                      f"expected {short_repr(expected)}, got {short_repr(got)}")
                answered += 1
            if answered < workers:
                raise ServerError(_too_few_at_once(answered, workers, io_timeout))
        check_pool_serves(server, [connection_owners(server, c) for c in clients], before)
        check_listens_only_on_host(server, "serve")


def _too_few_at_once(answered: int, workers: int, waited: float) -> str:
    """What check_concurrent saw when not every client was answered, and a likely cause
    only where the count supports it."""
    saw = (f"with a pool of {workers} workers, only {answered} of {workers} clients connected "
           f"at the same time were answered within {waited:.0f} s")
    if answered == 0:
        return f"{saw}: no client got an answer while the others were connected"
    if answered == 1:
        return (f"{saw}: the server seems to serve one client at a time (does it wait for a "
                "client to finish before serving the next, e.g. pool.apply() instead of "
                "apply_async()? do all the workers run an accept loop?)")
    return (f"{saw}: the server serves at most {answered} clients at a time, fewer than its "
            f"{workers} workers (does the pool have `workers` processes, each serving? "
            f"ctx.Pool() with no size has one per core: {os.cpu_count()} here)")


def check_worker_reuse(serve: Callable, workers: int = 4, clients: int = 8,
                       lines: int = 10, ctx=None) -> None:
    """More clients than workers, all starting at once, each sending ``lines`` lines
    (whole, one at a time) and leaving: every one is answered (a worker goes back to
    accepting after a client leaves), and at most ``workers`` processes served them
    (a pool, not a process per client)."""
    io_timeout = answer_timeout()
    # each waiting client may wait for every client before it in its worker's queue
    timeout = io_timeout * (1 + clients // workers)
    errors: list[str] = []
    owners: list[int] = []

    def one_client(i: int, server: RunningServer) -> None:
        try:
            with LineClient(server.address, timeout=timeout) as client:
                expect_answer(client, f"client {i} line 0", "")
                owners.extend(connection_owners(server, client))
                for k in range(1, lines):
                    expect_answer(client, f"client {i} line {k}", "")
        except (ServerError, OSError) as exc:
            errors.append(f"client {i + 1}: {exc}")

    with running_server(serve, workers, idle_timeout=5.0, check_stop=False, ctx=ctx) as server, \
            explained(server):
        threads = [threading.Thread(target=one_client, args=(i, server), daemon=True)
                   for i in range(clients)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout * 2
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            errors.append(f"clients still waiting after {timeout * 2:.0f} s")
        if errors:
            raise ServerError(
                f"{clients} clients for a pool of {workers} workers, each sending {lines} "
                f"lines and leaving: {len(errors)} failed; first: {errors[0]} (does each worker "
                "go back to accept() after its client leaves?)"
            )
        served_by = set(owners) - {server.process.pid}
        if len(served_by) > workers:
            raise ServerError(
                f"{clients} clients of a pool of {workers} workers were served by "
                f"{len(served_by)} different processes: each connection must be served by one "
                "of the pool's workers (not by a new process per client)"
            )


def check_bad_clients(serve: Callable, workers: int = 2, rude: int = 3,
                      idle_timeout: float = 1.0, invalid=(b"caf\xc3\x28 \xff",),
                      ctx=None) -> None:
    """One server: invalid UTF-8 gets an ERROR line and the connection stays usable;
    clients that disconnect mid-line or reset the connection do not stop it; as many
    silent clients as workers are closed after ``idle_timeout`` seconds so a new client
    is still answered. Each line is sent whole; stopping cleanly is not checked here
    (check_shutdown is: a server that does not stop loses that question only)."""
    io_timeout = answer_timeout()
    with running_server(serve, workers, idle_timeout=idle_timeout, check_stop=False,
                        ctx=ctx) as server, \
            explained(server):
        with LineClient(server.address) as client:
            for bad in invalid:
                client.send(bad + b"\n")
                try:
                    got = client.read_line()
                except TimeoutError:
                    raise ServerError(
                        f"no answer to a line of invalid UTF-8 ({short_repr(bad)}) within "
                        f"{io_timeout:.0f} s"
                    ) from None
                if got is None or not got.startswith(b"ERROR"):
                    raise ServerError(
                        f"a line of invalid UTF-8 ({short_repr(bad)}) must be answered with a line "
                        f"starting with b'ERROR'; got {short_repr(got)}"
                        + (" (did decoding raise UnicodeDecodeError in the worker?)"
                           if got is None else "")
                    )
            expect_answer(client, "still here", "after an invalid line, the same connection: ")
        for _ in range(rude):
            with LineClient(server.address) as rude_client:
                rude_client.send(b"half a li")  # then disconnect mid-line
        for _ in range(rude):
            rude_client = LineClient(server.address)
            rude_client.send(b"reset me")
            rude_client.reset()  # RST instead of FIN
        for i in range(workers + 1):
            with LineClient(server.address) as client:
                expect_answer(client, f"after rude client {i}",
                              f"after {2 * rude} clients that disconnected mid-line: ")
        with ExitStack() as stack:
            for _ in range(workers):
                stack.enter_context(LineClient(server.address))
            time.sleep(0.2)
            # a server serving one client at a time gets here too, one idle_timeout per client
            with LineClient(server.address,
                            timeout=(workers + 1) * idle_timeout + io_timeout) as client:
                expect_answer(
                    client, "anyone there?",
                    f"{workers} clients connected and said nothing (idle_timeout="
                    f"{idle_timeout} s), then a new client: ",
                    )


def check_shutdown(serve: Callable, workers: int = 2, clients: int = 1, ctx=None) -> None:
    """Setting stop while ``clients`` clients are connected and idle (the first one
    answered once, the last one in the middle of a line): the server closes those
    connections, returns, and leaves no process and no listening socket behind.
    With fewer clients than ``workers``, a worker is still waiting for a client when
    stop is set, so a blocking accept() is caught as well as a blocking recv() (with
    a client for every worker, each one would be woken by its own connection).
    Only the first client needs an answer, so a server that serves one client at a
    time is not failed here for that."""
    socks: list[LineClient] = []
    try:
        # idle_timeout=60: the server must close the idle connections itself on stop,
        # well within the runner's STOP_TIMEOUT, instead of waiting for the clients.
        with running_server(serve, workers, idle_timeout=60.0, ctx=ctx) as server, \
                explained(server):
            socks.append(LineClient(server.address))
            expect_answer(socks[0], "before stop", "before stop: ")
            wait_workers_settled(server, workers)
            socks += [LineClient(server.address) for _ in range(clients - 1)]
            if clients > 1:
                socks[-1].send(b"half a line, then stop")
                deadline = time.monotonic() + 2.0  # let a pool's workers take them, if it will
                while time.monotonic() < deadline and not all(
                        connection_owners(server, c) for c in socks[1:]):
                    time.sleep(0.1)
        # the server has stopped (and was checked) while the clients stayed connected;
        # the first one had its answer and sent nothing since
        socks[0].sock.settimeout(1.0)
        try:
            tail = socks[0].sock.recv(1)
        except OSError:
            tail = b""
        if tail:
            raise ServerError(f"after stop, the server still sent {tail!r} on an idle connection")
    finally:
        for client in socks:
            client.close()


__all__ = [
    "ServerError",
    "check_bad_clients",
    "check_concurrent",
    "check_framing",
    "check_line_at_a_time",
    "check_shutdown",
    "check_worker_reuse",
    "running_server",
]
