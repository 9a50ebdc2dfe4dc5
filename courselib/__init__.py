"""Plumbing every part of the course shares: the lecture helpers (``helpers``), the
student-facing homework checks (``hwcheck``), the teacher's tools (``course_tools``)
and the tests.

- :mod:`courselib.procs` — waiting for, reading from and ending processes;
- :mod:`courselib.startmethod` — the one place the start method is chosen;
- :mod:`courselib.lineclient` — the client of the line protocol (lecture 06, hw3).

Nothing here imports from the packages that use it.
"""
