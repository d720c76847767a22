"""An earlier run's --report and --summary-md never stand for a run that ends before it
writes its own (a config error, a signal while the command line loads): CI reads those
files for the run's exit code, and the earlier one said 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import rebrand, sandbox_env, write_config
from worker.cli import entry
from worker.errors import ExitCode

STALE_REPORT = '{"exit_code": 0, "summary": {"failed": 0}}\n'
STALE_SUMMARY = "### rebrand plan: nothing to change (exit 0)\n"


def _earlier_run(tmp_path: Path) -> tuple[Path, Path]:
    report, summary = tmp_path / "report.json", tmp_path / "plan.md"
    report.write_text(STALE_REPORT)
    summary.write_text(STALE_SUMMARY)
    return report, summary


def _catches_sigterm(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.anyio
async def test_a_config_error_leaves_no_earlier_report(tmp_path: Path) -> None:
    report, summary = _earlier_run(tmp_path)
    config = tmp_path / "bad.yaml"
    config.write_text('space: http://127.0.0.1:9\ntheme: {light: {primary: "#12"}}\n')
    ran = await rebrand("run", "--config", config, "--report", report,
                        "--summary-md", summary, env=sandbox_env())
    assert ran.code == ExitCode.BAD_INPUT, ran.err
    assert not report.exists()
    # The summary is this run's own: the error, and what to change.
    assert summary.read_text() != STALE_SUMMARY
    assert "#12" in summary.read_text()


def test_a_signal_while_the_command_line_loads_leaves_no_earlier_report(
        tmp_path: Path) -> None:
    report, summary = _earlier_run(tmp_path)
    config = write_config(tmp_path, "http://127.0.0.1:9")
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "run", "--config", str(config),
         f"--report={report}", "--summary-md", str(summary),
         "--backup-dir", str(tmp_path / "b")],
        env=sandbox_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The handler is in from the console script's first lines; the command line takes a
    # few hundred milliseconds more to load, and the signal comes within one of them.
    deadline = time.monotonic() + 20
    while not _catches_sigterm(process.pid):
        assert time.monotonic() < deadline, "the handler never came"
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert not report.exists()
    # Removed, or (had the command line loaded first) this run's own, saying it stopped.
    assert not summary.exists() or summary.read_text() != STALE_SUMMARY


def test_only_the_flags_the_command_takes_and_only_regular_files_are_removed(
        tmp_path: Path) -> None:
    report, summary = _earlier_run(tmp_path)
    kept = tmp_path / "kept.json"
    kept.write_text(STALE_REPORT)
    linked = tmp_path / "linked.json"
    linked.symlink_to(kept)
    # `validate` takes no --report: whatever it names is not this command's output.
    entry._clear_earlier_outputs(["validate", "--report", str(kept)])
    # A symlink points at a file someone else chose.
    entry._clear_earlier_outputs(["run", "--report", str(linked)])
    assert kept.read_text() == STALE_REPORT and linked.is_symlink()
    # restore takes --report but not --summary-md.
    entry._clear_earlier_outputs(["restore", "j.jsonl", f"--summary-md={summary}"])
    assert summary.exists()
    entry._clear_earlier_outputs(["plan", "--config", "c.yaml", f"--report={report}",
                                  "--summary-md", str(summary)])
    assert not report.exists() and not summary.exists()


def test_once_the_command_line_has_cleared_them_a_signal_removes_nothing(
        tmp_path: Path) -> None:
    # From then on the files at those paths are this run's own.
    report, _summary = _earlier_run(tmp_path)
    entry.outputs_cleared()
    entry._clear_earlier_outputs(["run", "--report", str(report)])
    assert report.read_text() == STALE_REPORT


@pytest.mark.anyio
@pytest.mark.parametrize("which", ["config", "journal", "token file", "other output"])
async def test_an_output_that_names_an_input_or_another_output_is_refused_and_removes_nothing(
        tmp_path: Path, which: str) -> None:
    """--report pointing at the journal would remove the only copy of the pre-images as
    the restore starts (and overwrite it at the end): exit 2, every file left as it was."""
    config = write_config(tmp_path, "http://127.0.0.1:9")
    journal = tmp_path / "run.jsonl"
    journal.write_text('{"type": "header"}\n')
    token = tmp_path / "token"
    token.write_text("PTq7Zk2Wm9Xv4Rb8Nc3Ld6Hf")
    summary = tmp_path / "plan.md"
    summary.write_text(STALE_SUMMARY)
    env = sandbox_env()
    if which == "config":
        args: list[str | Path] = ["run", "--config", config, "--report", config]
        kept = config
    elif which == "journal":
        args = ["restore", journal, "--space", "http://127.0.0.1:9", f"--report={journal}"]
        kept = journal
    elif which == "token file":
        env = {**sandbox_env(SIGNALWIRE_API_TOKEN_FILE=str(token))}
        del env["SIGNALWIRE_API_TOKEN"]
        args = ["run", "--config", config, "--report", token]
        kept = token
    else:
        args = ["plan", "--config", config, "--report", summary, "--summary-md", summary]
        kept = summary
    before = kept.read_bytes()
    ran = await rebrand(*args, env=env)
    assert ran.code == ExitCode.BAD_INPUT, ran.err
    assert "give the output a path of its own" in ran.err
    if which == "other output":
        # --summary-md takes the error, as on any config error: nothing else wrote it.
        assert "give the output a path of its own" in kept.read_text()
    else:
        assert kept.read_bytes() == before


def test_a_signal_while_loading_leaves_an_output_path_the_command_line_also_reads(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    before = config.read_bytes()
    # The command line would refuse it; a signal before it is read must not remove it.
    entry._clear_earlier_outputs(["run", "--config", str(config), "--report", str(config)])
    entry._clear_earlier_outputs(["run", f"--config={config}", f"--report={config}"])
    assert config.read_bytes() == before
