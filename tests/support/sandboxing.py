"""The grader's sandboxed tests need the sandbox. Where it cannot work on this
machine they fail, saying why, so that a teacher never believes a grader was tested
when it was not; ``SANDBOX_TESTS=skip`` opts out explicitly (the tests are then
skipped, with the reason)."""

from __future__ import annotations

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
