"""``make grade``: parallel, sandboxed, bounded autograding on top of nbgrader.

Modules, one job each:

- ``cli``: the ``course-grade`` command; ``intake``: which submissions, LMS import;
  ``report``: resume state, CSV, summary; ``gradebook``: snapshot for the workers,
  serial writes by the parent; ``config``: the course's nbgrader config;
- ``slots``: worker processes with a hard deadline per submission;
- ``worker``: one submission through nbgrader's Autograde, in three steps:
  ``precheck`` (before running), nbgrader, ``outcome`` (reasons in words);
- ``sandbox`` (the kernel manager that jails the kernel), ``sandbox_init`` (PID 1
  of the jail), ``cgroups`` (memory and process caps), ``execute`` (nbgrader's
  executor with per-notebook limits), ``records`` (what the sandbox and the
  executor report back to the worker).
"""
