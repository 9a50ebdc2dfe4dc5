"""The student's module read as text, never run: what the checker and the verdict
need to know before any student code runs (:mod:`ast` parses, it executes nothing).

* :func:`sentinel`: the value of the module's ``SENTINEL = ...`` (a literal), which
  the checker puts on hw1's queue itself;
* :func:`diagnose`: the answer is missing, does not parse, lacks a function, or a
  function is still the released stub: the same words as the notebook's diagnosis
  (:mod:`hwcheck.diagnose`, which imports the module in the student's kernel).
"""

from __future__ import annotations

import ast
import os
import threading
from pathlib import Path

from hwcheck.diagnose import STUB_WORDS, missing_words

LARGEST = 1 << 20  # bytes: an answer module is a few KiB


# CPython 3.11 keeps the AST builder's recursion depth in shared state: two threads
# parsing at once (the verdict judges its questions side by side) can fail with
# "SystemError: AST constructor recursion depth mismatch" (CPython gh-106905)
_PARSING = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse``, one thread at a time."""
    with _PARSING:
        return ast.parse(source, filename=filename)


def _tree(path: Path) -> ast.Module:
    if path.stat().st_size > LARGEST:
        raise ValueError(f"{path.name} is larger than {LARGEST // 1024} KiB")
    return parse(path.read_bytes(), filename=path.name)


def sentinel(folder: str | os.PathLike, module: str):
    """The literal value the module binds to ``SENTINEL`` at top level (None when
    there is none, or it is not a literal)."""
    try:
        tree = _tree(Path(folder) / f"{module}.py")
    except (OSError, SyntaxError, ValueError):
        return None
    value = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "SENTINEL" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
    return value


def _bound_names(tree: ast.Module) -> dict[str, ast.AST]:
    """Names bound at the module's top level (def, class, assignment, import)."""
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names[sub.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = node
    return names


def diagnose(module: str, names, folder: str | os.PathLike) -> list[str]:
    """Problems with the answer found without running it (empty when there are none)."""
    path = Path(folder) / f"{module}.py"
    if not path.exists():
        return [f"{path.name} does not exist: the cell that starts with `%%writefile "
                f"{path.name}` was not run, or its first line was changed."]
    try:
        tree = _tree(path)
    except SyntaxError as exc:
        return [f"{path.name} cannot be imported: SyntaxError: {exc.msg} (line {exc.lineno} "
                f"of {path.name})"]
    except (OSError, ValueError) as exc:
        return [f"{path.name} cannot be read: {exc}"]
    bound = _bound_names(tree)
    missing = [n for n in names if n not in bound]
    if missing:
        return [missing_words(path.name, missing)]
    text = path.read_text(encoding="utf-8", errors="replace")
    stubs = [n for n in names if isinstance(bound[n], (ast.FunctionDef, ast.AsyncFunctionDef))
             and "raise NotImplementedError" in (ast.get_source_segment(text, bound[n]) or "")]
    if stubs:
        return [", ".join(f"`{n}`" for n in stubs) + STUB_WORDS]
    return []
