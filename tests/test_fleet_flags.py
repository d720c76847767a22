"""The flags `run` and `plan` accept act on a fleet too, or are refused before anything is
sent: journal retention is kept per target's folder, -q quiets the terminal, and --preview
(one Space's palettes) is refused with what to do instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from tests.terminal import run_on_terminal, screen_lines
from tests.test_fleet import NAMES, _config, _env, fleet_in_thread
from tests.test_output_failures import _SMALL_FILES
from worker.cli.main import main
from worker.errors import ExitCode


def test_retention_flags_keep_each_targets_folder_after_a_fleet_run_that_ended_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    backups = tmp_path / "backups"
    old = backups / "acme" / "20200101T000000Z-000000.jsonl"
    old.parent.mkdir(parents=True)
    old.write_bytes(b'{"type": "header", "format": 1, "command": "run"}\n')
    with fleet_in_thread(count=8) as fleet:
        config = _config(tmp_path, fleet)
        for _ in range(3):
            code = main(["run", "--config", str(config), "--backup-dir", str(backups),
                         "--log-format", "json", "--keep-last", "2", "--keep-days", "30",
                         "--compress-journals"], env=_env())
            assert code == ExitCode.OK, capsys.readouterr().err
    assert not old.exists(), "--keep-days: a journal older than 30 days stayed"
    for name in NAMES:
        names = sorted(p.name for p in (backups / name).iterdir())
        # --keep-last 2: the newest plain (the last run's own), the one before compressed.
        assert len(names) == 2, (name, names)
        assert sum(n.endswith(".jsonl") for n in names) == 1, (name, names)
        assert sum(n.endswith(".jsonl.gz") for n in names) == 1, (name, names)


def test_quiet_leaves_a_fleet_terminal_only_failures_and_summaries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with fleet_in_thread(count=8) as fleet:
        config = _config(tmp_path, fleet)
        args = ["run", "--config", str(config), "--backup-dir",
                str(tmp_path / "b"), "--log-format", "console"]
        assert main(args, env=_env()) == ExitCode.OK
        loud = capsys.readouterr().out
        assert main([*args, "-q"], env=_env()) == ExitCode.OK
        quiet = capsys.readouterr().out
    assert "conference.updated" in loud  # without -q, every conference has a line
    assert "conference." not in quiet
    assert "fleet.summary" in quiet
    assert quiet.count("run.summary") == len(NAMES)


def test_preview_on_a_fleet_plan_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with fleet_in_thread(count=8) as fleet:
        config = _config(tmp_path, fleet)
        preview = tmp_path / "p.html"
        code = main(["plan", "--config", str(config), "--preview", str(preview)],
                    env=_env())
        seen = sum(len(fleet[n].space.requests) for n in NAMES)
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert "--preview does not apply to a fleet config" in err
    assert "rebrand preview" in err  # what to do instead
    assert seen == 0
    assert not preview.exists()


def test_space_on_a_fleet_restore_is_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Each journal goes to the target its header names; --space cannot say otherwise."""
    with fleet_in_thread(count=4) as fleet:
        config = _config(tmp_path, fleet)
        backups = tmp_path / "backups"
        assert main(["run", "--config", str(config), "--backup-dir", str(backups),
                     "--log-format", "json"], env=_env()) == ExitCode.OK
        capsys.readouterr()
        before = sum(len(fleet[n].space.requests) for n in NAMES)
        code = main(["restore", "--config", str(config), "--space", fleet["acme"].url,
                     str(backups), "--log-format", "json"], env=_env())
        seen = sum(len(fleet[n].space.requests) for n in NAMES) - before
    assert code == ExitCode.BAD_INPUT
    assert "--space does not apply to a fleet config" in capsys.readouterr().err
    assert seen == 0


@pytest.mark.parametrize(("flag", "name"), [("--report", "report.json"),
                                            ("--summary-md", "plan.md")])
def test_a_fleet_output_the_disk_refuses_turns_its_exit_into_4(
    tmp_path: Path, flag: str, name: str,
) -> None:
    """README: a --report or --summary-md that cannot be written at the end turns exit 0,
    1 or 10 into 4; CI reads the file, and a fleet's is no different from one Space's."""
    with fleet_in_thread(count=8) as fleet:
        config = _config(tmp_path, fleet)
        done = subprocess.run(
            [sys.executable, "-c", _SMALL_FILES, "plan", "--config", str(config),
             flag, str(tmp_path / name), "--log-format", "json"],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
            env={**os.environ, **_env(), "PYTHONDONTWRITEBYTECODE": "1"})
    assert "Traceback" not in done.stderr
    assert done.returncode == ExitCode.ABORTED, done.stderr
    assert f"could not write {tmp_path / name} (File too large)" in done.stderr


_BAR_WIPE = "\r\x1b[2K"


@pytest.mark.parametrize("command", ["run", "restore"])
def test_a_fleet_at_a_terminal_draws_the_progress_bar_and_no_progress_leaves_it_out(
    tmp_path: Path, command: str,
) -> None:
    """`--no-progress` acts on a fleet as on one Space: without it the bar (every target's
    conferences counted together) is drawn on stderr and wiped before each log line."""
    backups = tmp_path / "b"
    with fleet_in_thread(count=30) as fleet:
        config = _config(tmp_path, fleet)
        first = ["run", "--config", str(config), "--yes", "--backup-dir", str(backups)]
        if command == "restore":
            assert main([*first, "--log-format", "json"], env=_env()) == ExitCode.OK
            args = ["restore", "--config", str(config), "--force", str(backups)]
        else:
            args = first
        drawn = run_on_terminal(args, _env(), stdin_tty=False)
        if command == "run":  # a second run with everything on theme still lists all 90
            args = [*first, "--backup-dir", str(tmp_path / "c")]
        else:  # the first restore put everything back: restore the second run's journals
            assert main([*first, "--log-format", "json", "--backup-dir",
                         str(tmp_path / "c")], env=_env()) == ExitCode.OK
            args = [*args[:-1], str(tmp_path / "c")]
        plain = run_on_terminal([*args, "--no-progress"], _env(), stdin_tty=False)
    assert (drawn.code, plain.code) == (0, 0), (drawn.output, plain.output)
    assert _BAR_WIPE in drawn.output
    assert "listed so far" in drawn.output
    # Wiped before each log line: no line left on the screen holds a piece of the bar.
    kept = screen_lines(drawn.output)
    assert any("conference." in line for line in kept)
    assert not any("listed so far" in line for line in kept)
    assert "conference." in plain.output
    assert _BAR_WIPE not in plain.output
    assert "listed so far" not in plain.output


def test_a_fleets_summary_md_states_the_exit_code_the_fleet_ends_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Each target's plan states that target's code; the file's first line states the
    fleet's, the one the process exits with (and a signal after it is written, too)."""
    summary = tmp_path / "plan.md"
    with fleet_in_thread(count=8) as fleet:
        config = _config(tmp_path, fleet)
        code = main(["plan", "--config", str(config), "--summary-md", str(summary),
                     "--log-format", "json"], env=_env())
    assert code == ExitCode.CHANGES_PENDING, capsys.readouterr().err
    text = summary.read_text()
    assert text.startswith(f"## rebrand fleet: exit {int(ExitCode.CHANGES_PENDING)}")
    for name in NAMES:
        assert f"### rebrand plan for target `{name}`:" in text
