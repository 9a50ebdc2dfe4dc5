"""Fairness sample (hw2): run_bank joins its clients with no timeout (q2)."""

TIMEOUT = 60  # seconds: the longest any single wait of yours may take


def make_account(manager, opening_balance):
    """The shared account (given, do not change): the balance, the lock that guards
    it and the transaction log, all living in the manager's server process."""
    return {
        "balance": manager.Value("i", opening_balance),
        "lock": manager.Lock(),
        "log": manager.list(),
    }


# ---- Question 1 ---------------------------------------------------------------
def deposit(account, amount, client_id):
    """Add `amount` (> 0) to the balance, append (client_id, "deposit", amount,
    True, new_balance) to the log and return True."""
    with account["lock"]:
        new_balance = account["balance"].value + amount
        account["balance"].value = new_balance
        account["log"].append((client_id, "deposit", amount, True, new_balance))
    return True


def withdraw(account, amount, client_id):
    """If `amount` is at most the balance: subtract it, append (client_id,
    "withdraw", amount, True, new_balance) to the log and return True.
    Otherwise refuse: change nothing, append (client_id, "withdraw", amount,
    False, balance) and return False."""
    with account["lock"]:
        balance = account["balance"].value
        if amount > balance:
            account["log"].append((client_id, "withdraw", amount, False, balance))
            return False
        account["balance"].value = balance - amount
        account["log"].append((client_id, "withdraw", amount, True, balance - amount))
    return True


# ---- Question 2 ---------------------------------------------------------------
def client(account, operations, client_id):
    """Carry out `operations`, a list of ("deposit" or "withdraw", amount), in order."""
    for kind, amount in operations:
        if kind == "deposit":
            deposit(account, amount, client_id)
        else:
            withdraw(account, amount, client_id)


def run_bank(ctx, account, plans):
    """Start one `client` process per plan (ctx.Process; client_id = the plan's
    index), all at once; join them all (with a timeout); return the final balance."""
    clients = [
        ctx.Process(target=client, name=f"client-{i}",
                    kwargs=dict(account=account, operations=plan, client_id=i))
        for i, plan in enumerate(plans)
    ]
    for proc in clients:
        proc.start()
    for proc in clients:
        proc.join()  # mistake: no timeout
    return account["balance"].value
