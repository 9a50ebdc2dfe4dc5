"""The pip path (requirements.txt) and the conda/Binder path (environment.yml)
must name the same packages at the same versions."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.start_method_independent

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)")


def _pins(lines):
    pins = {}
    for line in lines:
        m = PIN.match(line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_requirements_are_all_pinned():
    lines = [
        ln.strip()
        for ln in (ROOT / "requirements.txt").read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    assert lines, "requirements.txt is empty"
    unpinned = [ln for ln in lines if not PIN.match(ln)]
    assert not unpinned, f"pin every requirement with ==: {unpinned}"


def test_environment_yml_matches_requirements():
    pip_pins = _pins((ROOT / "requirements.txt").read_text().splitlines())
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1].splitlines()
    conda_pins = _pins(pip_section)
    missing = sorted(set(pip_pins) - set(conda_pins))
    extra = sorted(set(conda_pins) - set(pip_pins))
    differ = sorted(p for p in set(pip_pins) & set(conda_pins) if pip_pins[p] != conda_pins[p])
    assert not (missing or extra or differ), (
        f"environment.yml drifted from requirements.txt: missing {missing}, "
        f"extra {extra}, different versions {differ}"
    )
    assert "-e ." in text, "environment.yml must install the course's own packages (-e .)"


def test_pip_environment_yml_python_is_supported():
    m = re.search(r"python=(\d+)\.(\d+)", (ROOT / "environment.yml").read_text())
    assert m and (int(m.group(1)), int(m.group(2))) >= (3, 10)
