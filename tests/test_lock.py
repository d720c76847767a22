"""The lock: uv.lock matches pyproject.toml, requirements.lock (what the image installs,
every file with its hash) is uv.lock's runtime set, and that set is lean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

UV = Path(sys.executable).parent / "uv"
RELOCK = "the lock no longer matches pyproject.toml: run .ci/lock and commit uv.lock and requirements.lock"


def _uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(UV), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^ ;\\\n]+)", text, flags=re.M))


def test_uv_lock_matches_pyproject() -> None:
    done = _uv("lock", "--check")
    assert done.returncode == 0, f"{RELOCK}\n{done.stderr}"


def test_requirements_lock_is_the_exported_runtime_set() -> None:
    done = _uv("export", "--frozen", "--no-dev", "--no-emit-project", "--format",
               "requirements-txt", "--quiet")
    assert done.returncode == 0, done.stderr

    def body(text: str) -> list[str]:  # the header names the output file; the rest must agree
        return [line for line in text.splitlines() if not line.startswith("#")]

    committed = (REPO / "requirements.lock").read_text(encoding="utf-8")
    assert body(done.stdout) == body(committed), RELOCK


def test_every_locked_requirement_carries_hashes() -> None:
    text = (REPO / "requirements.lock").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[a-z0-9])", text.split("\n", 2)[2].strip())
    assert len(entries) == len(_pins(text)) > 5
    for entry in entries:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_runtime_set_leaves_the_sandbox_validator_out() -> None:
    pins = _pins((REPO / "requirements.lock").read_text(encoding="utf-8"))
    assert {"aiohttp", "anyio", "tenacity", "structlog", "orjson", "pyyaml"} <= pins.keys()
    heavy = {"openapi-core", "pydantic", "pydantic-core", "werkzeug", "jsonschema", "rpds-py"}
    assert not heavy & pins.keys()


def test_the_check_fails_when_pyproject_gains_a_dependency(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(REPO / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('"orjson>=3.9",', '"orjson>=3.9",\n  "rich>=13",', 1),
                         encoding="utf-8")
    assert "rich>=13" in pyproject.read_text(encoding="utf-8")
    done = _uv("lock", "--check", "--offline", cwd=tmp_path)
    assert done.returncode != 0


def test_the_dockerfile_installs_from_the_lock_with_hashes_required() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements.lock" in dockerfile
    assert re.search(r"pip install --require-hashes [^\n]*-r requirements.lock", dockerfile)
    # rebrand's own wheel is installed without dependencies: they are exactly the lock's.
    assert "pip install --no-deps --no-index" in dockerfile
    assert "pip check" in dockerfile
