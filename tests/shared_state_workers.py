"""Workers for tests/test_shared_state.py: the same shapes as the ones lecture 03
writes with %%writefile, kept here so the tests do not depend on the notebook.
Importable by name in a spawn child because pytest puts tests/ on sys.path."""

import os


def decrement_first(num):
    num[0] -= 1


def decrement_once(num, n):
    """An "edited" worker: ignores n and decrements once."""
    num[0] -= 1


def decrement_racing(num, n):
    for _ in range(n):
        num[0] -= 1


def decrement_locked(num, n, lock):
    for _ in range(n):
        with lock:
            num[0] -= 1


def add_racing(v, n):
    for _ in range(n):
        v.value += 1


def add_locked(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def append_and_report(numbers, item, report):
    numbers.append(item)
    report.send(numbers)
    report.close()


def square_in_place(arr):
    with arr.get_lock():
        for i in range(len(arr)):
            arr[i] = arr[i] * arr[i]


def raise_value_error(*args):
    raise ValueError("a bug in the worker")


def exit_at_once(*args):
    os._exit(3)


# answers to lecture 03's exercise "a counter that loses nothing"


def add_many_starter(counter, lock, n, start):
    start.wait(timeout=60)


def add_many_right(counter, lock, n, start):
    start.wait(timeout=60)
    for _ in range(n):
        with lock:
            counter.value += 1


def add_many_unlocked(counter, lock, n, start):
    start.wait(timeout=60)
    for _ in range(n):
        counter.value += 1


def add_many_never_releases(counter, lock, n, start):
    start.wait(timeout=60)
    lock.acquire()
    counter.value += 1


def add_many_get_lock(counter, lock, n, start):
    start.wait(timeout=60)
    with counter.get_lock():  # a manager.Value has none: AttributeError
        counter.value += 1
