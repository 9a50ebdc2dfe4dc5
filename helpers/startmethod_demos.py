"""Helpers for the start-method demonstrations of lecture 00, section 4.

Keep a child's error output (its traceback on file descriptor 2) out of the
notebook page, pick the exception names and messages out of a traceback, and
run a short script with a time limit.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator


@contextlib.contextmanager
def child_stderr_to_file() -> Iterator[types.SimpleNamespace]:
    """Send the error output of children started inside the block to a file.

    A child inherits its parent's file descriptor 2 (stderr). In a notebook that
    descriptor is captured and shown on the page, so a child's traceback lands in
    whichever cell runs at that moment. Inside this block descriptor 2 of this
    process points at a temporary file instead; a child started in the block keeps
    writing there. Join the child inside the block. After the block, ``.text`` of
    the yielded object holds what was written.
    """
    if os.name == "posix":
        # the resource tracker is a helper process that spawn children connect to;
        # start it now, so that it does not inherit the temporary file as its stderr
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    captured = types.SimpleNamespace(text="")
    with tempfile.TemporaryFile() as file:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            file.seek(0)
            captured.text = file.read().decode(errors="replace")


# Python 3.13 colours tracebacks when FORCE_COLOR is set (ipykernel sets it, and its
# children inherit it): the colour codes are not part of the words
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def plain(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _COLOUR.sub("", text)


def error_names(text: str) -> list[str]:
    """The exception names that start a line of ``text`` (a traceback's last line
    is ``Name: message``), in order, without repeats."""
    text = plain(text)
    names: list[str] = []
    for line in text.splitlines():
        head = line.split(":", 1)[0].strip()
        if line[:1].isalpha() and head.isidentifier() and head.endswith(("Error", "Exception")):
            if head not in names:
                names.append(head)
    return names


def error_message(text: str, name: str) -> str:
    """The first sentence of the message of the last ``name`` exception in ``text``
    (a traceback), with its line breaks and indentation folded into single spaces;
    "" if ``name`` is not there."""
    text = plain(text)
    start = text.rfind(f"{name}:")
    if start < 0:
        return ""
    first, *rest = text[start + len(name) + 1 :].splitlines() or [""]
    lines = [first]
    for line in rest:  # a long message goes on in indented (or blank) lines
        if line.strip() and not line[:1].isspace():
            break
        lines.append(line)
    message = " ".join(" ".join(lines).split())
    end = message.find(". ")
    return message if end < 0 else message[: end + 1]


def run_script(path: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``python path`` (this Python) in the current folder, at most ``timeout`` s.

    Returns the finished process with its ``stdout`` and ``stderr`` as text; raises
    ``subprocess.TimeoutExpired`` (after killing the script) if it ran too long.
    """
    return subprocess.run(
        [sys.executable, path], capture_output=True, text=True, timeout=timeout, check=False
    )
