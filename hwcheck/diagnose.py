"""What is wrong with the student's module before anything runs, said at once in the
notebook (no runner process started): the file is missing, does not import, lacks a
function, or a function is still the stub, and when the functions were written in a
notebook cell instead of the ``%%writefile`` cell, that too."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path


def diagnose(module: str, names: list[str] | tuple[str, ...],
             folder: str | os.PathLike = ".") -> list[str]:
    """Problems a student can fix before anything runs (empty when there are none).

    Imports ``module`` fresh from ``folder`` (what the %%writefile cell wrote last)."""
    path = Path(folder) / f"{module}.py"
    if not path.exists():
        return [f"{path.name} does not exist yet. Run the cell that starts with "
                f"`%%writefile {path.name}` (it writes your code to that file), then the cell "
                "after it." + in_cells_note(names, path.name)]
    try:
        mod = _fresh_import(module, Path(folder))
    except Exception as exc:  # noqa: BLE001 - reported to the student
        return [f"{path.name} cannot be imported: {_one_line(exc, path)}"]
    missing = [n for n in names if not callable(getattr(mod, n, None))]
    if missing:
        return [missing_words(path.name, missing) + in_cells_note(missing, path.name)]
    stubs = [n for n in names if is_stub(getattr(mod, n))]
    if stubs:
        return [", ".join(f"`{n}`" for n in stubs) + STUB_WORDS + in_cells_note(stubs, path.name)]
    return []


# the same words where the module is read without running it (hwcheck.source)
STUB_WORDS = (" still raise(s) NotImplementedError: replace `# YOUR CODE HERE` and the "
              "`raise NotImplementedError()` line in the %%writefile cell with your code, then "
              "run that cell and the next one again.")


def missing_words(filename: str, missing) -> str:
    return (f"{filename} has no function " + ", ".join(f"`{n}`" for n in missing)
            + " (keep the names given).")


def _fresh_import(module: str, folder: Path):
    folder = str(folder.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        importlib.invalidate_caches()
        return importlib.reload(importlib.import_module(module))
    finally:
        if added:
            sys.path.remove(folder)


def _one_line(exc: BaseException, path: Path) -> str:
    """``exc`` with the line of the student's file it came from, if any."""
    import traceback

    where = ""
    for fs in traceback.extract_tb(exc.__traceback__):
        if Path(fs.filename).name == path.name:
            where = f" (line {fs.lineno} of {path.name}: `{(fs.line or '').strip()}`)"
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = f" (line {exc.lineno} of {path.name})"
    return f"{type(exc).__name__}: {exc}{where}"


def is_stub(fn) -> bool:
    """Whether ``fn`` is still the released stub (its body raises NotImplementedError)."""
    try:
        return "raise NotImplementedError" in inspect.getsource(fn)
    except (OSError, TypeError):
        return False


def in_cells_note(names, filename: str) -> str:
    """A hint when the student defined these functions in a notebook cell instead."""
    main = sys.modules.get("__main__")
    in_cells = [n for n in names
                if getattr(getattr(main, n, None), "__module__", "") == "__main__"]
    if not in_cells:
        return ""
    return (" " + ", ".join(f"`{n}`" for n in in_cells) + ": defined in a notebook cell, not "
            f"in the file: the answer cell must start with the line `%%writefile {filename}`. "
            "Under the spawn start method a child process cannot use a function defined in a "
            "notebook cell (AttributeError: Can't get attribute ... on <module '__main__'>), "
            "so your functions must live in that file.")
