"""nbgrader's ``Execute`` preprocessor with the sandboxed kernel and the grader's bounds.

``BoundedExecute`` adds a wall-clock limit per notebook (cells after it are not
run and fail with a message), caps each cell's output, stops a cell early when
its spawn workers keep failing to unpickle a function defined in the notebook
(a Pool would wait forever), and notes in the worker's ``record`` the exception
that ended a notebook. It uses only public hooks of nbconvert/nbclient:
``preprocess``, ``preprocess_cell``, ``timeout_func`` and ``output``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time

import nbformat
from jupyter_core.utils import ensure_async
from nbgrader.preprocessors import Execute
from traitlets import Instance, Integer

from .records import ExecutionFailure, RunRecord
from .sandbox import SandboxKernelManager

UNPICKLABLE_PATTERN = "Can't get attribute"
POOL_WORKER_FRAME = "in worker"


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
            elif st.st_uid != 0:
                os.lchown(path, 0, 0)
    os.lchown(root, 0, 0)


class BoundedExecute(SandboxExecute):
    notebook_timeout = Integer(600, help="Wall-clock seconds for one notebook.").tag(config=True)
    max_output_bytes = Integer(8 << 20, help="Output kept per cell; more is dropped (the "
                               "grader's memory is at stake).").tag(config=True)
    record = Instance(RunRecord, allow_none=True,
                      help="Where the exception that ended a notebook is noted.").tag(config=True)

    def preprocess(self, nb, resources, km=None):
        self._deadline: float | None = None  # set at the first code cell: start-up is free
        self._cell: int | None = None
        self._stream_tail: dict[int, str] = {}
        self._output_bytes: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._interrupted: set[int] = set()
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
        self._cell = index
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        total = self._output_bytes.get(cell_index, 0) + size
        self._output_bytes[cell_index] = total
        if total > self.max_output_bytes:
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"[grader: output beyond {self.max_output_bytes >> 20} MiB dropped]\n"))
            return None
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
                asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
        return out
