"""Forgery cell (any homework, in the notebook): besides hiding tracebacks
(hides_failures.py: nbgrader still records an error from the kernel's reply), wrap
every later cell in ``try/except BaseException: pass``, so no cell raises at all and
every test cell of the notebook passes in the kernel. The verdict is not a cell's
output: the grading run outside the kernel decides."""

import sys as _sys


def _swallow(lines):
    body = ["    " + line for line in lines] or ["    pass\n"]
    if body[-1] and not body[-1].endswith("\n"):
        body[-1] += "\n"
    return ["try:\n", *body, "except BaseException:\n", "    pass\n"]


_shell = _sys.modules["IPython"].get_ipython()
_shell.input_transformers_post.append(_swallow)
