"""``make grade``: parallel, sandboxed, bounded autograding on top of nbgrader.

Modules, one job each: ``intake`` (which submissions, LMS import), ``sandbox``
and ``sandbox_init`` (the kernel's jail), ``worker`` (one submission through
nbgrader's Autograde), ``pool`` (workers with hard deadlines), ``gradebook``
(snapshot for workers, serial writes by the parent), ``report`` (resume state,
CSV, summary), ``cli`` (the command).
"""
