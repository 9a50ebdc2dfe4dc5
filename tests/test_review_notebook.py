"""The shape of lecture 00 (issue 13), read from the committed notebook: what a
student sees. Running the notebook is nbval's job; these checks only read it."""

import re
from pathlib import Path

import nbformat
import notebook_cells
import pytest

from courselib import startmethod

pytestmark = pytest.mark.start_method_independent

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00-review.ipynb"


@pytest.fixture(scope="module")
def nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_no_test_tool_noise(nb):
    for cell in nb.cells:
        assert "NBVAL" not in cell.source
        assert "not compared by the tests" not in cell.source


def test_code_cells_are_short_except_the_modules_being_taught(nb):
    assert notebook_cells.long_code_cells(nb) == []


def test_software_carpentry_shape(nb):
    text = _markdown(nb)
    first = nb.cells[0].source
    assert "**Questions**" in first and "**Objectives" in first
    assert "| section | time |" in first
    assert nb.cells[-1].source.startswith("## Key points")
    assert "## Glossary" in text
    assert text.count("**Predict, then run.**") >= 8
    for term in ("**pickle**", "**copy-on-write**", "**file descriptor**"):
        assert term in text, f"{term} is not defined in bold"


def test_terms_are_defined_before_they_are_relied_on(nb):
    text = _markdown(nb)
    for term, later in (("**file descriptor**", "stderr, file descriptor 2"),
                        ("**pickle**", "receives the pickle")):
        assert text.index(term) < text.index(later)


def test_the_start_methods_section_other_lectures_point_to(nb):
    headings = [line for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert "## 4. Start methods (启动方式): spawn, fork, forkserver (20 min)" in headings
    text = _markdown(nb)
    assert "forkserver from 3.14" in text and "gh-84559" in text
    assert "DeprecationWarning" in text and "Python 3.12" in text
    assert "never\nreaches the notebook" in text or "never reaches the notebook" in text


def test_glossary_corrections(nb):
    text = _markdown(nb)
    assert "事件点" in text and "时间点" in text
    assert "单继承" in text and "单进程" in text
    glossary = text[text.index("## Glossary"):]
    assert "| 同步 | synchronous; synchronisation |" in glossary
    row = next(line for line in glossary.splitlines() if line.startswith("| 进程 |"))
    assert "instance of a running program" in row and "own memory" in row


def test_kernel_means_only_the_jupyter_kernel(nb):
    # "this notebook's process" and "the operating system", never a bare "kernel"
    for cell in nb.cells:
        for match in re.finditer(r"kernel", cell.source, re.IGNORECASE):
            before = cell.source[max(0, match.start() - 8):match.start()]
            assert before.endswith(("Jupyter ", "ipy")), cell.source


def test_no_false_promise_about_spawn(nb):
    for text in (_markdown(nb), startmethod.__doc__):
        flat = " ".join(text.split())
        assert "works under all three" not in flat
        assert not re.search(r"works under spawn works|spawn, works everywhere", flat)
    assert "inherit" in startmethod.__doc__


def test_worker_modules_are_loaded_with_the_stale_pyc_guard(nb):
    sources = [c.source for c in notebook_cells.code_cells(nb)]
    loads = [s for s in sources if re.search(r"^import square_worker$", s, re.M)]
    assert len(loads) == 1
    for line in ("sys.dont_write_bytecode = True", "importlib.invalidate_caches()",
                 "square_worker = importlib.reload(square_worker)"):
        assert line in loads[0]


def test_committed_outputs_have_no_errors_and_a_plot(nb):
    outputs = [o for c in notebook_cells.code_cells(nb) for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    assert [o for o in outputs if o.get("name") == "stderr"] == []
    assert any("image/png" in o.get("data", {}) for o in outputs)
