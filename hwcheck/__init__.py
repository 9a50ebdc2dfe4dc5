"""Grading support for homework 1 and 2: the stable names the notebooks' test
cells, ``helpers.selfcheck``, the runner and the tests use.

The work lives in one module per job:

- :mod:`helpers.hwcheck_run` — kernel side: diagnose the student's module and run a
  task on it in a fresh, bounded Python process (``check``, ``require_answered``,
  ``run``, ``run_isolated``, ``CheckFailed``);
- :mod:`helpers.hwcheck_record` — runner side: the recording context and the
  task's ``State``, shared by every task;
- :mod:`helpers.hw1tasks` and :mod:`helpers.hw2tasks` — the checks themselves.

:data:`TASKS` names the tasks ``helpers.hwrunner`` can run.
"""

from __future__ import annotations

from helpers.hw1tasks import hw1_timeout_problems, task_hw1_pipeline, task_hw1_workers
from helpers.hw2tasks import replay_problems, task_hw2_bank, task_hw2_rules
from helpers.hwcheck_record import (
    RecordingContext,
    SlowItems,
    State,
    _end_problems,
    kill_children,
    make_batches,
)
from helpers.hwcheck_run import (
    _BACKSTOP,
    RUN_MARK_ENV,
    TIME_SCALE_ENV,
    CheckFailed,
    check,
    diagnose_module,
    require,
    require_answered,
    run,
    run_isolated,
    time_scale,
)

__all__ = [
    "_BACKSTOP", "RUN_MARK_ENV", "TIME_SCALE_ENV", "TASKS", "CheckFailed", "RecordingContext",
    "SlowItems", "State", "_end_problems", "check", "diagnose_module", "hw1_timeout_problems",
    "kill_children", "make_batches", "replay_problems", "require", "require_answered", "run",
    "run_isolated", "time_scale",
]

TASKS = {
    "hw1_workers": task_hw1_workers,
    "hw1_pipeline": task_hw1_pipeline,
    "hw2_rules": task_hw2_rules,
    "hw2_bank": task_hw2_bank,
}
