"""Lecture 03's workers are on the page: an edit to the ``%%writefile counter_workers.py``
cell takes effect when the reader reruns it and its load cell, in the same kernel.

Run once, under fork: there a child uses the parent's module object instead of importing
the file, so an edit reaches the children only if the load cell really reloaded it (under
spawn and forkserver the children import the file; nbval runs the lecture under those)."""

import multiprocessing
from pathlib import Path

import nbformat
import notebook_cells
import pytest
from nbclient import NotebookClient

NB = Path(__file__).resolve().parents[1] / "notebooks" / "03-shared-state.ipynb"


def _cell(cells, starts_with):
    return next(c for c in cells if c.source.startswith(starts_with))


@pytest.mark.start_method_independent
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_an_edit_to_counter_workers_takes_effect(tmp_path, monkeypatch):
    monkeypatch.setenv("MP_START_METHOD", "fork")  # the kernel inherits it
    nb = nbformat.read(NB, as_version=4)
    setup = nb.cells[1:3]  # machine line, ctx
    module = notebook_cells.writefile_cell(nb, "counter_workers")
    load = nb.cells[nb.cells.index(module) + 1]
    assert "importlib.reload(counter_workers)" in load.source
    race = _cell(nb.cells, "N_PROCS = 4")
    locked = _cell(nb.cells, "with ctx.Manager() as m:\n    lock_race")

    edited = nbformat.from_dict(dict(module))
    locked_line = "        with lock:  # no other process can write between our read and our write\n"
    assert edited.source.count(locked_line + "            num[0] -= 1") == 1
    edited.source = edited.source.replace(locked_line + "            num[0] -= 1",
                                          locked_line + "            num[0] -= 2")

    run = nbformat.v4.new_notebook(metadata=nb.metadata)
    run.cells = [*setup, module, load, race, locked, edited, load, locked]
    run.cells = [nbformat.from_dict(dict(c)) for c in run.cells]
    for i, c in enumerate(run.cells):
        c["id"] = f"c{i}"
    NotebookClient(run, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()

    def said(cell):
        return "".join(o.get("text", "") for o in cell.outputs)

    assert "expected -2000, got -2000, lost 0" in said(run.cells[5])
    assert "expected -2000, got -4000" in said(run.cells[-1])  # the edited worker ran
    written = (tmp_path / "counter_workers.py").read_text()
    assert written.strip() == notebook_cells.writefile_body(edited.source).strip()
