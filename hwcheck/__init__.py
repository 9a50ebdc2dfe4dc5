"""The homework checks, as the homework notebooks and their hidden tests use them::

    from hwcheck import Checker, context, start_method
    grader = Checker("hw1")
    grader.check("q1")   # raises CheckFailed saying in plain words what is wrong
    grader.show("q1")    # runs the same checks and prints what happened, never raises

    # a hidden test cell
    from hwcheck import check, require_answered
    require_answered("hw1", "q1")        # a missing or stub answer fails at once
    check("hw1", "q1", hidden=True)      # the hidden checks of question 1

Every check of hw1, hw2 and hw3 runs the same way: the question table
(:mod:`hwcheck.questions`) names its task, parameters and time limit; the notebook's
side (:mod:`hwcheck.checker`) diagnoses the module, then starts a fresh, bounded checker
process (:mod:`hwcheck.isolated`, :mod:`hwcheck.runner`) that runs the task
(:mod:`hwcheck.hw1` with :mod:`hwcheck.hw1_driver`, :mod:`hwcheck.hw2`, :mod:`hwcheck.hw3`) and reports in JSON on a
pipe only it holds (:mod:`hwcheck.reportfd`). The checker never imports the student's
module: student code runs in its children only (:mod:`hwcheck.child`, as the student's
uid when grading), and what passes is decided from what the checker saw itself
(:mod:`hwcheck.driving`, :mod:`hwcheck.plaindata`, :mod:`hwcheck.bank`).

The verdict that counts is the grader's: ``python -I -m hwcheck.verdict ASSIGNMENT
FOLDER --fd N`` runs every hidden check outside the student's kernel
(:mod:`hwcheck.verdict`); ``grader.check`` in the notebook is for the student.

``context`` and ``start_method`` are the course's (:mod:`courselib.startmethod`): a
homework notebook and the modules it writes need nothing else from the course.

The names are loaded on first use (PEP 562): every process a check starts imports
this package to reach its own target (:mod:`hwcheck.child`), and needs none of them.
"""

import importlib

_HOME = {"context": "courselib.startmethod", "start_method": "courselib.startmethod",
         **dict.fromkeys(["Checker", "CheckFailed", "check", "require_answered", "show"],
                         "hwcheck.checker")}
__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'hwcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
