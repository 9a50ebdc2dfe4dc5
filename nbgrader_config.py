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
from course_tools.grade.config import sanitize_feedback  # noqa: E402

sanitize_feedback(c)
