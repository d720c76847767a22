"""A person at a terminal: `rebrand run` against a 500-conference `rebrand sandbox`
process shows the bar, only the lines that need them, and a summary whose undo command,
pasted, puts the Space back exactly. Off a terminal every event stays a JSON line."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import SANDBOX_ENV, write_config
from tests.terminal import SCREEN_ROWS, color_sequences, rows, run_on_terminal, screen_lines
from worker.decide import same_writable_state

COUNT = 500
# The venv's bin, where `rebrand` is installed: what a person's PATH would hold.
BIN = str(Path(sys.executable).parent)
_LABEL = re.compile(r"^(updated|unchanged)\s", re.MULTILINE)


@contextmanager
def sandbox_process(*flags: str) -> Iterator[str]:
    """`rebrand sandbox` in its own process on a free port; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "sandbox", "--port", "0", "--count", str(COUNT),
         *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        yield str(ready["url"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def conferences(url: str) -> dict[str, dict[str, Any]]:
    """Every conference the Space lists, by id, read over HTTP as any client would."""
    pair = f"{SANDBOX_ENV['SIGNALWIRE_PROJECT_ID']}:{SANDBOX_ENV['SIGNALWIRE_API_TOKEN']}"
    auth = "Basic " + base64.b64encode(pair.encode()).decode()
    found: dict[str, dict[str, Any]] = {}
    link: str | None = f"{url}/api/video/conferences?page_size=1000"
    while link:
        request = urllib.request.Request(link, headers={"Authorization": auth})  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            page = json.load(answer)
        found |= {c["id"]: c for c in page["data"]}
        next_link = page["links"].get("next")
        link = None if not next_link else (
            next_link if next_link.startswith("http") else url + next_link)
    return found


def _config(tmp_path: Path, url: str) -> Path:
    return write_config(tmp_path, url, concurrency=32)


def test_run_at_a_terminal_fits_a_screen_and_its_undo_command_pasted_restores_the_space(
    tmp_path: Path,
) -> None:
    with sandbox_process("--fault-500", "0.02", "--fault-429", "0.01") as url:
        before = conferences(url)
        run = run_on_terminal(["run", "--config", str(_config(tmp_path, url)),
                               "--backup-dir", str(tmp_path / "backups")],
                              SANDBOX_ENV, answer="yes", timeout_s=120)
        assert run.code == 0, run.output
        assert "\r\x1b[2K[" in run.output  # the bar was drawn
        shown = screen_lines(run.output)
        assert rows(shown) <= SCREEN_ROWS, "\n".join(shown)
        assert not any(line.startswith("{") for line in shown)
        assert any(line.startswith("Re-themed ") for line in shown), shown
        undo = [line for line in shown if line.startswith("Undo:")]
        assert len(undo) == 1, shown
        command = undo[0].removeprefix("Undo:").strip()
        assert command.startswith(f"rebrand restore --space {url} ")
        assert conferences(url) != before  # the run did change the Space

        # Pasted into a shell, as a person would, with the sandbox still up.
        pasted = run_on_terminal([], {**SANDBOX_ENV, "PATH": f"{BIN}:/usr/bin:/bin"},
                                 program=["/bin/sh", "-c", command], timeout_s=120,
                                 cwd=tmp_path)
        assert pasted.code == 0, pasted.output
        assert any(line.startswith("Restored ") for line in screen_lines(pasted.output))
        after = conferences(url)
    assert after.keys() == before.keys()
    for cid, old in before.items():
        # same_writable_state: exact, except a null display_name, which can only come
        # back as the name (PUT requires one; the API shows the name for a null).
        assert same_writable_state(after[cid], old), cid


def test_verbose_shows_every_conference_and_a_pipe_gets_every_event_as_json(
    tmp_path: Path,
) -> None:
    with sandbox_process() as url:
        config = str(_config(tmp_path, url))
        verbose = run_on_terminal(["run", "--config", config, "--yes", "-v", "--backup-dir",
                                   str(tmp_path / "v")], SANDBOX_ENV, timeout_s=120)
        piped = [subprocess.run(
            [sys.executable, "-m", "worker", "run", "--config", config, "--backup-dir",
             str(tmp_path / "p"), *flags], env={**SANDBOX_ENV, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=120, check=False,
            stdin=subprocess.DEVNULL) for flags in ([], ["-q"])]
    assert verbose.code == 0, verbose.output
    assert len(_LABEL.findall("\n".join(screen_lines(verbose.output)))) == COUNT
    for done in piped:
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        per_conference = [e for e in events if e["event"].startswith("conference.")]
        assert len(per_conference) == COUNT  # -q changes nothing off a terminal
        assert events[-1]["event"] == "run.summary"
        assert done.stderr == ""  # no progress bar off a terminal


def test_no_color_means_no_color_sequences_at_a_terminal(tmp_path: Path) -> None:
    with sandbox_process("--fault-500", "0.02") as url:
        config = str(_config(tmp_path, url))

        def run(*flags: str, **env: str) -> str:
            done = run_on_terminal(["plan", "--config", config, "--select", "room-000*",
                                    *flags], {**SANDBOX_ENV, **env}, timeout_s=120)
            assert done.code == 10, done.output
            return done.output

        colored = run()
        no_color_env = run(NO_COLOR="1")
        no_color_flag = run("--no-color")
    assert color_sequences(colored)  # swatches and labels, so the check can fail
    assert "48;5;" in colored  # a 256-color swatch: COLORTERM does not claim 24-bit
    assert color_sequences(no_color_env) == []
    assert color_sequences(no_color_flag) == []
    assert "#0A84FF" in no_color_env  # the hex is still there, without its swatch


def test_24_bit_swatches_when_the_terminal_says_it_has_them(tmp_path: Path) -> None:
    with sandbox_process() as url:
        done = run_on_terminal(["plan", "--config", str(_config(tmp_path, url)), "--select",
                                "room-0000*"], {**SANDBOX_ENV, "COLORTERM": "truecolor"})
    assert done.code == 10, done.output
    assert "\x1b[48;2;10;132;255m  " in done.output  # #0A84FF


def test_the_demo_at_a_terminal_ends_with_the_summary_within_a_screen(tmp_path: Path) -> None:
    run = run_on_terminal(["demo", "--backup-dir", str(tmp_path / "b")], {}, timeout_s=120,
                          cwd=tmp_path)
    assert run.code == 0, run.output
    shown = screen_lines(run.output)
    assert rows(shown) <= SCREEN_ROWS, "\n".join(shown)
    assert any(line.startswith("Re-themed ") for line in shown), shown
    assert any(line.startswith("Undo:    rebrand restore --space http://127.0.0.1:")
               for line in shown), shown
    assert any(line.startswith("Journal: ") for line in shown), shown
