"""Forgery (hw2, pickle bomb): deposit and withdraw append an object whose unpickling
runs a command to the log, which lives in the checker's manager; run_bank also sends one
down every connection its process can write to. The checker's manager loads plain data
only: each request is refused and the answer fails (deserves 0 of 10)."""

import gc
import os

TIMEOUT = 60
TARGET = os.environ.get("HWCHECK_BOMB_TARGET", "/tmp/hwcheck-pickle-bomb-went-off")


class Bomb:
    def __reduce__(self):
        return (os.system, (f"touch {TARGET}",))


def make_account(manager, opening_balance):
    return {
        "balance": manager.Value("i", opening_balance),
        "lock": manager.Lock(),
        "log": manager.list(),
    }


def deposit(account, amount, client_id):
    with account["lock"]:
        account["log"].append((client_id, "deposit", amount, True, Bomb()))
    return True


def withdraw(account, amount, client_id):
    with account["lock"]:
        account["log"].append((client_id, "withdraw", amount, True, Bomb()))
    return True


def client(account, operations, client_id):
    for kind, amount in operations:
        (deposit if kind == "deposit" else withdraw)(account, amount, client_id)


def run_bank(ctx, account, plans):
    from multiprocessing.connection import Connection

    for obj in gc.get_objects():
        if isinstance(obj, Connection) and not obj.closed and obj.writable:
            try:
                obj.send(Bomb())
            except Exception:  # noqa: BLE001
                pass
    clients = [ctx.Process(target=client, args=(account, plan, i)) for i, plan in enumerate(plans)]
    for proc in clients:
        proc.start()
    for proc in clients:
        proc.join(TIMEOUT)
    return 0
