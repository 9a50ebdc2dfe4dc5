"""One source for the dependencies: pyproject.toml names them (extras per audience),
requirements.lock pins the whole transitive set, and every install path (make env,
make test-python, conda/Binder's environment.yml) installs that lock."""

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.start_method_independent

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS = sorted(PROJECT["optional-dependencies"])
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:;\s*(.+))?$")


def _lock_entries():
    """{name: (version, marker or None, the names it is required by)} from the lock."""
    entries, current = {}, None
    for line in LOCK.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("# This file") or text.startswith("#    "):
            continue
        if not text.startswith("#"):
            m = PIN.match(text)
            assert m, f"requirements.lock: not an exact pin: {text!r}"
            current = canonicalize_name(m.group(1))
            entries[current] = (m.group(2), m.group(3), set())
        elif current is not None:
            via = text.lstrip("#").strip().removeprefix("via").strip()
            if via:
                entries[current][2].add(via)
    return entries


def _declared():
    """Every requirement in pyproject.toml: the base dependencies and each extra's."""
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in EXTRAS:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return reqs


def test_lock_says_how_to_regenerate_it():
    head = LOCK.read_text().splitlines()[:3]
    assert any("make lock" in line for line in head), head


def test_lock_pins_every_declared_dependency_within_its_range():
    lock = _lock_entries()
    assert len(lock) > 50, "requirements.lock should pin the transitive set, not only the direct one"
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is in pyproject.toml but not locked: run make lock"
        version = lock[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version} outside pyproject.toml's {req}: run make lock"
        )


def test_lock_has_no_direct_dependency_that_pyproject_dropped():
    lock = _lock_entries()
    direct = {n for n, (_, _, via) in lock.items() if any(v.startswith(PROJECT["name"]) for v in via)}
    declared = {canonicalize_name(r.name) for r in _declared()}
    assert direct == declared, (
        f"requirements.lock is stale (run make lock): locked as direct but not declared "
        f"{sorted(direct - declared)}, declared but not locked as direct {sorted(declared - direct)}"
    )


def test_every_install_path_installs_the_lock_with_every_extra():
    env_yml = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- -r requirements\.lock\s*$", env_yml, re.M), env_yml
    m = re.search(r"^\s*- -e \.\[([\w,]+)\]\s*$", env_yml, re.M)
    assert m and sorted(m.group(1).split(",")) == EXTRAS, (
        f"environment.yml should install -e .[{','.join(EXTRAS)}]"
    )
    make_env = (ROOT / "scripts" / "make-env.sh").read_text()
    assert "-r requirements.lock" in make_env and "--no-deps -e ." in make_env
    lock_sh = (ROOT / "scripts" / "lock.sh").read_text()
    assert sorted(re.findall(r"--extra (\w+)", lock_sh)) == EXTRAS


def test_environment_yml_python_is_supported():
    m = re.search(r"python=(\d+\.\d+)", (ROOT / "environment.yml").read_text())
    assert m, "environment.yml should pin a Python version"
    supported = Requirement(f"python{PROJECT['requires-python']}").specifier
    assert supported.contains(m.group(1) + ".0"), (m.group(1), PROJECT["requires-python"])


def test_license_field_matches_the_required_setuptools():
    """A PEP 639 license string (`license = "MIT"`) needs setuptools >= 77 to build;
    the older table form (`license = {text = "MIT"}`) works with any."""
    if not isinstance(PROJECT.get("license"), str):
        return
    setuptools = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]
                  if Requirement(r).name == "setuptools"]
    assert setuptools, "build-system.requires should name setuptools"
    lowest = [Version(s.version) for s in setuptools[0].specifier if s.operator in (">=", "==", "~=")]
    assert lowest and min(lowest) >= Version("77"), (
        f"license = {PROJECT['license']!r} needs setuptools>=77, build-system requires {setuptools[0]}"
    )


@pytest.mark.skipif(not Path(sys.prefix).name.startswith(".venv")
                    or Path(sys.prefix).parent != ROOT,
                    reason="runs in an environment that make env / make test-python built")
def test_this_environment_has_exactly_the_locked_versions():
    differ = {}
    for name, (version, marker, _) in _lock_entries().items():
        if marker and not Marker(marker).evaluate():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or Version(installed) != Version(version):
            differ[name] = (version, installed)
    assert not differ, f"locked vs installed: {differ} (run make env)"
