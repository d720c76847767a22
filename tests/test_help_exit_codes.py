"""Each command's `--help` names the exit codes that command can return, each under the
meaning `ExitCode` and the README's table give it.

The truth is taken from outside the help: the codes from worker.errors.ExitCode, their
meanings from the README's exit-code table, and which codes a command can return from the
flags its parser accepts (a command that takes --deadline can exit 5)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from worker.cli import helptext
from worker.cli.main import build_parser
from worker.errors import ExitCode

README = Path(__file__).resolve().parents[1] / "README.md"
# A flag named as a cause; `--online: ...` or `--online, ...` (a qualifier: "with
# --online, ...") is not one.
FLAG = re.compile(r"--[a-z][a-z-]*[a-z]\b(?![:,])")


def _readme_table() -> dict[int, str]:
    """The README's exit-code table: code -> its meaning ("130 / 143" is two rows)."""
    text = README.read_text(encoding="utf-8").split("### Exit codes", 1)[1]
    rows: dict[int, str] = {}
    for line in text.split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"\d+( / \d+)*", cells[0]):
            for code in cells[0].split(" / "):
                rows[int(code)] = cells[1]
    return rows


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _help_exits(command: str) -> dict[int, str]:
    """The `exit codes:` section of the command's --help, as printed: code -> words."""
    text = _subparsers()[command].format_help().rsplit("exit codes:", 1)[1]
    exits: dict[int, str] = {}
    code: int | None = None
    for line in text.splitlines():
        head = re.match(r"^ +(\d+)  (.*)$", line)
        if head:
            code = int(head.group(1))
            assert code not in exits, f"{command}: exit {code} listed twice"
            exits[code] = head.group(2)
        elif line.strip() and code is not None:
            exits[code] += " " + line.strip()
    return exits


def _accepts(command: str, flag: str) -> bool:
    return flag in _subparsers()[command]._option_string_actions


def test_the_readme_table_holds_every_exit_code() -> None:
    assert set(_readme_table()) == {int(c) for c in ExitCode}


@pytest.mark.parametrize("command", list(helptext.COMMANDS))
def test_every_code_a_help_names_is_an_exit_code_of_the_readme(command: str) -> None:
    table = _readme_table()
    for code in _help_exits(command):
        assert code in {int(c) for c in ExitCode}, f"{command}: {code} is no ExitCode"
        assert code in table, f"{command}: {code} is not in the README's table"


@pytest.mark.parametrize("command", list(helptext.COMMANDS))
def test_a_flag_a_help_names_under_a_code_is_named_by_that_code_in_the_readme(
        command: str) -> None:
    """--deadline under 4, when it exits 5, is the drift this catches."""
    table = _readme_table()
    for code, words in _help_exits(command).items():
        for flag in FLAG.findall(words):
            rows = sorted(c for c, meaning in table.items() if flag in meaning)
            if rows:  # a flag the table does not mention at all is the help's own detail
                assert code in rows, (f"{command} --help names {flag} under exit {code}; "
                                      f"the README's table names it under {rows}")


@pytest.mark.parametrize("command", list(helptext.COMMANDS))
def test_a_command_lists_every_code_its_flags_can_cause(command: str) -> None:
    exits = _help_exits(command)
    causes = {
        "--deadline": ExitCode.DEADLINE,
        "--max-failures": ExitCode.ABORTED,
        "--dry-run": ExitCode.CHANGES_PENDING,
        "--grace-seconds": ExitCode.SIGINT,  # a command that runs a job drains on a signal
    }
    for flag, code in causes.items():
        if _accepts(command, flag):
            assert int(code) in exits, f"{command} takes {flag} but its help omits {int(code)}"
    if _accepts(command, "--grace-seconds"):
        assert int(ExitCode.SIGTERM) in exits
    if command == "plan":
        assert int(ExitCode.CHANGES_PENDING) in exits
    assert int(ExitCode.OK) in exits
    if command not in ("preview", "sandbox"):  # they read no config flags that can fail
        assert int(ExitCode.BAD_INPUT) in exits


@pytest.mark.parametrize("command", list(helptext.COMMANDS))
def test_the_deadline_is_named_only_under_its_own_code(command: str) -> None:
    for code, words in _help_exits(command).items():
        if "--deadline" in words or "deadline" in words.lower():
            assert code == ExitCode.DEADLINE or "fleet" in words, (command, code, words)
