"""The lecture helpers: importable code for the course's lecture notebooks
(``notebooks/NN-*.ipynb``) and nothing else. Measurements, timing and plotting,
the local HTTP server, and the workers of the demonstrations a lecture does not
teach, one module per lecture topic (``review``, ``producer_consumer``, ``pipes``,
``shared_state``, ``pool_bench``, ``socket_lecture``...).

Elsewhere:

- the self-checks of the lectures' exercises: :mod:`helpers.exercises`;
- the homework checks students run: :mod:`hwcheck`; the grader: ``course_tools``;
- process plumbing every part shares (join-then-terminate, reading a queue until
  a deadline, ending process trees): :mod:`courselib.procs`; the start method:
  :mod:`courselib.startmethod`, re-exported here as ``helpers.context``.

A function a child process runs lives in a module (here, or in one a notebook
writes with ``%%writefile``), never in a notebook cell: under the *spawn* and
*forkserver* start methods a child process imports its target by name
(``module.function``), and a notebook's ``__main__`` cannot be imported.
Lecture 00, section "Start methods", shows both the failure and the fix.
"""

from courselib.startmethod import START_METHOD_ENV, context, start_method

__all__ = ["START_METHOD_ENV", "context", "start_method"]
