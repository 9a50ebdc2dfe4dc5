"""nbgrader configuration for the course. The repository root is the course root:
source/<assignment>/ holds the instructor notebooks, release/<assignment>/ the
student versions (generated, committed), gradebook.db the grades (not committed)."""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "mp-course"

# The homework checks run each student's code in a fresh process with its own time
# limit (hwcheck/questions.py: at most 90 s, plus the 20 s backstop of
# hwcheck/limits.py) and report a deadlock in words. nbgrader's per-cell limit
# (default 30 s) must be longer than that, or it would interrupt a check before the
# check can explain the failure.
# It still bounds any cell that hangs in the kernel itself.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# The release is committed: keep it reproducible and free of execution output.
c.ClearOutput.enabled = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# The answer cells write hwN_solution.py next to the notebook when run. Never copy
# such a file into release/, and grade only what the submitted notebook writes.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "hw*_solution.py", "hw3_server.py"]

# Feedback pages show what students wrote; a teacher opens them in the session that
# controls the gradebook: no student script may run there (plain `nbgrader
# generate_feedback` and formgrader's button sanitize as `make grade` does).
# Plain `nbgrader autograde`, and so formgrader's Autograde button, grade as `make grade`
# does: student code runs in the grader's sandbox (own folder only, no network, limits),
# and the grade cells are scored by the course's checks run outside the kernel. Where the
# sandbox cannot work, autograding refuses, saying why (COURSE_GRADE_UNSANDBOXED=1 opts
# out, at the teacher's own risk).
try:
    from course_tools.grade.config import sandbox_autograde, sanitize_feedback
except ImportError as exc:
    # Fail closed: without the course's tools, autograding would run student code with
    # the teacher's rights and feedback would carry live student script.
    from nbgrader.preprocessors import NbGraderPreprocessor

    _why = (f"the course's tools cannot be imported ({exc}); set up the course first "
            "(make env, see README.md)")

    class CourseToolsMissing(NbGraderPreprocessor):
        def preprocess(self, nb, resources):
            raise RuntimeError(f"refusing to run: {_why}")

    c.Autograde.autograde_preprocessors = [CourseToolsMissing]
    c.GenerateFeedback.preprocessors = [CourseToolsMissing]
else:
    sanitize_feedback(c)
    sandbox_autograde(c)
