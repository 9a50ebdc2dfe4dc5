"""The grader's sandboxed tests need the sandbox. Where it cannot work on this
machine they fail, saying why, so that a teacher never believes a grader was tested
when it was not; ``SANDBOX_TESTS=skip`` opts out explicitly (the tests are then
skipped, with the reason)."""

from __future__ import annotations

import functools
import os

import pytest

from course_tools.grade import sandbox

OPT_OUT = "SANDBOX_TESTS"


@pytest.fixture
def sandbox_required():
    why = sandbox.probe()
    if why is None:
        return
    if os.environ.get(OPT_OUT) == "skip":
        pytest.skip(f"no sandbox here ({why}); skipped because {OPT_OUT}=skip")
    pytest.fail(f"the grader's sandbox does not work on this machine: {why}. Fix that, or "
                f"run the tests with {OPT_OUT}=skip to skip the sandboxed grader tests.",
                pytrace=False)


@functools.lru_cache(maxsize=None)
def checkout_usable_by(uid: int) -> bool:
    """Whether user ``uid`` can run this checkout's Python and import its packages
    outside the jail. Not from a checkout under a folder only its owner may enter
    (a 0700 home): there the grader mounts what a kernel needs into the jail, but a
    test that runs code as another user *outside* the jail cannot."""
    import subprocess
    import sys

    try:
        done = subprocess.run(
            ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
             sys.executable, "-I", "-c", "import hwcheck"],
            cwd="/", capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def unusable_checkout(uid: int, who: str) -> str:
    return (f"{who} (uid {uid}) cannot run this checkout's Python outside the jail: the "
            "checkout is under a folder only its owner may enter; the jailed grading tests "
            "cover this checkout")
