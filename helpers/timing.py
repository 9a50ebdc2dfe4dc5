"""Measuring honestly: repeated runs summarised by median and spread, and
timestamped spans for timeline (Gantt) pictures.

Timestamps use ``time.perf_counter()``; on Linux, macOS and Windows it reads a
system-wide monotonic clock, so stamps taken in different processes on one
machine can be drawn on one time axis.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable


def now() -> float:
    """Seconds on the clock shared by every process of this machine."""
    return time.perf_counter()


@dataclass(frozen=True)
class Span:
    """Something that ran on ``lane`` (a thread, process or worker) from start to end."""

    lane: str
    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Stats:
    """Summary of repeated measurements, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def __str__(self) -> str:
        # milliseconds; microseconds when the median is under 1 ms (not "median 0.0 ms")
        scale, unit, digits = (1e3, "ms", 1) if self.median >= 1e-3 else (1e6, "µs", 0)
        return (
            f"median {self.median * scale:.{digits}f} {unit} "
            f"(min {self.low * scale:.{digits}f}, max {self.high * scale:.{digits}f}, n={len(self.samples)})"
        )


def measure(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> Stats:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = now()
        fn()
        samples.append(now() - start)
    return Stats(tuple(samples))


def machine_summary(method: str | None = None) -> str:
    """One line to print beside every measurement: cores, Python, start method."""
    from courselib.startmethod import start_method

    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()}, start method {method or start_method()}"
    )
