"""The course's own nbgrader configuration (``nbgrader_config.py`` at its root)."""

from __future__ import annotations

from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader


def load_course_config(course: str | Path) -> Config:
    path = Path(course, "nbgrader_config.py")
    if not path.is_file():
        return Config()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def course_db_url(course: str | Path, override: str | None = None) -> str:
    if override:
        return override
    c = Config()
    c.merge(load_course_config(course))
    c.CourseDirectory.root = str(Path(course).resolve())
    return CourseDirectory(config=c).db_url


def sanitize_feedback(c: Config) -> None:
    """Feedback pages carry what students wrote, and a teacher opens them in the
    browser session that controls the gradebook: clean them (:mod:`.sanitize`), and
    let the exporter sanitize outputs too."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    from .execute import FeedbackCap
    from .sanitize import SafeFeedback

    c.GenerateFeedback.preprocessors = [GetGrades, FeedbackCap, SafeFeedback,
                                        CSSHTMLHeaderPreprocessor]
    c.HTMLExporter.sanitize_html = True


def sandbox_autograde(c: Config) -> None:
    """Plain ``nbgrader autograde`` and formgrader's Autograde button run student code
    in the grader's sandbox, and score it by the grading run (:mod:`.plain`): nbgrader's
    own autograde steps, with its ``Execute`` replaced."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute, LimitOutput

    from .execute import CapNotebook
    from .plain import SandboxedAutograde

    steps = list(Autograde.class_traits()["autograde_preprocessors"].default())
    if Execute not in steps:
        raise RuntimeError("nbgrader's autograde steps no longer include Execute: "
                           "course_tools.grade.config.sandbox_autograde needs updating")
    steps = [SandboxedAutograde if step is Execute else step for step in steps]
    # the autograded notebook is bounded whatever the student put in it
    steps.insert(steps.index(LimitOutput) + 1 if LimitOutput in steps else len(steps),
                 CapNotebook)
    c.Autograde.autograde_preprocessors = steps
