"""The package's layers (README, "How it is built") hold, and the check of them bites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's `worker` must win over the editable install's.
    env = {**os.environ, "PYTHONPATH": str(project), "NO_COLOR": "1"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_them(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "worker", tmp_path / "worker",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    theme = tmp_path / "worker" / "theme.py"
    theme.write_text(theme.read_text() + "\nimport worker.run.api  # planted\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "worker.theme -> worker.run.api" in result.stdout
    assert "BROKEN" in result.stdout


def test_importing_a_pure_module_loads_no_http_stack() -> None:
    code = "import worker.theme, sys; assert 'aiohttp' not in sys.modules, 'aiohttp loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
