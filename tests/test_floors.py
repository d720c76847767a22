"""The floors: .ci/floors.txt pins every runtime dependency at pyproject.toml's lower
bound, so CI's run under those versions (.ci/run) tests the floors the project claims."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

FLOORS = REPO / ".ci" / "floors.txt"


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # The sandbox extra is what the tests serve from: its floor is tested with the rest.
    return [Requirement(text) for text in
            [*project["dependencies"], *project["optional-dependencies"]["sandbox"]]]


def _floor(requirement: Requirement) -> str | None:
    floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    return floors[0] if len(floors) == 1 else None


def _pinned() -> dict[str, str]:
    lines = FLOORS.read_text(encoding="utf-8").splitlines()
    pins = [re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][0-9.]*)", line)
            for line in lines if line.strip() and not line.startswith("#")]
    assert all(pins), f"{FLOORS}: every line is `name==version` or a comment"
    return {canonicalize_name(m.group(1)): m.group(2) for m in pins if m}


def test_every_runtime_dependency_declares_one_floor() -> None:
    missing = [str(r) for r in _runtime_requirements() if _floor(r) is None]
    assert missing == [], f"give each a single >= lower bound: {missing}"


def test_the_floors_file_pins_exactly_pyprojects_floors() -> None:
    declared = {canonicalize_name(r.name): _floor(r) for r in _runtime_requirements()}
    assert _pinned() == declared, (
        f"{FLOORS.name} and pyproject.toml disagree: set each pin to its >= bound")


def test_the_tenacity_floor_has_what_retry_imports() -> None:
    # worker/retry.py imports stop_before_delay, which tenacity gained in 8.3.0.
    assert "stop_before_delay" in (REPO / "worker" / "retry.py").read_text(encoding="utf-8")
    (tenacity,) = [r for r in _runtime_requirements() if r.name == "tenacity"]
    assert not tenacity.specifier.contains("8.2.3")
