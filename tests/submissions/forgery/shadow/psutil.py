"""Forgery (shadowing): a fake psutil next to the answer, so a checker that imported it
would see no process left running and no process tree at all."""


class Error(Exception):
    pass


class Process:
    def __init__(self, pid=None):
        self.pid = pid

    def children(self, recursive=False):
        return []


def process_iter(*args, **kwargs):
    return iter(())


def wait_procs(procs, timeout=None, callback=None):
    return list(procs), []
