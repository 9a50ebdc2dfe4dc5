"""Homework 2's checked account, served by the checker itself.

The account the student's code receives (balance, lock, log) lives in the checker's
own process: a ``multiprocessing`` manager server running in threads of the checker
(:func:`serve_bank`), whose every request is loaded as plain data
(:mod:`hwcheck.plaindata`): a student's process can call the account's methods, and
nothing else. Each connection is one client; on Linux the kernel tells the server
which process is at its other end (``SO_PEERCRED``), so the checker knows which of
the student's processes made each change, and when, without asking any of them.

The lock knows which client holds it, the balance flags every write not made by
the lock's holder (or computed from a value read before locking), and the log
flags appends outside the lock. :meth:`Bank.report` is read in the checker's memory.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.managers import (
    AcquirerProxy,
    BaseManager,
    ListProxy,
    Server,
    Token,
    ValueProxy,
)

from hwcheck import plaindata

CLIENT = threading.local()  # in a server thread: the connection's serial number and peer pid


class _Ledger:
    """Server-side state shared by the checked lock, balance and log."""

    def __init__(self, opening: int):
        self.balance = opening
        self.owner = None  # ident of the manager server thread holding the lock
        self.generation = 0  # bumped at every acquire
        self.last_read: dict[int, int] = {}
        self.violations: dict[str, int] = {}
        self.examples: dict[str, str] = {}
        self.writers: dict = {}  # pid (or connection) -> [first change, last change]

    def flag(self, kind: str, example: str) -> None:
        self.violations[kind] = self.violations.get(kind, 0) + 1
        self.examples.setdefault(kind, example)

    def wrote(self) -> None:
        key = getattr(CLIENT, "pid", None) or ("connection", getattr(CLIENT, "serial", 0))
        now = time.monotonic()
        self.writers.setdefault(key, [now, now])[1] = now


class CheckedLock:
    """A lock that knows which client holds it: the server serves each client
    connection in its own thread, so the server thread's ident names the client."""

    def __init__(self, ledger: _Ledger):
        self._lock = threading.Lock()
        self._ledger = ledger

    def acquire(self, blocking=True, timeout=-1):
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._ledger.owner = threading.get_ident()
            self._ledger.generation += 1
        return got

    def release(self):
        self._ledger.owner = None
        self._lock.release()


class CheckedBalance:
    """The balance (a manager Value look-alike). Flags every write not made by
    the lock's holder, or whose value was read before the lock was taken."""

    def __init__(self, ledger: _Ledger):
        self._ledger = ledger

    def get(self):
        led = self._ledger
        me = threading.get_ident()
        if led.owner == me:
            led.last_read[me] = led.generation
        else:
            led.last_read.pop(me, None)
        return led.balance

    def set(self, value):
        led = self._ledger
        me = threading.get_ident()
        led.wrote()
        if led.owner != me:
            led.flag("unlocked write", f"balance set to {value!r} without holding the lock")
        elif led.last_read.get(me) != led.generation:
            led.flag("stale write", f"balance set to {value!r} from a value read before locking")
        if isinstance(value, (int, float)) and value < 0:
            led.flag("negative", f"balance set to {value!r}")
        led.balance = value


class CheckedLog(list):
    """The transaction log; appending without holding the lock is flagged."""

    def __init__(self, ledger: _Ledger):
        super().__init__()
        self._ledger = ledger

    def _check(self, what):
        self._ledger.wrote()
        if self._ledger.owner != threading.get_ident():
            self._ledger.flag("unlocked log", f"log {what} without holding the lock")

    def append(self, item):
        self._check("append")
        super().append(item)

    def extend(self, items):
        self._check("extend")
        super().extend(items)

    def insert(self, i, item):
        self._check("insert")
        super().insert(i, item)

    def snapshot(self):
        return list(self)


class Bank:
    def __init__(self, opening: int):
        self._ledger = _Ledger(opening)
        self._lock = CheckedLock(self._ledger)
        self._balance = CheckedBalance(self._ledger)
        self._log = CheckedLog(self._ledger)

    def lock(self):
        return self._lock

    def balance(self):
        return self._balance

    def log(self):
        return self._log

    def report(self):
        led = self._ledger
        return {"violations": dict(led.violations), "examples": dict(led.examples),
                "balance": led.balance, "log": list(self._log)}

    def writers(self) -> dict:
        """Who changed the balance or the log: pid (or connection) -> (first, last) time."""
        return {k: tuple(v) for k, v in self._ledger.writers.items()}


class LogProxy(ListProxy):
    _exposed_ = ListProxy._exposed_ + ("snapshot",)


class CheckedManager(BaseManager):
    pass


CheckedManager.register("Bank", Bank, method_to_typeid={
    "lock": "CheckedLock", "balance": "CheckedBalance", "log": "CheckedLog"})
CheckedManager.register("CheckedLock", proxytype=AcquirerProxy, create_method=False)
CheckedManager.register("CheckedBalance", proxytype=ValueProxy, create_method=False)
CheckedManager.register("CheckedLog", proxytype=LogProxy, create_method=False)
PROXIES = {"lock": ("CheckedLock", AcquirerProxy), "balance": ("CheckedBalance", ValueProxy),
           "log": ("CheckedLog", LogProxy)}
_serials = itertools.count(1)


def peer_pid(conn) -> int | None:
    """The pid at the other end of a Unix socket connection (Linux), else None."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[0] or None
    except (OSError, ValueError):
        return None


def _recv_plain(conn):
    return plaindata.loads(conn.recv_bytes(plaindata.MAX_MESSAGE))


class PlainServer(Server):
    """A manager server whose requests are loaded as plain data, and which notes
    each connection's serial number and peer pid for the ledger."""

    def handle_request(self, conn):
        conn.recv = functools.partial(_recv_plain, conn)
        CLIENT.serial, CLIENT.pid = next(_serials), peer_pid(conn)
        super().handle_request(conn)


@dataclass
class ServedBank:
    server: PlainServer
    bank: Bank
    account: dict  # what a driver needs to build the account's proxies (plain data)
    folder: str | None

    def close(self) -> None:
        self.server.stop_event.set()
        try:
            self.server.listener.close()
        except OSError:
            pass
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def serve_bank(opening: int) -> ServedBank:
    """A checked account served from threads of this process (the checker)."""
    folder = address = None
    if sys.platform != "win32":
        # a folder the student's uid can pass through, a socket it can connect to
        folder = tempfile.mkdtemp(prefix="hwcheck-bank-")
        os.chmod(folder, 0o711)
        address = os.path.join(folder, "bank")
    authkey = os.urandom(32)
    server = PlainServer(CheckedManager._registry, address, authkey, "pickle")
    if folder:
        os.chmod(address, 0o666)
    server.stop_event = threading.Event()
    threading.Thread(target=server.accepter, daemon=True, name="bank-server").start()
    ident, _ = server.create(None, "Bank", opening)
    bank = server.id_to_obj[ident][0]
    account = {"address": server.address, "authkey": authkey}
    for name, (typeid, _) in PROXIES.items():
        sub, exposed = server.create(None, typeid, getattr(bank, name)())
        account[name] = (typeid, sub, list(exposed))
    return ServedBank(server, bank, account, folder)


def account_proxies(account: dict) -> dict:
    """In a driver: the account's balance, lock and log, as proxies of the checker's bank."""
    out = {}
    for name, (_, proxytype) in PROXIES.items():
        typeid, ident, exposed = account[name]
        out[name] = proxytype(Token(typeid, account["address"], ident), "pickle",
                              authkey=account["authkey"], exposed=tuple(exposed))
    return out
