"""Importable code for the course's lecture notebooks.

Worker functions live here, not in notebook cells: under the *spawn* and
*forkserver* start methods a child process re-imports its target by name
(``module.function``), and a notebook's ``__main__`` cannot be re-imported.
"""

from helpers.startmethod import START_METHOD_ENV, context, start_method

__all__ = ["START_METHOD_ENV", "context", "start_method"]
