"""Forgery base (hw2): every function written, none right (deserves 0 of 10)."""

TIMEOUT = 60


def make_account(manager, opening_balance):
    return {
        "balance": manager.Value("i", opening_balance),
        "lock": manager.Lock(),
        "log": manager.list(),
    }


def deposit(account, amount, client_id):
    return True  # changes nothing


def withdraw(account, amount, client_id):
    return True


def client(account, operations, client_id):
    pass


def run_bank(ctx, account, plans):
    return 0
