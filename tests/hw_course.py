"""Transitional: the homework tests' names, now from tests/support (the one course
builder and the one nbgrader CLI wrapper). Removed once every user imports them there."""

from tests.support.course import (  # noqa: F401
    NO_MAGIC,
    ROOT,
    SAMPLES,
    make_course,
    sample_text,
    solution_text,
    submission,
    submit,
    submit_via_exchange,
)
from tests.support.nbgrader_cli import BIN, nbgrader, scores, strip_ansi  # noqa: F401
