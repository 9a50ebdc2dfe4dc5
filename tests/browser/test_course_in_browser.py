"""The course as students and teachers meet it: real JupyterLab in headless
Chromium (issue 9). One file, one JupyterLab, the steps in the order a person
takes them; each step saves a screenshot to tests/browser/screenshots/.
"""

from __future__ import annotations

import json

import pytest
from lab_ui import code_cells, error_outputs, open_notebook, run_all, save
from playwright.sync_api import expect

LECTURE = "notebooks/00-review.ipynb"

pytestmark = pytest.mark.timeout(420)


def test_lecture_runs_all_cells_and_shows_a_plot(lab, page, shot):
    open_notebook(page, lab, LECTURE)
    shot(page, "01-lecture-opened")

    run_all(page)
    save(page)
    shot(page, "02-lecture-ran")

    # every code cell ran (a number in its prompt), none shows an error
    cells = code_cells(page)
    n = cells.count()
    assert n > 0, "the lecture notebook shows no code cells"
    prompts = cells.locator(".jp-InputPrompt").all_inner_texts()
    not_run = [i for i, p in enumerate(prompts) if not any(ch.isdigit() for ch in p)]
    assert not not_run, f"code cells {not_run} did not run (prompts: {prompts})"
    assert error_outputs(page) == []

    # the saved file agrees: no error output in any cell
    saved = json.loads((lab.root / LECTURE).read_text())
    errors = [
        (i, o.get("ename"), o.get("evalue"))
        for i, c in enumerate(saved["cells"])
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []

    # a plot is rendered: an image in an output area that the browser decoded
    img = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img").first
    img.scroll_into_view_if_needed()
    expect(img).to_be_visible()
    width = img.evaluate("el => el.complete ? el.naturalWidth : 0")
    assert width > 100, f"the plot image did not render (naturalWidth={width})"
    shot(page, "03-lecture-plot")
