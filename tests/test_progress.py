"""The terminal: a live progress bar above which the console log scrolls; off a terminal,
nothing but JSON lines."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import REPO, SANDBOX_ENV, sandbox_in_thread, write_config
from tests.terminal import as_seen, run_on_terminal
from worker.cli.progress import ProgressBar, Snapshot, render
from worker.outcome import Kind, Outcome
from worker.run.report import Reporter
from worker.sandbox import RunningSandbox
from worker.sandbox.space import SpaceState


def test_render_with_a_total_shows_counts_percent_rate_eta_and_failures() -> None:
    text = render(Snapshot(done=250, listed=600, failed=3, elapsed_s=10.0, total=1000))
    assert "[######" in text
    assert "250/1,000" in text
    assert "25.0%" in text
    assert "25.0/s" in text
    assert "ETA 0:30" in text
    assert "3 failed" in text


def test_render_without_a_total_shows_what_has_been_listed_and_no_eta() -> None:
    text = render(Snapshot(done=1200, listed=1700, failed=0, elapsed_s=4.0))
    assert "1,200 done" in text
    assert "300.0/s" in text
    assert "1,700 listed so far" in text
    assert "ETA" not in text


def test_render_never_wraps_the_terminal_line() -> None:
    snapshot = Snapshot(done=10**9, listed=10**9, failed=10**6, elapsed_s=1.0, total=10**10)
    assert len(render(snapshot, width=40)) <= 39


@pytest.mark.parametrize("width", [1, 12, 20, 30, 40, 50, 60, 70, 80])
@pytest.mark.parametrize("total", [1000, None])
def test_a_narrow_bar_leaves_parts_out_whole_and_keeps_the_count_and_failures(
    width: int, total: int | None
) -> None:
    """Cut mid-part, `ETA 0:30` read `ETA 0` and `250/1,000` read `2`; and below 80
    columns the failures were the first thing lost."""
    snapshot = Snapshot(done=250, listed=600, failed=3, elapsed_s=10.0, total=total)
    whole = render(snapshot, width=200).split("  ")
    text = render(snapshot, width=width)
    assert len(text) <= max(width - 1, 0)
    assert all(part in whole for part in text.split("  ") if text), (text, whole)
    if width >= 30:
        assert "3 failed" in text
        assert ("250/1,000" if total else "250 done") in text


def test_the_bar_redraws_at_most_every_interval_and_log_lines_wipe_it_first() -> None:
    now = [0.0]
    screen = io.StringIO()
    logs = io.StringIO()
    reporter = Reporter()
    bar = ProgressBar(reporter, screen, total=10, interval=0.5, clock=lambda: now[0],
                      width=lambda: 80).attach()
    for second in (0.1, 0.2, 0.7):
        now[0] = second
        reporter.counts[Kind.UPDATED] += 1
        bar(Outcome(Kind.UPDATED, "c", "n"))
    assert screen.getvalue().count("\r\x1b[2K") == 2  # drawn at 0.1 and 0.7, not 0.2
    drawn = render(Snapshot(3, 0, 0, 0.7, 10), 80)
    assert screen.getvalue().endswith(drawn)
    bar.log_stream(logs).write("a log line\n")
    assert screen.getvalue().endswith(drawn + "\r\x1b[2K")  # wiped before the line
    assert logs.getvalue() == "a log line\n"
    bar.close()
    assert bar not in reporter.listeners


def test_on_a_terminal_a_progress_bar_is_drawn_with_the_console_log(tmp_path: Path) -> None:
    with sandbox_in_thread(count=80, latency_s=0.002) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--yes", "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV)
    assert run.code == 0, run.output
    assert "\r\x1b[2K" in run.output
    assert " done " in run.output or "/s" in run.output
    assert "failed" in run.output
    assert "Re-themed" in run.output
    assert not run.output.lstrip().startswith("{")  # lines for a person, not JSON


def test_off_a_terminal_there_is_nothing_but_json_lines(tmp_path: Path) -> None:
    with sandbox_in_thread(count=40) as sb:
        config = write_config(tmp_path, sb.url)
        done = subprocess.run(
            [sys.executable, "-m", "worker", "run", "--config", str(config), "--backup-dir",
             str(tmp_path / "b")], env={**SANDBOX_ENV, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "run.summary"
    assert "\x1b" not in done.stdout


def test_the_demo_at_a_terminal_shows_the_bar_with_its_known_total(tmp_path: Path) -> None:
    run = run_on_terminal(["demo", "--count", "30", "--no-faults", "--config",
                           str(REPO / "config.example.yaml"), "--backup-dir",
                           str(tmp_path / "b")], SANDBOX_ENV)
    assert run.code == 0, run.output
    assert re.search(r"\d+/30 ", run.output)  # the total is known from the start
    assert re.search(r"Re-themed \d+ of 30 conferences", run.output)


def test_a_dumb_terminal_gets_no_bar_and_no_escape_sequence(tmp_path: Path) -> None:
    """TERM=dumb cannot erase a line: the bar's `ESC[2K` would show as garbage there."""
    with sandbox_in_thread(count=40, latency_s=0.002) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--yes", "--backup-dir",
                               str(tmp_path / "b")], {**SANDBOX_ENV, "TERM": "dumb"})
        writes = sb.space.put_count
    assert run.code == 0, run.output
    assert writes > 0
    assert "Re-themed" in run.output
    assert "\x1b" not in run.output, repr(run.output[:300])
    assert " done " not in run.output  # no bar drawn in its place


def test_with_stdout_piped_the_bar_fits_the_terminal_it_is_drawn_on(tmp_path: Path) -> None:
    """`rebrand run | jq` in a 40-column window: the bar goes to stderr, the terminal,
    and must fit its width (a line that wraps leaves a copy behind at every redraw)."""
    with sandbox_in_thread(count=40, latency_s=0.002) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--yes", "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, size=(40, 24),
                              stdout_pipe=True)
    assert run.code == 0, run.output
    drawings = [part for part in run.output.split("\r\x1b[2K")[1:] if "\n" not in part]
    assert any(" done " in part for part in drawings), repr(run.output)
    assert all(len(part) < 40 for part in drawings), drawings
    assert json.loads(run.stdout.splitlines()[-1])["event"] == "run.summary"


def _seen(output: str) -> list[str]:
    """The lines a person reads: colors gone, each carriage return applied."""
    return [as_seen(line) for line in output.replace("\r\n", "\n").split("\n")]


@contextmanager
def writes_held_after_the_first() -> Iterator[RunningSandbox]:
    """A Space whose first write goes through (a line or the bar shows it) and whose
    next ones stay in flight until the block ends (the server stops answering): a signal
    then always finds a write in its grace period, and no other line comes after it."""
    released = threading.Event()
    puts: list[str] = []

    def hold(_space: SpaceState, conference_id: str, _body: object) -> None:
        puts.append(conference_id)
        if len(puts) > 1:
            released.wait(timeout=20)

    with sandbox_in_thread(count=300, on_theme_fraction=0.0) as sb:
        sb.space.before_put = hold
        try:
            yield sb
        finally:
            released.set()


def test_ctrl_c_without_a_bar_says_stopping_on_a_line_of_its_own(tmp_path: Path) -> None:
    """The terminal echoes `^C` where the cursor is; with no bar to wipe, the stopping
    line ran on after it: `^Cstopping: ...`."""
    with writes_held_after_the_first() as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--yes", "-v",
                               "--no-progress", "--grace-seconds", "0.5", "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, prompt="updated ",
                              keys=b"\x03")
    assert run.code == 130, run.output
    seen = _seen(run.output)
    assert any(line.startswith("stopping: interrupted (SIGINT)") for line in seen), seen
    assert any(line.startswith("Stopped early: interrupted (SIGINT)") for line in seen)


def test_a_second_ctrl_c_says_in_words_what_may_have_landed_and_what_to_do(
    tmp_path: Path,
) -> None:
    with writes_held_after_the_first() as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--yes", "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, prompt="listed so far",
                              keys=b"\x03", more_keys=(("stopping:", b"\x03"),))
    assert run.code == 130, run.output
    seen = _seen(run.output)
    killed = [line for line in seen if "second" in line and not line.startswith("stopping:")]
    assert killed, seen
    assert killed[0].startswith("stopped at once:"), killed
    assert "run.killed" not in run.output and "reason=" not in run.output
    assert "may have landed" in killed[0]
    assert "run the same command again" in killed[0] and "rebrand restore" in killed[0]


def test_the_bar_follows_the_window_when_it_is_narrowed_mid_run(tmp_path: Path) -> None:
    with sandbox_in_thread(count=300, latency_s=0.05) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--yes", "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, size=(120, 30),
                              prompt="listed so far", more_keys=(("listed so far", (40, 30)),))
    assert run.code == 0, run.output
    drawings = [part for part in run.output.split("\r\x1b[2K")[1:]
                if "\n" not in part and part]
    assert len(drawings[0]) >= 40, drawings  # drawn for 120 columns
    assert len(drawings[-1]) < 40, drawings  # then for 40
