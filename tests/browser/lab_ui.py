"""What a person does in JupyterLab, as Playwright steps: open a notebook, run
all cells, save, read what the page shows. Every wait is bounded.

Selectors are JupyterLab 4's own classes and command ids (data-command), the
ones its galata test helpers use, so they survive label and theme changes.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

KERNEL_START_TIMEOUT = 90_000  # ms: a kernel start on 2 busy cores
RUN_TIMEOUT = 240_000  # ms: a whole lecture notebook under spawn
# An error output in JupyterLab is rendered as stderr text ending in
# "SomeError: message" (or a traceback), or, for an exception that renders
# itself (IPython's _render_traceback_, as the course's self-checks do), as
# "CheckFailed: message"; ordinary stderr (progress bars, warnings) is not an error.
ERROR_TEXT = re.compile(
    r"Traceback \(most recent call last\)|^\w*(Error|Exception|Failed)\b", re.M
)


def open_notebook(page: Page, lab, path: str) -> None:
    """Open ``path`` (relative to the course root) as the only open document
    and wait for an idle kernel."""
    # ?reset: a fresh workspace, so no tab of an earlier step is restored and
    # every locator below can only match this notebook
    page.goto(lab.url(f"lab/tree/{path}?reset"), timeout=90_000)
    expect(page.locator(".jp-NotebookPanel")).to_have_count(1, timeout=90_000)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Cell").first).to_be_visible(timeout=90_000)
    wait_kernel_idle(page, timeout=KERNEL_START_TIMEOUT)


def wait_kernel_idle(page: Page, timeout: float = RUN_TIMEOUT) -> None:
    """A kernel is connected and the notebook toolbar's status reads idle."""
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    # "No Kernel" until the session's kernel is connected, then its name
    expect(panel.locator(".jp-Toolbar-kernelName")).not_to_have_text(
        re.compile(r"^\s*(No Kernel)?\s*$"), timeout=timeout
    )
    status = panel.locator(".jp-Notebook-ExecutionIndicator")
    expect(status).to_have_attribute("data-status", "idle", timeout=timeout)


def command(page: Page, menu: str, data_command: str) -> None:
    """Click a main-menu entry, e.g. ("Run", "runmenu:run-all")."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(f'.lm-Menu:visible li[data-command="{data_command}"]').first.click()


def run_all(page: Page, timeout: float = RUN_TIMEOUT) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running."""
    command(page, "Run", "runmenu:run-all")
    wait_cells_done(page, timeout)


def wait_cells_done(page: Page, timeout: float = RUN_TIMEOUT) -> None:
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    # give the queued cells a moment to show "[*]" before waiting them out
    time.sleep(0.5)
    expect(nb.locator(".jp-InputPrompt", has_text="[*]")).to_have_count(0, timeout=timeout)
    wait_kernel_idle(page, timeout)


def save(page: Page) -> None:
    command(page, "File", "docmanager:save")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    # the tab loses its "dirty" mark once the file is written
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0, timeout=30_000)
    expect(panel).to_be_visible()


def code_cells(page: Page):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell")


def error_outputs(page: Page) -> list[str]:
    """Texts of the outputs on the page that are Python errors."""
    outs = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) "
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    )
    return [t for t in outs.all_inner_texts() if ERROR_TEXT.search(t)]


def set_cell_source(page: Page, cell, text: str) -> None:
    """Replace a cell's text the way a student does: click, select all, type."""
    editor = cell.locator(".jp-InputArea-editor .cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    # insert_text puts the text in as typed input without auto-indent, so
    # Python indentation arrives exactly as written
    page.keyboard.insert_text(text)
    expect(editor).to_contain_text(text.strip().splitlines()[0].strip())
