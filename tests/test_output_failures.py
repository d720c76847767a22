"""An output file that cannot be written once the run is under way: the run's outcome
stands in the log, but CI reads that file, so a run that lost it does not exit 0."""

from __future__ import annotations

import json
import os
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


COUNT = 300


def _run_argv(config: Path, tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "worker", "run", "--config", str(config),
            "--backup-dir", str(tmp_path / "b"), "--report", str(tmp_path / "report.json")]


def _written(tmp_path: Path) -> int:
    [journal] = (tmp_path / "b").glob("*.jsonl")
    return sum(1 for line in journal.read_bytes().splitlines()
               if json.loads(line).get("type") == "written")


def test_a_stdout_reader_that_goes_away_ends_only_the_writing_to_stdout(
    tmp_path: Path,
) -> None:
    """`rebrand run | head -1`: the run goes on to its normal end (journal, report, exit
    code), and one line on stderr says stdout closed and where the events are."""
    with sandbox_in_thread(count=COUNT, on_theme_fraction=0.0, latency_s=0.01) as sandbox:
        config = write_config(tmp_path, sandbox.url)
        with subprocess.Popen(_run_argv(config, tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=sandbox_env(), cwd=REPO) as child:
            assert child.stdout is not None and child.stderr is not None
            assert child.stdout.readline()  # as `head -1` does, then it goes away
            child.stdout.close()
            err = child.stderr.read().decode()
            code = child.wait(timeout=60)
        written = sandbox.space.put_count
    assert "Traceback" not in err
    assert code == 0, err
    assert written == COUNT
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["updated"] == COUNT
    assert _written(tmp_path) == COUNT
    [notice] = [line for line in err.splitlines() if "stdout" in line]
    assert str(tmp_path / "report.json") in notice and str(tmp_path / "b") in notice


@pytest.mark.parametrize("closed", ["<&-", ">&-", "2>&-"])
def test_a_run_with_a_closed_standard_stream_ends_as_it_would_without_it(
    tmp_path: Path, closed: str,
) -> None:
    """A closed stdin is no terminal (no question); a closed stdout or stderr loses only
    what would have gone there: the run, its journal, report and exit code stand."""
    with sandbox_in_thread(count=20, on_theme_fraction=0.0) as sandbox:
        config = write_config(tmp_path, sandbox.url)
        done = subprocess.run(["sh", "-c", f'exec "$0" "$@" {closed}',
                               *_run_argv(config, tmp_path)], capture_output=True,
                              env=sandbox_env(), cwd=REPO, timeout=60, check=False)
        written = sandbox.space.put_count
    err = done.stderr.decode()
    assert "Traceback" not in err
    assert done.returncode == 0, err
    assert written == 20
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["updated"] == 20
    if closed == ">&-":
        assert "stdout" in err and str(tmp_path / "report.json") in err
    else:
        assert [e for e in json_events(done.stdout.decode()) if e["event"] == "run.summary"]


def test_bad_input_with_stderr_closed_still_exits_2() -> None:
    done = subprocess.run(["sh", "-c", 'exec "$0" "$@" 2>&-', sys.executable, "-m",
                           "worker", "run", "--config", "/nonexistent/rebrand.yaml"],
                          capture_output=True, env=sandbox_env(), cwd=REPO, timeout=60,
                          check=False)
    assert done.returncode == 2, done.stdout


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


@pytest.mark.parametrize(("command", "code"), [("--version", 1), ("validate", 0)])
def test_a_command_whose_own_output_meets_a_closed_pipe_says_so_without_a_traceback(
    tmp_path: Path, command: str, code: int,
) -> None:
    """`rebrand validate | head -0`: the pipe's reader is gone before the first line. An
    output that was all the command made (`--version`) is exit 1; validate's verdict is
    its exit code, and stands."""
    read, write = os.pipe()
    os.close(read)
    config = ["--config", str(write_config(tmp_path, "http://127.0.0.1:9"))]
    try:
        done = subprocess.run([sys.executable, "-m", "worker", command,
                               *(config if command == "validate" else [])],
                              stdout=write, stderr=subprocess.PIPE, text=True,
                              env=sandbox_env(), cwd=REPO, timeout=60, check=False)
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr
    assert done.returncode == code, done.stderr
    assert len([line for line in done.stderr.splitlines() if "stdout closed" in line]) == 1


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("flag", ["--report", "--summary-md", "--metrics-file"])
def test_an_output_whose_folder_takes_no_new_file_is_exit_2_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
) -> None:
    """README, Configuration: an output path that could not be written is exit 2 before
    anything is sent. /proc passes a permission check (as root, everything does) but
    takes no new file: only trying to create one tells."""
    path = "/proc/rebrand-output"
    with sandbox_in_thread(count=5, on_theme_fraction=0.0) as sandbox:
        code = main(["run", "--config", str(write_config(tmp_path, sandbox.url)),
                     "--backup-dir", str(tmp_path / "b"), "--log-format", "json",
                     flag, path], env=SANDBOX_ENV)
        written = sandbox.space.put_count
    err = capsys.readouterr().err
    assert (code, written) == (ExitCode.BAD_INPUT, 0)
    assert f"{flag} {path}" in err
    assert "Traceback" not in err


def _lose_after_listing(out: Path) -> Any:
    """A sandbox hook: after the up-front checks passed, `out` (a folder) becomes a file."""
    def lose(*_: Any) -> None:
        if out.is_dir():
            shutil.rmtree(out)
            out.write_text("not a directory any more")
    return lose


def test_a_markdown_summary_lost_after_the_report_is_written_rewrites_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--report is written saying 0, then --summary-md cannot be: the process exits 4,
    so the report is written again saying 4 and naming the lost file, and a signal from
    then on exits 4 too (the code settled is the rewritten report's)."""
    from worker.cli import entry

    monkeypatch.setattr(entry, "_settled", [])
    out, report = tmp_path / "out", tmp_path / "report.json"
    out.mkdir()
    with sandbox_in_thread(count=20, on_theme_fraction=0.0) as sandbox:
        sandbox.space.after_list_page = _lose_after_listing(out)
        code = main(["run", "--config", str(write_config(tmp_path, sandbox.url)),
                     "--backup-dir", str(tmp_path / "b"), "--log-format", "json",
                     "--report", str(report), "--summary-md", str(out / "plan.md")],
                    env=SANDBOX_ENV)
    capsys.readouterr()
    document = json.loads(report.read_text(encoding="utf-8"))
    assert code == ExitCode.ABORTED
    assert document["exit_code"] == code
    assert document["summary"]["updated"] == 20
    assert [str(out / "plan.md") in lost for lost in document["outputs_lost"]] == [True]
    assert entry._settled[-1][0] == code


def test_a_fleets_markdown_summary_lost_after_its_report_rewrites_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same for a fleet: its report says the code the fleet exits with."""
    from tests.test_fleet import _config, _env, fleet_in_thread
    from worker.cli import entry

    monkeypatch.setattr(entry, "_settled", [])
    out, report = tmp_path / "out", tmp_path / "report.json"
    out.mkdir()
    with fleet_in_thread(count=10) as fleet:
        fleet["acme"].space.after_list_page = _lose_after_listing(out)
        code = main(["run", "--config", str(_config(tmp_path, fleet)), "--backup-dir",
                     str(tmp_path / "b"), "--log-format", "json", "--report", str(report),
                     "--summary-md", str(out / "plan.md")], env=_env())
    capsys.readouterr()
    document = json.loads(report.read_text(encoding="utf-8"))
    assert code == ExitCode.ABORTED
    assert document["exit_code"] == code
    assert {t["exit_code"] for t in document["targets"].values()} == {0}
    assert [str(out / "plan.md") in lost for lost in document["outputs_lost"]] == [True]
    assert entry._settled[-1][0] == code


def test_a_report_that_cannot_be_rewritten_with_the_new_code_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report is written saying 0, the next output is lost (exit 4), and the report
    cannot be written again: it is removed rather than left saying 0, and no code stays
    settled for a signal (no file on disk states one)."""
    from worker.cli import entry
    from worker.cli.commands import write_all_stating

    monkeypatch.setattr(entry, "_settled", [])
    report, lost = tmp_path / "report.json", tmp_path / "plan.md"
    stated: list[tuple[int, tuple[str, ...]]] = []

    def write_report(code: int, outputs_lost: Any) -> None:
        if stated:
            raise OSError(28, "No space left on device")
        stated.append((code, tuple(outputs_lost)))
        report.write_text(json.dumps({"exit_code": code}))

    def lose(_code: int, _lost: Any) -> None:
        raise OSError(30, "Read-only file system")

    code, failures = write_all_stating([(report, write_report), (lost, lose)], 0)
    assert code == ExitCode.ABORTED
    assert [str(lost) in failures[0], str(report) in failures[1]] == [True, True]
    assert stated == [(0, ())]
    assert not report.exists()
    assert entry._settled == []


def test_a_demo_report_the_disk_refuses_is_said_and_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo writes --report as `run` does: a disk that refuses it is an error line
    naming the file and exit 4 (the demo's work stands), not a traceback."""
    import errno

    from worker.cli import demo

    def full_disk(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(demo, "write_report", full_disk)
    report = tmp_path / "report.json"
    code = main(["demo", "--count", "10", "--no-faults", "--log-format", "json",
                 "--backup-dir", str(tmp_path / "b"), "--report", str(report)], env={})
    err = capsys.readouterr().err
    assert code == ExitCode.ABORTED
    assert f"could not write {report} (No space left on device)" in err
    assert "Traceback" not in err


def test_a_markdown_summary_written_after_the_report_is_lost_says_the_plan_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """--report cannot be written, --summary-md can: it states exit 4 (what the process
    exits with) and why, not that the plan did not finish: its counts are whole."""
    out, summary = tmp_path / "out", tmp_path / "plan.md"
    out.mkdir()
    with sandbox_in_thread(count=20, on_theme_fraction=0.0) as sandbox:
        sandbox.space.after_list_page = _lose_after_listing(out)
        code = main(["plan", "--config", str(write_config(tmp_path, sandbox.url)),
                     "--log-format", "json", "--report", str(out / "report.json"),
                     "--summary-md", str(summary)], env=SANDBOX_ENV)
    capsys.readouterr()
    assert code == ExitCode.ABORTED
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### rebrand plan: 20 conference(s) would change\n")
    assert "**Exit 4: the plan finished, but could not write " in text
    assert "/out/report.json" in text  # escaped for Markdown: its folder's `_` too
    assert "did not finish" not in text
    assert "| 20 | 20 |" in text  # the counts, whole
