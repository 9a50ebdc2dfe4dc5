"""Forgery (shadowing): a file named like the course's check package, written next to
the answer, so that `import hwcheck` there finds it first and every check passes."""

from multiprocessing import get_context as context  # noqa: F401 - what answers import


def start_method():
    return "fork"


def check(*args, **kwargs):
    print("all check(s) passed")


require_answered = show = check


class Checker:
    def __init__(self, assignment):
        self.check = self.show = check
