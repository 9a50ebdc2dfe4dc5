"""Forgery prologue (any homework): patch the course's check code in every process that
imports the answer, so that every check finds no problem. In the student's kernel this
fakes grader.check (that is the student's own process); the old runner imported the
answer too, so its tasks were patched as well. Now the checker never imports the answer:
these patches reach only the student's own processes, whose words only add problems."""

import sys as _sys
import types as _types


def _no_problems(*args, **kwargs):
    return []


def _passed(*args, **kwargs):
    print("all check(s) passed")


def _patch_checker() -> None:
    for name, module in list(_sys.modules.items()):
        if not name.startswith(("hwcheck", "courselib")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if callable(value) and not isinstance(value, type) and (
                    attr.endswith("problems") or attr in ("diagnose", "explain")):
                setattr(module, attr, _no_problems)
        if hasattr(module, "TASKS"):
            module.TASKS = {task: _no_problems for task in module.TASKS}
        for attr in ("check", "require_answered", "show"):
            if callable(getattr(module, attr, None)):
                setattr(module, attr, _passed)
    fake = _types.ModuleType("hwcheck.runner")
    fake.TASKS, fake.main = {}, (lambda *a, **k: 0)
    _sys.modules["hwcheck.runner"] = fake  # a checker importing it later gets this one


_patch_checker()
