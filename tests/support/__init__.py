"""Fixtures shared by the test modules: ``course`` (build an nbgrader course and
its submissions) and ``nbgrader_cli`` (run nbgrader and course-grade, bounded)."""
