"""Homework 3's checks of what a running server is, seen from outside (psutil and a
probe connection), not of what it answers: where it listens, and whether the processes
holding its connections are the pool's workers, started before the clients came.
:mod:`hwcheck.tcpcheck` runs them inside its checks; each fails with
:class:`hwcheck.tcpclient.ServerError`, saying what it saw. Every wait is bounded.
"""

from __future__ import annotations

import socket
import time

import psutil

from courselib.procs import is_mp_helper
from hwcheck.limits import scaled
from hwcheck.tcpclient import ServerError
from hwcheck.tcpserver_harness import HOST, RunningServer

# On Linux all of 127.0.0.0/8 is loopback: a server bound to 127.0.0.1 refuses a
# connection to 127.0.0.2, one bound to every interface (0.0.0.0, ::) accepts it.
OTHER_LOCAL = "127.0.0.2"
ALL_INTERFACES = {"0.0.0.0", "::", ""}


def listening_hosts(server: RunningServer) -> set[str]:
    """The addresses the server's processes listen on at its port (as far as psutil may
    see them: an empty set when it may not)."""
    port = server.address[1]
    hosts = set()
    for proc in server.processes():
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    hosts.add(conn.laddr.ip)
        except psutil.Error:
            pass
    return hosts


def _accepts_on_other_local(port: int) -> bool:
    try:
        with socket.create_connection((OTHER_LOCAL, port), timeout=scaled(2.0)):
            return True
    except OSError:  # refused (bound to 127.0.0.1 only), or no such address here
        return False


def check_listens_only_on_host(server: RunningServer, name: str) -> None:
    """The server listens on the host it was given (127.0.0.1), not on every interface:
    psutil shows the listening address where it can, and a connection to another local
    address (127.0.0.2) must be refused. Run it last in a check: a probe that connects
    is one more (empty) client for the server."""
    hosts = listening_hosts(server)
    wide = sorted(hosts & ALL_INTERFACES)
    accepted = _accepts_on_other_local(server.address[1])
    if not wide and not accepted:
        return
    saw = []
    if wide:
        saw.append(f"it listens on {' and '.join(repr(h) for h in wide)}")
    if accepted:
        saw.append(f"it accepted a connection on {OTHER_LOCAL}, another address of this machine")
    raise ServerError(
        f"{name}() was given the address ({HOST!r}, 0) but {'; '.join(saw)}: it listens on "
        f"every interface, not only on the host it was given, so other machines could "
        f"connect too. Listen on `address` as it is (socket.create_server(address)), not on "
        f"('', port) or ('0.0.0.0', port)"
    )


def pool_processes(server: RunningServer, workers: int, limit: float = 5.0) -> set[int]:
    """The server's processes once its pool has started: wait (at most ``limit`` s,
    scaled) until at least ``workers`` processes run below the server, not counting
    multiprocessing's helpers (under forkserver the server's own fork server, which
    starts before the workers), and the set has not changed for 0.3 s; then every pid
    in its tree. A server that starts a process per client has none yet and waits the
    whole limit."""
    deadline = time.monotonic() + scaled(limit)
    seen: set[int] = set()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        procs = server.processes()
        now = {p.pid for p in procs}
        if now != seen:
            seen, stable_since = now, time.monotonic()
        elif (time.monotonic() - stable_since >= 0.3
              and sum(not is_mp_helper(p) for p in procs[1:]) >= workers):
            break
        time.sleep(0.05)
    return seen


def check_pool_serves(server: RunningServer, owners: list[list[int]],
                      before: set[int]) -> None:
    """Each connection (``owners``: the pids holding each client's connection, in the
    clients' order) is held by a process below the server that was running before the
    clients connected (``before``, from :func:`pool_processes`): a pool's worker, not
    the server's main process, nor a process started for that client."""
    main_pid = server.process.pid
    for i, pids in enumerate(owners):
        if not pids:
            raise ServerError(f"no process of the server holds client {i + 1}'s connection")
        if all(pid == main_pid for pid in pids):
            raise ServerError(
                f"client {i + 1}'s connection is held by the server's main process "
                f"(pid {main_pid}), not by a pool worker: each connection must be served "
                "by a worker process of the Pool"
            )
        new = [pid for pid in pids if pid != main_pid and pid not in before]
        if new:
            running = sorted(before - {main_pid})
            raise ServerError(
                f"client {i + 1}'s connection is held by pid {new[0]}, a process that was not "
                "running before the clients connected (the server's processes then: "
                f"{', '.join(map(str, running)) or 'none but the main one'}): each connection "
                "must be served by one of the Pool's workers, started once before the clients "
                "come, not by a new process per client"
            )


__all__ = ["check_listens_only_on_host", "check_pool_serves", "listening_hosts",
           "pool_processes"]
