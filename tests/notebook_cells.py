"""The cells of a lecture notebook, as the tests need them: the code its
``%%writefile <module>.py`` cells write, those modules written to a folder and
imported the way the notebook's load cells import them, and the cells a test
looks up by what they contain.

``notebook`` is a path or a notebook already read with ``nbformat``."""

import importlib
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import nbformat

WRITEFILE = re.compile(r"%%writefile (\w+)\.py\n")
LONGEST_CELL = 25  # lines; a %%writefile module cell may be longer (it is the code taught)


def read(notebook) -> nbformat.NotebookNode:
    if isinstance(notebook, nbformat.NotebookNode):
        return notebook
    return nbformat.read(notebook, as_version=4)


def code_cells(notebook) -> list:
    return [c for c in read(notebook).cells if c.cell_type == "code"]


def writefile_body(source: str) -> str:
    """What a ``%%writefile`` cell with this source writes: everything after its first line."""
    return source.split("\n", 1)[1]


def writefile_cell(notebook, module: str):
    """The first code cell that starts with ``%%writefile <module>.py``."""
    nb = read(notebook)
    for cell in code_cells(nb):
        m = WRITEFILE.match(cell.source)
        if m and m[1] == module:
            return cell
    name = Path(notebook).name if isinstance(notebook, (str, Path)) else "the notebook"
    raise AssertionError(f"{name} has no '%%writefile {module}.py' cell")


def writefile_source(notebook, module: str) -> str:
    """The code the notebook's ``%%writefile <module>.py`` cell writes."""
    return writefile_body(writefile_cell(notebook, module).source)


def writefile_modules(notebook, modules=None) -> dict[str, str]:
    """Module name -> the code its ``%%writefile`` cell writes: the names given (each must
    have a cell), or every module the notebook writes, in notebook order."""
    nb = read(notebook)
    if modules is not None:
        return {name: writefile_source(notebook, name) for name in modules}
    found = {}
    for cell in code_cells(nb):
        if (m := WRITEFILE.match(cell.source)) and m[1] not in found:
            found[m[1]] = writefile_body(cell.source)
    return found


@contextmanager
def importable_from(folder: Path, sources: dict[str, str], monkeypatch):
    """Write each ``name: code`` as ``folder/<name>.py`` and make those names import
    fresh from ``folder`` (spawn and forkserver children find them through sys.path,
    as they find the notebook's), like the notebook's load cells; forgotten on exit.
    Import them with ``importlib.import_module(name)``."""
    for name, code in sources.items():
        (Path(folder) / f"{name}.py").write_text(code, encoding="utf-8")
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    try:
        yield Path(folder)
    finally:
        for name in sources:
            sys.modules.pop(name, None)


def edit_and_reload(module, old: str, new: str):
    """What a student does: change ``old`` to ``new`` in the file ``module`` was loaded
    from, then run the notebook's load cell (no stale .pyc, caches invalidated,
    reload). Returns the reloaded module."""
    path = Path(module.__file__)
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    sys.dont_write_bytecode, was = True, sys.dont_write_bytecode
    try:
        importlib.invalidate_caches()
        return importlib.reload(module)
    finally:
        sys.dont_write_bytecode = was


def code_cell_containing(notebook, marker: str) -> str:
    """The source of the one code cell that contains ``marker``."""
    found = [c.source for c in code_cells(notebook) if marker in c.source]
    assert len(found) == 1, f"{len(found)} code cells contain {marker!r}"
    return found[0]


def long_code_cells(notebook, limit: int = LONGEST_CELL) -> list[tuple[int, str]]:
    """(index, first line) of each code cell over ``limit`` lines that is not a
    ``%%writefile`` module cell."""
    return [(i, c.source.splitlines()[0]) for i, c in enumerate(read(notebook).cells)
            if c.cell_type == "code" and not c.source.startswith("%%writefile")
            and len(c.source.splitlines()) > limit]
