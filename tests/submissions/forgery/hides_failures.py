"""Forgery prologue (any homework): hide every failure in the kernel (sys.excepthook,
threading.excepthook, IPython's showtraceback, CheckFailed's rendering), so a failing
test cell shows no error and nbgrader gives its points. The verdict is not a cell's
output: it comes from the checker run outside the kernel, where this has no effect."""

import sys as _sys
import threading as _threading


def _quiet(*args, **kwargs):
    return None


_sys.excepthook = _quiet
_threading.excepthook = _quiet
if "IPython" in _sys.modules:
    _shell = _sys.modules["IPython"].get_ipython()
    if _shell is not None:
        _shell.showtraceback = _quiet
        _shell._showtraceback = _quiet
if "hwcheck.checker" in _sys.modules:
    _sys.modules["hwcheck.checker"].CheckFailed._render_traceback_ = lambda self: []
