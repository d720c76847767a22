"""`run` asks a person at a terminal before a big change, never a script; `validate`
checks the config and the credentials offline."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import SANDBOX_ENV, sandbox_in_thread, write_config
from tests.terminal import run_on_terminal
from worker.cli import confirm
from worker.cli.main import main

QUESTION = "Re-theme them now?"


def test_only_a_run_at_a_terminal_without_yes_plans_first() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert confirm.plan_first(yes=False, dry_run=False, stdin=Tty())
    assert not confirm.plan_first(yes=True, dry_run=False, stdin=Tty())
    assert not confirm.plan_first(yes=False, dry_run=True, stdin=Tty())
    assert not confirm.plan_first(yes=False, dry_run=False, stdin=io.StringIO())


@pytest.mark.parametrize(("count", "above", "ask"), [(51, 50, True), (50, 50, False),
                                                      (0, 0, False), (1, 0, True)])
def test_consent_is_needed_only_above_confirm_above(count: int, above: int, ask: bool) -> None:
    assert confirm.needs_consent(count, above) is ask


@pytest.mark.parametrize(("answer", "yes"), [("yes\n", True), (" yes ", True),
                                             ("y", False), ("Y", False), ("YES", False),
                                             ("no", False), ("", False), ("yess", False)])
def test_only_yes_goes_on_and_end_of_input_is_no(answer: str, yes: bool) -> None:
    out = io.StringIO()
    assert confirm.ask("go? ", out=out, read=lambda: answer) is yes
    # An answer cut by end of input (no newline echoed) still ends the question's line.
    assert out.getvalue() == ("go? " if answer.endswith("\n") else "go? \n")


def test_declining_at_a_terminal_sends_no_write_and_exits_4(tmp_path: Path) -> None:
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, answer="no")
        puts = sb.space.put_count
    assert QUESTION in run.output
    assert "of 70 listed conferences" in run.output
    assert run.code == 4
    assert puts == 0
    assert "nothing was changed" in run.output


def test_agreeing_at_a_terminal_runs(tmp_path: Path) -> None:
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, answer="yes")
        puts = sb.space.put_count
    assert QUESTION in run.output
    assert run.code == 0
    assert puts > 50


def test_at_or_below_confirm_above_nobody_is_asked(tmp_path: Path) -> None:
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url, confirm_above=70)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV)
        puts = sb.space.put_count
    assert QUESTION not in run.output
    assert run.code == 0
    assert puts > 50


def test_without_a_terminal_on_stdin_nobody_is_ever_asked(tmp_path: Path) -> None:
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url, confirm_above=0)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, stdin_tty=False)
        puts = sb.space.put_count
    assert QUESTION not in run.output
    assert run.code == 0
    assert puts > 50


def _validate(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker", "validate", "--config", str(config)],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
                          timeout=30, check=False)


def test_validate_passes_a_good_config_with_credentials_offline(tmp_path: Path) -> None:
    # validate works offline: it never contacts the Space.
    config = write_config(tmp_path, "https://rebrand-validate.signalwire.com",
                          select={"include": ["sales-*"]})
    done = _validate(config, SANDBOX_ENV)
    assert done.returncode == 0, done.stderr
    assert "is valid" in done.stdout
    assert SANDBOX_ENV["SIGNALWIRE_API_TOKEN"] not in done.stdout + done.stderr


def test_validate_reads_the_token_from_a_mounted_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://rebrand-validate.signalwire.com")
    token = tmp_path / "api-token"
    token.write_text("secret-from-file\n", encoding="utf-8")
    done = _validate(config, {"SIGNALWIRE_PROJECT_ID": "p",
                              "SIGNALWIRE_API_TOKEN_FILE": str(token)})
    assert done.returncode == 0, done.stderr
    assert "secret-from-file" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "missing credentials: set SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN"),
        ({"SIGNALWIRE_PROJECT_ID": "p"}, "set SIGNALWIRE_API_TOKEN"),
        ({"SIGNALWIRE_PROJECT_ID": "p", "SIGNALWIRE_API_TOKEN_FILE": "/nonexistent/token"},
         "SIGNALWIRE_API_TOKEN_FILE: cannot read /nonexistent/token"),
    ],
)
def test_validate_exits_2_when_credentials_are_missing(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    config = write_config(tmp_path, "https://rebrand-validate.signalwire.com")
    done = _validate(config, env)
    assert done.returncode == 2
    assert message in done.stderr


def test_validate_exits_2_on_a_bad_select_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "https://rebrand-validate.signalwire.com",
                          select={"include": ["ok-*", 3]})
    assert main(["validate", "--config", str(config)], SANDBOX_ENV) == 2
    assert "select.include[1]: 3 is not a glob" in capsys.readouterr().err


def test_ctrl_d_at_the_question_sends_nothing_and_says_so_on_a_line_of_its_own(
    tmp_path: Path,
) -> None:
    """End of input echoes no newline: the answer's line must still end before the
    next words, not run on after the question."""
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, keys=b"\x04")
        puts = sb.space.put_count
    assert run.code == 4, run.output
    assert puts == 0
    lines = run.output.replace("\r\n", "\n").split("\n")
    assert "rebrand: nothing was changed" in lines, lines[-3:]
    assert any(line.startswith("Re-theme them now?") for line in lines)


def test_with_stderr_redirected_the_question_is_asked_where_the_person_sees_it(
    tmp_path: Path,
) -> None:
    """`rebrand run 2>err.log` at a terminal: the question went to the file, and the run
    waited, silent, for an answer to a question nobody saw."""
    err = tmp_path / "err.log"
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, answer="yes",
                              stderr_to=err, timeout_s=15)
        puts = sb.space.put_count
    assert QUESTION in run.output
    assert run.code == 0, run.output + err.read_text()
    assert puts > 0
    assert QUESTION not in err.read_text()
    assert "\x1b" not in err.read_text()


def test_with_no_terminal_to_ask_on_a_big_run_stops_and_says_pass_yes(tmp_path: Path) -> None:
    """stdin a terminal, stdout and stderr both redirected: no one can see a question, so
    none is asked and nothing is sent; the log says how to go on."""
    err = tmp_path / "err.log"
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, stdout_pipe=True,
                              stderr_to=err, timeout_s=15)
        puts = sb.space.put_count
    said = err.read_text()
    assert run.code == 4, said
    assert puts == 0
    assert "--yes" in said and "nothing was changed" in said
    assert QUESTION not in said


def test_ctrl_c_at_the_question_ends_at_once_with_nothing_sent(tmp_path: Path) -> None:
    with sandbox_in_thread(count=70) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config), "--backup-dir",
                               str(tmp_path / "b")], SANDBOX_ENV, keys=b"\x03")
        puts = sb.space.put_count
    assert run.code == 130, run.output
    assert puts == 0
    assert "Traceback" not in run.output
    lines = run.output.replace("\r\n", "\n").split("\n")
    assert "rebrand: interrupted by SIGINT" in lines, lines[-3:]
