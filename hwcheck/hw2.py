"""Homework 2 (a bank account shared through a Manager) checks. The account lives in
the checker (:mod:`hwcheck.bank`: a manager served from the checker's own threads,
loading plain data only), so the balance, the log and who changed them when are read
in the checker's memory; the student's ``deposit``/``withdraw`` and ``run_bank`` run
in a driver child (:mod:`hwcheck.driving`) on proxies of that account.

What the driver sees (return values, crashed clients) only adds problems.
"""

from __future__ import annotations

import itertools
import random

from courselib.procs import max_concurrency
from hwcheck import bank as checked
from hwcheck import driving
from hwcheck.recording import State, crashed_problems, student_line


def make_plans(clients: int, ops: int, seed: int = 1) -> list[list[tuple[str, int]]]:
    """Each client's operations: slightly more withdrawn than deposited, so the
    balance hovers near zero and many withdrawals must be refused."""
    rng = random.Random(seed)
    return [
        [("deposit", rng.randint(1, 40)) if rng.random() < 0.5 else ("withdraw", rng.randint(1, 50))
         for _ in range(ops)]
        for _ in range(clients)
    ]


def rules_plan(ops: int, opening: int, seed: int = 1) -> list[tuple[str, int]]:
    """One process's operations, as :func:`make_plans`, with a withdrawal of exactly
    the balance (which must be accepted) about every tenth operation, and right
    after any that leaves a positive balance: known in advance, since one process
    alone changes the account."""
    rng, bal, plan = random.Random(seed), opening, []
    for n in range(ops):
        if bal > 0 and (n % 10 == 3 or rng.random() < 0.05):
            kind, amount = "withdraw", bal
        elif rng.random() < 0.5:
            kind, amount = "deposit", rng.randint(1, 40)
        else:
            kind, amount = "withdraw", rng.randint(1, 50)
        plan.append((kind, amount))
        bal += amount if kind == "deposit" else -amount if amount <= bal else 0
    return plan


VIOLATION_WORDS = {
    "unlocked write": "the balance was changed by a client that did not hold account['lock'] "
                      "(missing lock: two clients can read the same balance and one update is lost)",
    "stale write": "the balance was written inside the lock but computed from a value read before "
                   "the lock was taken (misplaced lock: read AND write inside one `with lock:`)",
    "unlocked log": "the log was appended outside the lock, so its order need not match the order "
                    "in which the balance changed",
    "negative": "the balance went below zero",
}


def replay_problems(log, opening, balance, plans, rules: bool = True) -> list[str]:
    """The log must tell the account's story: each entry's balance_after follows
    from the previous one, and every client's operations appear once, in order;
    with ``rules``, refusals are also exactly the overdrafts (question 1's rules;
    question 2 replays the log by its own accept/refuse decisions, so a mistake in
    the rules costs question 1 only)."""
    problems, bal = [], opening
    per_client: dict = {}
    for n, entry in enumerate(log):
        if not (_entry(entry) and isinstance(entry[0], int) and isinstance(entry[2], (int, float))
                and isinstance(entry[4], (int, float))):
            return [f"Log entry {n} is {entry!r}; expected (client_id, kind, amount, accepted, "
                    "balance_after)."]
        per_client.setdefault(entry[0], []).append((entry[1], entry[2]))
    for n, (_client, kind, amount, accepted, after) in enumerate(log):
        if kind == "deposit":
            if rules and not accepted:
                problems.append(f"Log entry {n}: a deposit was refused; deposits are always accepted.")
                break
            bal += amount if accepted else 0
        elif kind == "withdraw":
            if rules and accepted and amount > bal:
                problems.append(f"Log entry {n}: withdrew {amount} from a balance of {bal} "
                                "(an overdraft must be refused).")
                break
            if rules and not accepted and amount <= bal:
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


RULE_STEPS = [("deposit", 30, True), ("withdraw", 100, False), ("withdraw", 80, True),
              ("withdraw", 1, False), ("deposit", 5, True)]


def task_hw2_rules(job: driving.Job, opening=50, random_ops=0, seed=3):
    """deposit/withdraw in one process: fixed cases (an exact-balance withdrawal is
    accepted), then ``random_ops`` random ones."""
    served = checked.serve_bank(opening)
    try:
        job.stage = "inside your deposit/withdraw"
        driven = driving.run_in_driver(
            job, "hwcheck.hw2:drive_rules",
            dict(account=served.account, random_ops=random_ops, seed=seed),
            "your deposit/withdraw")
        report = served.bank.report()
    finally:
        served.close()
    if driven.result is None:
        return driven.problems
    said = [p for p in driven.result.get("problems") or [] if isinstance(p, str)]
    log = report["log"]
    if random_ops:
        plan = rules_plan(random_ops, opening, seed)
        job.facts.update(operations=random_ops, log_entries=len(log),
                         refused=sum(1 for e in log if _entry(e) and not e[3]))
        return said or replay_problems(log, opening, report["balance"], [plan])
    job.facts["log"] = log
    expected = [(7, k, a, w) for k, a, w in RULE_STEPS]
    got = [tuple(e)[:4] if isinstance(e, (tuple, list)) else e for e in log]
    if got != expected:
        mine = [f"The log should be {expected} (plus balance_after), it is {log}."]
    else:
        mine = replay_problems(log, opening, report["balance"], None)
    return said or mine  # the driver's words are the more precise, when it has any


def _entry(e) -> bool:
    return isinstance(e, (list, tuple)) and len(e) == 5


def task_hw2_bank(job: driving.Job, clients=8, ops=250, opening=100, seed=1, plain=False):
    """Many clients at once through the student's run_bank, on the checked account."""
    plans = make_plans(clients, ops, seed)
    job.stage = "inside your run_bank"
    if plain:  # the naive check the bench compares against: the student's own account
        driven = driving.run_in_driver(job, "hwcheck.hw2:drive_bank_plain",
                                       dict(plans=plans, opening=opening), "your run_bank")
        if driven.result is not None:
            job.facts.update(driven.result.get("facts") or {})
        return driven.problems
    served = checked.serve_bank(opening)
    try:
        driven = driving.run_in_driver(job, "hwcheck.hw2:drive_bank",
                                       dict(account=served.account, plans=plans), "your run_bank")
        report, writers = served.bank.report(), served.bank.writers()
    finally:
        served.close()
    if driven.result is None:
        return driven.problems
    # lock discipline and a log that replays; the rules (a negative balance, a wrong
    # refusal) are question 1's
    problems = [f"{VIOLATION_WORDS[k]} ({n} times; e.g. {report['examples'][k]})."
                for k, n in report["violations"].items() if k != "negative"]
    problems += replay_problems(report["log"], opening, report["balance"], plans, rules=False)
    problems += _client_problems(writers, driven, clients)
    log = report["log"]
    job.facts.update(clients=clients, operations=clients * ops, final_balance=report["balance"],
                     refused=sum(1 for e in log if _entry(e) and not e[3]),
                     violations=report["violations"], clients_seen=len(writers),
                     most_clients_at_once=max_concurrency(list(writers.values())))
    problems += [p for p in driven.result.get("problems") or [] if isinstance(p, str)]
    problems += driving.leftover_problem(driven.leftovers, "your run_bank")
    return problems


def _client_problems(writers: dict, driven: driving.Driven, clients: int) -> list[str]:
    """One client process per plan, changing the account while another runs: judged
    from which processes the checker's own server saw change it, and when, and from
    the processes it saw running at the same moment."""
    itself = driven.pid in writers
    others = {k: span for k, span in writers.items() if k != driven.pid}
    problems = []
    if len(others) != clients:
        problems.append(
            f"run_bank should start one client process per plan ({clients}); the account was "
            f"changed by {len(others)} other process(es)"
            + (" and by the process running run_bank itself" if itself else "") + ".")
    pids = sorted(k for k in others if isinstance(k, int))
    at_once = max_concurrency(list(others.values())) > 1 or any(
        pair in driven.together for pair in itertools.combinations(pids, 2))
    if len(others) > 1 and not at_once:
        problems.append("No client was started while another was running: start all the "
                        "clients first, then join them (one after another never shares the "
                        "account, so it tests nothing).")
    return problems


# --------------------------------------------------------------------- the driver's side


def drive_rules(state: State, account, random_ops, seed) -> dict:
    """In the driver: the student's deposit/withdraw on the checker's account; their
    return values (and the balance after each step, as the driver reads it) in words."""
    mod = state.module
    account = checked.account_proxies(account)
    if random_ops:
        for kind, amount in rules_plan(random_ops, account["balance"].value, seed):
            getattr(mod, kind)(account, amount, 0)
        return {"problems": []}
    problems, bal = [], account["balance"].value
    for kind, amount, want in RULE_STEPS:
        before = account["balance"].value
        got = getattr(mod, kind)(account, amount, 7)
        if want and kind == "withdraw":
            bal -= amount
        elif kind == "deposit":
            bal += amount
        now = account["balance"].value
        if got is not want:
            exact = " (exactly the balance: allowed)" if amount == before else ""
            problems.append(f"{kind}(account, {amount}, 7) with the balance at {before} before "
                            f"the call{exact} returned {got!r}; expected {want} "
                            "(True when done, False when refused).")
            break
        if now != bal:
            problems.append(f"After {kind} of {amount} the balance is {now}, expected {bal}.")
            break
    return {"problems": problems}


def drive_bank(state: State, account, plans) -> dict:
    """In the driver: the student's run_bank on the checker's account."""
    state.timeout_hint = (
        "Likely mistake: a client waiting for a lock that is never released (use `with lock:`), "
        "or run_bank joining processes it never started."
    )
    unbounded = _watch_unbounded_joins(getattr(state.module, "__name__", ""))
    state.module.run_bank(state.ctx, checked.account_proxies(account), plans)
    problems = crashed_problems(state.processes)
    if unbounded:
        problems.append(
            "Every wait needs a timeout (a deadlock must end with an error, not hang): your "
            f"run_bank joined with none at {unbounded[0]}. Use proc.join(TIMEOUT).")
    return {"problems": problems}


def _watch_unbounded_joins(module: str) -> list[str]:
    """The student's lines where this process joins a child with no timeout (filled as
    run_bank runs): a wait that would hang for ever if a client deadlocked."""
    import os
    import sys
    from multiprocessing import process

    seen: list[str] = []
    parent, original = os.getpid(), process.BaseProcess.join

    def join(proc, timeout=None):
        caller = sys._getframe(1)  # the student's own call, not one inside a library's
        if timeout is None and os.getpid() == parent and (
                caller.f_globals.get("__name__") == module):
            line = student_line(module)
            if line and line not in seen:
                seen.append(line)
        return original(proc, timeout)

    process.BaseProcess.join = join
    return seen


def drive_bank_plain(state: State, plans, opening) -> dict:
    """The bench's naive check: the student's own make_account, a plain Manager; only
    what a naive test would see (the final sum; the log replayed)."""
    mod, ctx = state.module, state.ctx
    with ctx.Manager() as manager:
        account = mod.make_account(manager, opening)
        mod.run_bank(ctx, account, plans)
        balance, log = account["balance"].value, list(account["log"])
    accepted = [e for e in log if len(e) == 5 and e[3]]
    total = opening + sum(e[2] if e[1] == "deposit" else -e[2] for e in accepted)
    facts = {"naive_sum_ok": total == balance and len(log) == sum(map(len, plans)),
             "naive_replay_ok": not replay_problems(log, opening, balance, plans)}
    return {"problems": [], "facts": facts}
