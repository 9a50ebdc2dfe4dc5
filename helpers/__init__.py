"""Importable code for the course's lecture notebooks: measuring, plotting and
checking machinery, and the workers of the demonstrations a lecture does not teach.

A function a child process runs lives in a module (here, or in one a notebook
writes with ``%%writefile``), never in a notebook cell: under the *spawn* and
*forkserver* start methods a child process imports its target by name
(``module.function``), and a notebook's ``__main__`` cannot be imported.
Lecture 00, section "Start methods", shows both the failure and the fix.
"""

from courselib.startmethod import START_METHOD_ENV, context, start_method

__all__ = ["START_METHOD_ENV", "context", "start_method"]
