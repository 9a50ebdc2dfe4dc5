"""nbgrader's ``Execute`` preprocessor with the sandboxed kernel and the grader's bounds.

``BoundedExecute`` adds a wall-clock limit per notebook (cells after it are not
run and fail with a message), caps the output kept per cell and per notebook (every
message the kernel sends counts, displays updated in place and widget messages
too; an error is always kept, shortened, since it decides a test's points), stops a
cell early when its spawn workers keep failing to unpickle a function defined in the
notebook (a Pool would wait forever), and notes in the worker's ``record`` the
exception that ended a notebook. It uses only public hooks of nbconvert/nbclient:
``preprocess``, ``preprocess_cell``, ``timeout_func``, ``process_message`` and ``output``.

``CapNotebook`` bounds a whole notebook (the autograded one, and the one a feedback
page is made from) whatever the student put in it: markdown, attachments, metadata,
outputs, extra cells. What does not fit is replaced by a visible note.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time

import nbformat
from jupyter_core.utils import ensure_async
from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import Execute
from traitlets import Bool, Instance, Integer

from .records import ExecutionFailure, RunRecord
from .sandbox import SandboxKernelManager

UNPICKLABLE_PATTERN = "Can't get attribute"
POOL_WORKER_FRAME = "in worker"
INTERRUPTS, INTERRUPT_EVERY = 5, 3.0  # how a cell stuck on unpicklable workers is stopped
# messages whose content becomes a cell's output (or a display updated in place,
# or widget state nbclient keeps in the notebook)
COUNTED = {"stream", "display_data", "execute_result", "update_display_data",
           "comm_open", "comm_msg"}
MARKUP = ("text/html", "text/markdown", "image/svg+xml")  # what the sanitizer parses
ERROR_TEXT = 2000  # characters kept of an error's value and of each traceback line
ERROR_LINES = 40  # traceback lines kept (the last ones: where it failed)


def _mib(n: int) -> str:
    """A size in words: 512 bytes, 12 KiB, 1.5 MiB."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1 << 20:
        return f"{n >> 10} KiB"
    return f"{n / (1 << 20):.3g} MiB"


def note(text: str):
    """A visible grader's note in place of what was dropped."""
    return nbformat.v4.new_output("stream", name="stderr", text=f"[grader: {text}]\n")


def _is_note(out) -> bool:
    return out.get("output_type") == "stream" and str(out.get("text", "")).startswith(
        "[grader: ") and len(out.text) < 300


def shorten_error(content: dict) -> None:
    """An error output, kept whatever its size (it decides the test's points),
    shortened in place."""
    evalue = str(content.get("evalue", ""))
    if len(evalue) > ERROR_TEXT:
        content["evalue"] = evalue[:ERROR_TEXT] + f" ... [grader: {len(evalue)} characters]"
    tb = [str(line)[:ERROR_TEXT] for line in content.get("traceback") or []]
    if len(tb) > ERROR_LINES:
        tb = tb[:5] + [f"... [grader: {len(tb) - ERROR_LINES} lines dropped] ..."] + tb[5 - ERROR_LINES:]
    content["traceback"] = tb


class SandboxExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel; cleans the kernel's cwd afterwards."""

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources, km=None):
        try:
            return super().preprocess(nb, resources, km=km)
        finally:
            path = resources.get("metadata", {}).get("path")
            if path:
                neutralise_tree(path)


def neutralise_tree(root: str) -> None:
    """After the kernel is gone: remove symlinks and special files the submission
    made (nbgrader, running as root, would follow them) and hand files back to root."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path) or not (os.path.isfile(path) or os.path.isdir(path)):
                os.unlink(path)
                dirnames[:] = [d for d in dirnames if d != name]
            elif st.st_uid != os.geteuid():
                os.lchown(path, os.geteuid(), os.getegid())
    os.lchown(root, os.geteuid(), os.getegid())


class BoundedExecute(SandboxExecute):
    notebook_timeout = Integer(600, help="Wall-clock seconds for one notebook.").tag(config=True)
    max_output_bytes = Integer(8 << 20, help="Output kept per cell; more is dropped (the "
                               "grader's memory is at stake).").tag(config=True)
    max_notebook_output_bytes = Integer(32 << 20, help="Output kept per notebook; more is "
                                        "dropped.").tag(config=True)
    record = Instance(RunRecord, allow_none=True,
                      help="Where the exception that ended a notebook is noted.").tag(config=True)

    def preprocess(self, nb, resources, km=None):
        self._deadline: float | None = None  # set at the first code cell: start-up is free
        self._cell: int | None = None  # the last cell started (named if the notebook fails)
        self._running: int | None = None  # the cell running now
        self._stream_tail: dict[int, str] = {}
        self._output_bytes: dict[int, int] = {}
        self._notebook_bytes = 0
        self._truncated: set[int] = set()
        self._interrupted: set[int] = set()
        self._interrupter: asyncio.Future | None = None
        self.timeout_func = self._cell_timeout
        try:
            return super().preprocess(nb, resources, km=km)
        except Exception as exc:
            if self.record is not None:
                name = (resources or {}).get("unique_key", "")
                self.record.failures.append(ExecutionFailure(name, self._cell, exc))
            raise

    def _cell_timeout(self, cell) -> int | None:
        """The cell's own limit, cut to what is left of the notebook's."""
        timeout = self.timeout if self.timeout and self.timeout > 0 else None
        if self._deadline is None:
            return timeout
        remaining = max(1, math.ceil(self._deadline - time.monotonic()))
        return remaining if timeout is None else min(timeout, remaining)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.source.strip():
            if self._deadline is None:
                self._deadline = time.monotonic() + self.notebook_timeout
            elif time.monotonic() >= self._deadline:
                text = f"notebook time limit ({self.notebook_timeout} s) reached; cell not run"
                cell.outputs = [nbformat.v4.new_output(
                    "error", ename="NotebookTimeoutError", evalue=text,
                    traceback=[f"NotebookTimeoutError: {text}"])]
                return cell, resources
        self._cell = self._running = index
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            self._running = None
            if self._interrupter is not None:
                self._interrupter.cancel()
                self._interrupter = None

    def process_message(self, msg, cell, cell_index):
        msg_type = msg.get("msg_type", "")
        if msg_type == "error":
            shorten_error(msg["content"])
        elif msg_type in COUNTED:
            size = len(json.dumps(msg.get("content", {}), default=str))
            total = self._output_bytes.get(cell_index, 0) + size
            self._output_bytes[cell_index] = total
            self._notebook_bytes += size
            if total > self.max_output_bytes or self._notebook_bytes > self.max_notebook_output_bytes:
                if cell_index not in self._truncated:
                    self._truncated.add(cell_index)
                    limit = (f"{_mib(self.max_output_bytes)} per cell"
                             if total > self.max_output_bytes else
                             f"{_mib(self.max_notebook_output_bytes)} per notebook")
                    cell.outputs.append(note(f"output beyond {limit} dropped"))
                return None
        return super().process_message(msg, cell, cell_index)

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if msg["msg_type"] == "stream" and cell_index not in self._interrupted:
            seen = (self._stream_tail.get(cell_index, "") + msg["content"].get("text", ""))[-65536:]
            self._stream_tail[cell_index] = seen
            # a Pool worker that cannot unpickle its task dies and is replaced,
            # forever: the cell would wait for the whole timeout
            if UNPICKLABLE_PATTERN in seen and POOL_WORKER_FRAME in seen:
                self._interrupted.add(cell_index)
                self.log.warning("cell %d: spawn pool workers cannot unpickle their task; "
                                 "interrupting", cell_index)
                self._interrupter = asyncio.ensure_future(self._interrupt_while_running(cell_index))
        return out

    async def _interrupt_while_running(self, cell_index: int) -> None:
        """SIGINT the kernel, again every few seconds while the cell still runs: one
        interrupt ended the cell almost always, but a full CI run once saw the cell run
        on to its timeout after it (the diagnosis came, the interrupt did not end it)."""
        for _ in range(INTERRUPTS):
            if self._running != cell_index:
                return
            await ensure_async(self.km.interrupt_kernel())
            await asyncio.sleep(INTERRUPT_EVERY)


def _size(obj) -> int:
    return len(json.dumps(obj, default=str))


def _is_nbgrader(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade") or meta.get("solution") or meta.get("locked")
                or meta.get("task"))


class CapNotebook(Preprocessor):
    """At most ``max_bytes`` of a notebook (approximately: its JSON), whatever it holds.

    The parts a student controls are kept while they fit, nbgrader's cells first (a
    test's output is its feedback), then the others in order; what does not fit is
    replaced by a note in its place. Error outputs are always kept, shortened (they
    decide points). Cell and notebook metadata beyond a few KiB keep only what
    nbgrader and Jupyter need. With ``keep_graded_sources`` the sources of nbgrader's
    cells are never cut (the autograded notebook is graded from them); their size is
    bounded by the submission's size limit.
    """

    enabled = Bool(True).tag(config=True)
    max_bytes = Integer(32 << 20, help="Size the notebook is cut to.").tag(config=True)
    keep_graded_sources = Bool(True, help="Never cut the source of nbgrader's cells.").tag(
        config=True)
    keep_attachments = Bool(True, help="False: drop markdown attachments (a feedback page "
                            "shows no images, and its sanitizer fails on their references)"
                            ).tag(config=True)
    max_html_bytes = Integer(0, help="Markup (markdown cells, HTML outputs) kept in all "
                             "(0: no separate limit). A feedback page's sanitizer reads "
                             "about 200 KB of markup a second.").tag(config=True)
    max_metadata_bytes = Integer(16 << 10, help="Metadata kept per cell and for the "
                                 "notebook beyond what nbgrader needs.").tag(config=True)
    excerpt = 2000  # characters of a cut text kept, so the reader sees what it was

    def preprocess(self, nb, resources):
        self._trim_metadata(nb.metadata, ("kernelspec", "language_info", "nbgrader"))
        for cell in nb.cells:
            self._trim_metadata(cell.metadata, ("nbgrader", "tags", "deletable", "editable"))
        order = sorted(range(len(nb.cells)), key=lambda i: not _is_nbgrader(nb.cells[i]))
        self._markup_left = self.max_html_bytes or self.max_bytes
        # what is always kept: graded sources, errors, and each cell's frame
        left = self.max_bytes - _size(nb.metadata)
        for cell in nb.cells:
            left -= 200
            if self.keep_graded_sources and _is_nbgrader(cell):
                left -= len(cell.source)
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    shorten_error(out)
                    left -= _size(out)
        for i in order:
            left = self._fit(nb.cells[i], left)
        return nb, resources

    def _trim_metadata(self, meta, keep) -> None:
        if _size(meta) > self.max_metadata_bytes:
            for key in list(meta):
                if key not in keep:
                    del meta[key]

    def _fit(self, cell, left: int) -> int:
        over = f"over the grader's {_mib(self.max_bytes)} limit"
        if not (self.keep_graded_sources and _is_nbgrader(cell)):
            size, room = len(cell.source), left
            markdown = cell.cell_type == "markdown"
            if markdown and size > self._markup_left:
                room, over = min(left, self._markup_left), "over the grader's markup limit"
            if size > max(room, self.excerpt):  # a note would not be shorter than less
                keep = max(0, min(self.excerpt, room))
                text = f"the rest of this cell ({_mib(size - keep)}) is not kept: {over}"
                cell.source = cell.source[:keep] + (
                    f"\n# [grader: {text}]" if cell.cell_type == "code" else
                    f"\n\n**[grader: {text}]**")
                size = len(cell.source)
            if markdown:
                self._markup_left -= size
            left -= size
        if cell.get("attachments"):
            size = _size(cell.attachments)
            if size > left or not self.keep_attachments:
                del cell["attachments"]
                # a reference to a missing attachment stops nbconvert's markdown
                cell.source = cell.source.replace("attachment:", "dropped-attachment:")
                if size > left:
                    cell.source += f"\n\n**[grader: attachments ({_mib(size)}) not kept: {over}]**"
            else:
                left -= size
        if cell.cell_type != "code":
            return left
        kept, dropped = [], 0
        for out in cell.outputs:
            self._markup(out, kept)
            size = _size(out)
            if out.output_type == "error" or _is_note(out):
                kept.append(out)  # errors: counted already; notes: short
            elif size <= left:
                kept.append(out)
                left -= size
            elif out.output_type == "stream" and left > self.excerpt:
                text = str(out.get("text", ""))
                out.text = text[:left - 1000]
                if _size(out) > left:  # JSON escapes: up to 6 bytes a character
                    out.text = out.text[:len(out.text) * (left - 1000) // _size(out)]
                kept.append(out)
                dropped += len(text) - len(out.text)
                left -= _size(out)
            else:
                dropped += size
        if dropped:
            kept.append(note(f"{_mib(dropped)} of output not kept: over the grader's "
                             f"{_mib(self.max_bytes)} limit for the notebook"))
        cell.outputs = kept
        return left

    def _markup(self, out, kept: list) -> None:
        """An output's markup counts against the markup limit; beyond it the output
        keeps its other forms (plain text, images), with a note."""
        data = out.get("data", {})
        for mime in MARKUP:
            size = len(str(data.get(mime, "")))
            if not size:
                continue
            if size <= self._markup_left:
                self._markup_left -= size
            else:
                del data[mime]
                kept.append(note(f"{mime} output ({_mib(size)}) shown as text: over the "
                                 "grader's markup limit"))


class FeedbackCap(CapNotebook):
    """:class:`CapNotebook` for a feedback page, cut before sanitizing (bleach on
    megabytes of student text takes minutes): nothing of it is graded, and its
    attachments are dropped (the sanitizer fails on their references)."""

    max_bytes = Integer(8 << 20, help="Size the notebook is cut to.").tag(config=True)
    keep_graded_sources = Bool(False).tag(config=True)
    keep_attachments = Bool(False).tag(config=True)
    max_html_bytes = Integer(1 << 20, help="Markup kept in all: the sanitizer reads about "
                             "200 KB of it a second.").tag(config=True)
