"""What the sandbox and the executor report back about one submission.

The worker creates one :class:`RunRecord` per submission and hands it to the
kernel manager and the executor as configuration (their ``record`` trait), so
nothing travels through module state: the kernel manager notes every kernel it
started (its cgroups, its init's status file), the executor every exception
that ended a notebook. The worker reads the record once grading is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class KernelRun:
    """One kernel started for the submission."""

    cgroups: list[Path] = field(default_factory=list)  # its memory and pids cgroups
    status_file: str = ""  # where its sandbox init writes what was left running


@dataclass
class ExecutionFailure:
    """An exception that stopped the execution of one notebook."""

    notebook: str
    cell_index: int | None  # the cell running when it happened (None: before the first)
    error: BaseException


@dataclass
class RunRecord:
    kernels: list[KernelRun] = field(default_factory=list)
    failures: list[ExecutionFailure] = field(default_factory=list)

    @property
    def cgroups(self) -> list[Path]:
        return [cg for k in self.kernels for cg in k.cgroups]

    def __deepcopy__(self, memo) -> RunRecord:
        # traitlets deep-copies every configuration value it assigns; a record
        # must stay the one object the worker reads afterwards
        return self
