"""An output file that cannot be written once the run is under way: the run's outcome
stands in the log, but CI reads that file, so a run that lost it does not exit 0."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    REPO,
    SANDBOX_ENV,
    json_events,
    sandbox_env,
    sandbox_in_thread,
    write_config,
)
from worker.cli.main import main
from worker.errors import ExitCode


@pytest.mark.parametrize(("flag", "name"), [("--report", "report.json"),
                                            ("--summary-md", "plan.md")])
def test_an_output_lost_mid_run_turns_success_into_exit_4_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, name: str,
) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def lose_the_directory(*_: Any) -> None:
        # After the up-front checks passed: the folder becomes a file (a full or
        # remounted volume looks the same to the writer: the write fails).
        if out.is_dir():
            shutil.rmtree(out)
            out.write_text("not a directory any more")

    with sandbox_in_thread(count=20, on_theme_fraction=0.0) as sandbox:
        sandbox.space.after_list_page = lose_the_directory
        code = main(["run", "--config", str(write_config(tmp_path, sandbox.url)),
                     "--backup-dir", str(tmp_path / "b"), "--log-format", "json",
                     flag, str(out / name)], env=SANDBOX_ENV)
        written = sandbox.space.put_count
    captured = capsys.readouterr()
    assert written == 20  # the run itself went as asked ...
    summary = [e for e in json_events(captured.out) if e["event"] == "run.summary"]
    assert summary and summary[0]["updated"] == 20
    assert code == ExitCode.ABORTED  # ... but its output is missing
    assert str(out / name) in captured.err or str(out) in captured.err
    assert "Traceback" not in captured.err


# A child whose files may grow to this many bytes: a write past it fails with EFBIG, as a
# full disk fails with ENOSPC (SIGXFSZ ignored, so the write fails instead of killing it).
_SMALL_FILES = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
os.execv(sys.executable, [sys.executable, "-m", "worker", *sys.argv[1:]])
"""


def _on_a_small_disk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SMALL_FILES, *args], capture_output=True,
                          text=True, env=sandbox_env(PYTHONDONTWRITEBYTECODE="1"),
                          cwd=REPO, timeout=60, check=False)


def test_a_preview_that_cannot_be_written_is_exit_4_naming_the_file(tmp_path: Path) -> None:
    out = tmp_path / "preview.html"
    done = _on_a_small_disk("preview", "--config",
                            str(write_config(tmp_path, "http://127.0.0.1:9")),
                            "--out", str(out))
    assert "Traceback" not in done.stderr
    assert done.returncode == ExitCode.ABORTED, done.stderr
    assert f"could not write {out} (File too large)" in done.stderr


@pytest.mark.parametrize(("flag", "name"), [("--report", "report.json"),
                                            ("--summary-md", "plan.md")])
def test_an_output_the_disk_refuses_is_named_in_the_error(
    tmp_path: Path, flag: str, name: str,
) -> None:
    with sandbox_in_thread(count=20, on_theme_fraction=0.0) as sandbox:
        done = _on_a_small_disk("plan", "--config", str(write_config(tmp_path, sandbox.url)),
                                flag, str(tmp_path / name))
    assert "Traceback" not in done.stderr
    assert done.returncode == ExitCode.ABORTED, done.stderr
    assert f"could not write {tmp_path / name} (File too large)" in done.stderr
