"""``python -I -m hwcheck --fd N SPEC_JSON``: the checker process (:mod:`hwcheck.runner`).

Started as the package's ``__main__`` on purpose: multiprocessing's spawn (and
forkserver) children re-run the parent's main module as ``__mp_main__`` unless it is
a ``__main__`` module (CPython's ``multiprocessing/spawn.py``,
``_fixup_main_from_name``). As ``-m hwcheck.runner`` every child the check starts
re-imported the whole checker (every homework's tasks, the Manager machinery, psutil)
before it ran a line of the student's code; from here each child imports only what
its own target needs.
"""

import sys

from hwcheck.runner import main

sys.exit(main())
