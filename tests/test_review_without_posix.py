"""Lecture 00's platform-dependent cells run where the POSIX-only APIs are missing
(issue 13, section 5): a kernel without ``os.fork``, ``os.killpg``, ``signal.SIGKILL``,
``os.sched_setaffinity``, ``os.getloadavg``, with spawn as the only start method and
psutil's Windows answer ('running' for every live process). Each cell must run
without an error and say in plain words what it skips.

Only the cells that touch those APIs run (by cell id, with the setup they need), so
this costs a few seconds, not a whole notebook.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.start_method_independent  # the kernel below uses spawn only

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00-review.ipynb"

# what a Windows-like kernel lacks; run before the notebook's own cells
REMOVE_POSIX = """
import multiprocessing
import os
import signal

for _name in ("fork", "killpg", "sched_setaffinity", "sched_getaffinity", "getloadavg"):
    if hasattr(os, _name):
        delattr(os, _name)
if hasattr(signal, "SIGKILL"):
    del signal.SIGKILL
multiprocessing.get_all_start_methods = lambda: ["spawn"]

import psutil

from helpers import review

psutil.Process.status = lambda self: "running"  # psutil on Windows: every live process
review.psutil_sees_blocked = lambda: False  # what it answers when sys.platform is win32
"""

SETUP = ["187a44f3", "7871f2a7"]  # imports, ctx


def _cell_ids_through(nb, first_heading: str, last_heading: str) -> list[str]:
    """Ids of the code cells from one markdown heading up to (not including) another."""
    ids, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith(first_heading):
            inside = True
        elif cell.cell_type == "markdown" and cell.source.startswith(last_heading):
            inside = False
        elif inside and cell.cell_type == "code":
            ids.append(cell.id)
    return ids


@pytest.mark.slow(12)
def test_platform_dependent_cells_of_00_run_without_posix_apis(monkeypatch):
    monkeypatch.setenv("MP_START_METHOD", "spawn")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # sections 2 (process states), 3 (what a process is) and 4 (start methods)
    wanted = SETUP + _cell_ids_through(nb, "## 2.", "## 5.")
    by_id = {c.id: c for c in nb.cells}
    run = nbformat.v4.new_notebook(metadata=nb.metadata)
    run.cells = [nbformat.v4.new_code_cell(REMOVE_POSIX)] + [by_id[i] for i in wanted]
    NotebookClient(run, timeout=120, resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    text = {}
    for cell in run.cells[1:]:
        assert [o for o in cell.outputs if o.output_type == "error"] == [], cell.source
        text[cell.id] = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert "not shown: on Windows psutil reports every live process as 'running'" in text["b5e82d63"]
    assert "exit code: 0" in text["b5e82d63"]
    assert "this demonstration needs Linux" in text["ee079300"]
    table = text["4e1cb9af"]
    assert "spawn" in table and "fork " not in table and "forkserver" not in table
    everything = "".join(text.values())
    assert "the child's exit code: 1" in everything  # the worker defined in a cell
    assert "the child sent back: 49" in everything  # the same worker from a module
    assert "bootstrapping phase" in everything  # the script without the guard
