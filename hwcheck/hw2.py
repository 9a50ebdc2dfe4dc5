"""Homework 2 (a bank account shared through a Manager) checks, run inside the
runner process (:mod:`hwcheck.runner`): a checked manager whose lock, balance and
log flag every unlocked or stale write, the clients' plans, the log replay and the
two tasks.

``CheckedManager`` and its proxies are pickled by reference into the client
processes: every side imports them from this module.
"""

from __future__ import annotations

import random
import threading
from multiprocessing.managers import AcquirerProxy, BaseManager, ListProxy, ValueProxy

from hwcheck.recording import State, end_problems, role


class _Ledger:
    """Server-side state shared by the checked lock, balance and log."""

    def __init__(self, opening: int):
        self.balance = opening
        self.owner = None  # ident of the manager server thread holding the lock
        self.generation = 0  # bumped at every acquire
        self.last_read: dict[int, int] = {}
        self.violations: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def flag(self, kind: str, example: str) -> None:
        self.violations[kind] = self.violations.get(kind, 0) + 1
        self.examples.setdefault(kind, example)


class CheckedLock:
    """A lock that knows which client holds it. The manager serves each client
    connection in its own server thread, so the server thread's ident names the client."""

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


class LogProxy(ListProxy):
    _exposed_ = ListProxy._exposed_ + ("snapshot",)


class CheckedManager(BaseManager):
    pass


CheckedManager.register("Bank", Bank, method_to_typeid={
    "lock": "CheckedLock", "balance": "CheckedBalance", "log": "CheckedLog"})
CheckedManager.register("CheckedLock", proxytype=AcquirerProxy, create_method=False)
CheckedManager.register("CheckedBalance", proxytype=ValueProxy, create_method=False)
CheckedManager.register("CheckedLog", proxytype=LogProxy, create_method=False)


def make_plans(clients: int, ops: int, seed: int = 1) -> list[list[tuple[str, int]]]:
    """Each client's operations: slightly more withdrawn than deposited, so the
    balance hovers near zero and many withdrawals must be refused."""
    rng = random.Random(seed)
    return [
        [("deposit", rng.randint(1, 40)) if rng.random() < 0.5 else ("withdraw", rng.randint(1, 50))
         for _ in range(ops)]
        for _ in range(clients)
    ]


VIOLATION_WORDS = {
    "unlocked write": "the balance was changed by a client that did not hold account['lock'] "
                      "(missing lock: two clients can read the same balance and one update is lost)",
    "stale write": "the balance was written inside the lock but computed from a value read before "
                   "the lock was taken (misplaced lock: read AND write inside one `with lock:`)",
    "unlocked log": "the log was appended outside the lock, so its order need not match the order "
                    "in which the balance changed",
    "negative": "the balance went below zero",
}


def replay_problems(log, opening, balance, plans) -> list[str]:
    """The log must tell the account's story: each entry's balance_after follows
    from the previous one, refusals are exactly the overdrafts, and every client's
    operations appear once, in order."""
    problems, bal = [], opening
    per_client: dict = {}
    for n, entry in enumerate(log):
        if not isinstance(entry, (tuple, list)) or len(entry) != 5:
            return [f"Log entry {n} is {entry!r}; expected (client_id, kind, amount, accepted, "
                    "balance_after)."]
        per_client.setdefault(entry[0], []).append((entry[1], entry[2]))
    for n, (_client, kind, amount, accepted, after) in enumerate(log):
        if kind == "deposit":
            if not accepted:
                problems.append(f"Log entry {n}: a deposit was refused; deposits are always accepted.")
                break
            bal += amount
        elif kind == "withdraw":
            if accepted and amount > bal:
                problems.append(f"Log entry {n}: withdrew {amount} from a balance of {bal} "
                                "(an overdraft must be refused).")
                break
            if not accepted and amount <= bal:
                problems.append(f"Log entry {n}: refused to withdraw {amount} from a balance of "
                                f"{bal}; only withdrawals larger than the balance are refused.")
                break
            if accepted:
                bal -= amount
        else:
            problems.append(f"Log entry {n}: kind {kind!r} is neither 'deposit' nor 'withdraw'.")
            break
        if after != bal:
            problems.append(f"Log entry {n} says the balance became {after}, but replaying the log "
                            f"gives {bal}.")
            break
    if not problems and bal != balance:
        problems.append(f"The final balance is {balance}, but opening balance + accepted deposits "
                        f"− accepted withdrawals in the log gives {bal}.")
    if plans is not None:
        expected = {i: list(map(tuple, p)) for i, p in enumerate(plans)}
        got = {k: v for k, v in per_client.items()}
        if got != expected:
            n_exp, n_got = sum(map(len, expected.values())), len(log)
            problems.append(
                f"The log should hold every client's operations exactly once and in that client's "
                f"order ({n_exp} entries, client_id = the client's index); it holds {n_got} "
                "entries that do not match."
            )
    return problems


def task_hw2_rules(state: State, opening=50, random_ops=0, seed=3):
    """deposit/withdraw in one process, on the student's own make_account: fixed
    cases (an exact-balance withdrawal is accepted), then ``random_ops`` random ones."""
    mod = state.module
    problems = []
    with state.ctx.Manager() as manager:
        if random_ops:
            account = mod.make_account(manager, opening)
            plan = make_plans(1, random_ops, seed)[0]
            for kind, amount in plan:
                getattr(mod, kind)(account, amount, 0)
            log = list(account["log"])
            state.facts.update(operations=random_ops, log_entries=len(log),
                               refused=sum(1 for e in log if len(e) == 5 and not e[3]))
            return replay_problems(log, opening, account["balance"].value, [plan])
        account = mod.make_account(manager, opening)
        steps = [("deposit", 30, True), ("withdraw", 100, False), ("withdraw", 80, True),
                 ("withdraw", 1, False), ("deposit", 5, True)]
        bal = opening
        for kind, amount, want in steps:
            got = getattr(mod, kind)(account, amount, 7)
            if want and kind == "withdraw":
                bal -= amount
            elif kind == "deposit":
                bal += amount
            now = account["balance"].value
            if got is not want:
                problems.append(f"{kind}(account, {amount}, 7) returned {got!r} with the balance at "
                                f"{now if got else bal}; expected {want} "
                                "(True when done, False when refused).")
                break
            if now != bal:
                problems.append(f"After {kind} of {amount} the balance is {now}, expected {bal}.")
                break
        log = list(account["log"])
        if not problems:
            expected = [(7, k, a, w) for k, a, w in steps]
            got = [tuple(e)[:4] if isinstance(e, (tuple, list)) else e for e in log]
            if got != expected:
                problems.append(f"The log should be {expected} (plus balance_after), it is {log}.")
            else:
                problems += replay_problems(log, opening, account["balance"].value, None)
    state.facts["log"] = log
    return problems


def task_hw2_bank(state: State, clients=8, ops=250, opening=100, seed=1, plain=False):
    """Many clients at once through the student's run_bank, on a checked account."""
    mod, ctx = state.module, state.ctx
    plans = make_plans(clients, ops, seed)
    state.timeout_hint = (
        "Likely mistake: a client waiting for a lock that is never released (use `with lock:`), "
        "or run_bank joining processes it never started."
    )
    if plain:  # the naive check the bench compares against: the student's own account
        with ctx.Manager() as manager:
            account = mod.make_account(manager, opening)
            state.stage = "inside your run_bank"
            mod.run_bank(ctx, account, plans)
            report = {"violations": {}, "balance": account["balance"].value,
                      "log": list(account["log"])}
        # what a naive test sees: does the final balance match the accepted totals?
        accepted = [e for e in report["log"] if len(e) == 5 and e[3]]
        total = opening + sum(e[2] if e[1] == "deposit" else -e[2] for e in accepted)
        state.facts["naive_sum_ok"] = total == report["balance"] and len(report["log"]) == clients * ops
        state.facts["naive_replay_ok"] = not replay_problems(report["log"], opening,
                                                             report["balance"], plans)
    else:
        manager = CheckedManager(ctx=ctx._ctx)
        manager.start()
        try:
            bank = manager.Bank(opening)
            account = {"balance": bank.balance(), "lock": bank.lock(), "log": bank.log()}
            state.stage = "inside your run_bank"
            mod.run_bank(ctx, account, plans)
            state.stage = "reading the account"
            report = bank.report()
        finally:
            manager.shutdown()
    problems = [f"{VIOLATION_WORDS[k]} ({n} times; e.g. {report['examples'][k]})."
                for k, n in report["violations"].items()]
    problems += replay_problems(report["log"], opening, report["balance"], plans)
    started = [p for p in ctx.processes if "client" in role(p)]
    if ctx.processes and len(started) != clients:
        problems.append(f"run_bank should start one client process per plan ({clients}); "
                        f"it started {len(started)}.")
    overlap = max((p._hw_peers_at_start or 0 for p in started), default=0)
    state.facts["most_clients_running_at_a_start"] = overlap
    if len(started) > 1 and overlap == 0:
        problems.append("No client was started while another was running: start all the "
                        "clients first, then join them (one after another never shares the "
                        "account, so it tests nothing).")
    log = report["log"]
    refused = sum(1 for e in log if isinstance(e, (list, tuple)) and len(e) == 5 and not e[3])
    state.facts.update(clients=clients, operations=clients * ops, refused=refused,
                       final_balance=report["balance"], violations=report["violations"])
    problems += end_problems(state)
    return problems
