"""The README against the real CLI: operators type what it shows, so every `rebrand` command
it shows must take the flags it is shown with, the flag table's "which commands" must be
true, the help's own examples must be commands that run, and the environment variables
and config keys it names must be ones rebrand reads.

The truth is the parser (`build_parser`), the config's key lists and the worker's source,
never a copy of them here."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from worker.cli import helptext
from worker.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
COMMANDS = ("run", "plan", "restore", "validate", "preview", "sandbox", "demo")
FLAG = re.compile(r"(?<![\w-])(-{1,2}[a-z][a-z0-9-]*)")
# `rebrand CMD ...` up to the end of its code span or line.
SHOWN = re.compile(r"rebrand (" + "|".join(COMMANDS) + r")\b([^`\n]*)")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


PARSERS = _subparsers()


def _options(command: str) -> set[str]:
    return {o for a in PARSERS[command]._actions for o in a.option_strings}


def _section(title: str) -> str:
    """The README's text under a heading, to the next heading of any level."""
    after = README.split(title + "\n", 1)[1]
    return re.split(r"\n#{2,4} ", after, maxsplit=1)[0]


def _table(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in text, as cells."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row.strip()[1:-1])]
            for row in rows[2:]]


SHOWN_COMMANDS = sorted({m.group(0).rstrip() for m in SHOWN.finditer(README)})


@pytest.mark.parametrize("shown", SHOWN_COMMANDS)
def test_each_rebrand_command_the_readme_shows_uses_flags_its_command_has(shown: str) -> None:
    match = SHOWN.match(shown)
    assert match is not None
    command, rest = match.groups()
    # `--fault-*` stands for a family of flags; `\|` is a pipe escaped in a table cell.
    unknown = [f for f in FLAG.findall(rest.replace("\\|", "|"))
               if f not in _options(command)
               and not any(o.startswith(f) for o in _options(command) if f.endswith("-"))]
    assert not unknown, f"README shows `{shown}`, but `rebrand {command}` has no {unknown}"


def _fenced_commands() -> list[str]:
    """Each `rebrand ...` line of the README's shell and console blocks (a prompt's `$ `,
    and the image's `IMAGE ...` in a `docker run`, stand for `rebrand`)."""
    found = []
    for fence in re.findall(r"```(?:sh|console)\n(.*?)```", README, flags=re.S):
        for line in fence.splitlines():
            shown = re.match(r"(?:\$ )?(?:\.venv/bin/)?(?:rebrand|\s*IMAGE) (.*)", line)
            if shown:
                found.append(shown.group(1))
    return found


@pytest.mark.parametrize("line", _fenced_commands())
def test_each_command_in_a_readme_code_block_parses(line: str) -> None:
    """Flags exist, required ones are there, values are ones the parser takes."""
    build_parser().parse_args(shlex.split(line, comments=True))


def _flag_table() -> list[tuple[list[str], set[str]]]:
    """The table "Flags of `run`, `plan` and `restore`": each row's flags and the commands
    its meaning scopes it to (`` `run`: ``, `` `plan` only: ``, `` (`run`, `plan`) ``), else
    all three."""
    text = README.split("Flags of `run`, `plan` and `restore`:", 1)[1]
    rows = []
    for flag_cell, _default, meaning in _table(text.split("\n\n", 2)[1]):
        scope = re.match(r"`(run|plan|restore)`[^`:]*:", meaning)
        listed = re.search(r"\(((?:`(?:run|plan|restore)`(?:, )?)+)[;)]", meaning)
        if scope:
            named = {scope.group(1)}
        elif listed:
            named = set(re.findall(r"`(\w+)`", listed.group(1)))
        else:
            named = {"run", "plan", "restore"}
        rows.append((FLAG.findall(flag_cell), named))
    return rows


@pytest.mark.parametrize(("flags", "commands"), _flag_table(),
                         ids=lambda v: "+".join(sorted(v)) if isinstance(v, set) else v[0])
def test_each_flag_in_the_flag_table_exists_on_every_command_it_is_scoped_to(
        flags: list[str], commands: set[str]) -> None:
    assert flags, "a row of the flag table names no flag"
    for command in sorted(commands):
        missing = [f for f in flags if f not in _options(command)]
        assert not missing, (f"the README's flag table gives {missing} to `{command}`, which "
                             f"does not take it: scope the row, e.g. (`run`, `plan`)")


@pytest.mark.parametrize("command", ["run", "plan", "restore", "validate", "preview", "demo"])
def test_every_flag_of_a_command_is_in_the_readme(command: str) -> None:
    """The reverse: a flag the CLI takes but the README never names is undocumented."""
    short = {"--verbose": "-v", "--quiet": "-q"}
    missing = [o for o in _options(command) if o.startswith("--") and o != "--help"
               and f"`{short.get(o, o)}" not in README
               and not re.search(rf"rebrand {command}\b[^`\n]*{re.escape(o)}\b", README)]
    assert not missing, f"`rebrand {command}` takes {missing}, which the README never names"


def _help_examples() -> list[tuple[str, str]]:
    return [(name, line) for name, words in helptext.COMMANDS.items()
            for line, _what in words.examples]


@pytest.mark.parametrize("command", list(helptext.COMMANDS))
def test_each_command_help_shows_two_or_three_examples(command: str) -> None:
    """README, At a terminal: each `rebrand COMMAND --help` shows "two or three real
    examples"."""
    shown = PARSERS[command].format_help().split("examples:", 1)[1].split("\n\n", 1)[0]
    lines = [line for line in shown.splitlines() if line.strip().startswith("rebrand ")]
    assert 2 <= len(lines) <= 3, f"`rebrand {command} --help` shows {len(lines)} examples"


@pytest.mark.parametrize(("command", "line"), _help_examples(), ids=lambda v: v)
def test_each_help_example_parses(command: str, line: str) -> None:
    """`rebrand COMMAND --help` shows "real examples": each must at least parse."""
    argv = line.split("|", 1)[0].split()
    assert argv[:2] == ["rebrand", command]
    build_parser().parse_args([a.strip("'") for a in argv[1:]])


@pytest.mark.parametrize("line", [line for c, line in _help_examples() if c == "restore"])
def test_each_restore_help_example_names_the_space(line: str) -> None:
    """Restore sends credentials only to a Space named outside the journal (--space,
    SIGNALWIRE_SPACE, or --config's `space`) and exits 2 otherwise: an example pasted as
    shown must name one, as the README's own `rebrand restore --space ...` does."""
    ns = build_parser().parse_args(line.split()[1:])
    assert ns.space or ns.config, f"`{line}` names no Space: pasted as shown it exits 2"


def _environment_table() -> list[str]:
    return [re.sub(r"`", "", row[0]) for row in _table(_section("### Environment"))]


@pytest.mark.parametrize("variable", _environment_table())
def test_each_documented_environment_variable_is_read_by_rebrand(variable: str) -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "worker").rglob("*.py")
                       if "sandbox" not in p.parts)
    assert f'"{variable}"' in source, f"the README documents {variable}; worker/ never reads it"


def _documented_keys() -> set[str]:
    keys = set()
    for row in _table(_section("## Configuration")):
        keys.update(re.findall(r"`([a-z_.]+)`", row[0]))
    return keys


def _accepted(key: str) -> bool:
    """Whether the config parser takes key (`a.b` for a nested one)."""
    from worker.config import _RETRY_KEYS, _TOP_KEYS, FLEET_KEYS
    from worker.select import _KEYS as SELECT_KEYS

    head, _, tail = key.partition(".")
    if not tail:
        return head in _TOP_KEYS or head in FLEET_KEYS
    nested = {"retry": _RETRY_KEYS, "select": SELECT_KEYS, "theme": ("light", "dark"),
              "accessibility": ("level",)}
    return tail in nested.get(head, ())


def test_each_documented_config_key_is_accepted() -> None:
    rejected = sorted(k for k in _documented_keys() if not _accepted(k))
    assert not rejected, f"the README's config table documents {rejected}, which are refused"


def _example_keys() -> set[str]:
    """Every key config.example.yaml sets, and those its commented-out sections show."""
    text = (REPO / "config.example.yaml").read_text(encoding="utf-8")
    uncommented = re.sub(r"^# ?(\w+:.*|  .*)$", r"\1", text, flags=re.M)
    keys: set[str] = set()
    for key, value in yaml.safe_load(uncommented).items():
        keys.add(key)
        if isinstance(value, dict) and key in ("retry", "select"):
            keys.update(f"{key}.{k}" for k in value)
    return keys


def test_each_key_of_the_example_config_is_documented_and_accepted() -> None:
    documented = _documented_keys()

    def told(key: str) -> bool:  # `select` documents its keys as a whole, `retry` each
        return (key in documented or key.partition(".")[0] in documented
                or any(d.startswith(key + ".") for d in documented))

    keys = _example_keys()
    assert "retry.deadline_s" in keys and "select.ids" in keys  # the reading works
    assert not [k for k in keys if not told(k)], "config.example.yaml sets undocumented keys"
    assert not [k for k in keys if not _accepted(k)], "config.example.yaml sets refused keys"


def _bench_lines() -> list[str]:
    lines = re.findall(r"python -m (bench(?:\.\w+)?)((?: --?[\w-]+(?: [^\s#`-][^\s#`]*)?)+)",
                       README)
    return sorted({f"{module}{flags}" for module, flags in lines})


@pytest.mark.parametrize("line", _bench_lines())
def test_each_bench_command_the_readme_shows_takes_its_flags(line: str) -> None:
    module, *rest = line.split()
    helped = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, text=True,
                            capture_output=True, timeout=60, check=True).stdout
    missing = [f for f in FLAG.findall(" ".join(rest)) if f"{f} " not in helped
               and f"{f}," not in helped and f"{f}\n" not in helped]
    assert not missing, f"README shows `python -m {line}`; {module} has no {missing}"


def test_every_run_summary_field_is_documented_under_output() -> None:
    """`run.summary` logs every field of `Summary` (Reporter.log_summary)."""
    from dataclasses import fields

    from worker.outcome import Summary

    output = _section("### Output")
    missing = [f.name for f in fields(Summary) if f"`{f.name}`" not in output]
    assert not missing, f"run.summary carries {missing}, which the README's Output never names"


def test_the_metrics_table_names_exactly_the_metrics_a_run_writes() -> None:
    from worker.cli.metrics import build_registry
    from worker.outcome import Summary

    summary = Summary(listed=1, updated=1, unchanged=0, vanished=0, failed=0, retries=0,
                      duration_s=1.0, updates_per_s=1.0, concurrency=16, concurrency_min=16,
                      concurrency_max=32)
    registry = build_registry(summary, exit_code=0, success=True, now=1.0)
    written = {m.name for m in registry.collect()}
    outcomes = {s.labels["outcome"] for m in registry.collect() for s in m.samples
                if "outcome" in s.labels}
    table = _table(_section("### Metrics"))
    named = {n for row in table for n in re.findall(r"`(rebrand_\w+)", row[0])}
    assert named == written, f"the table names {sorted(named)}; a run writes {sorted(written)}"
    listed = next(row[1] for row in table if "rebrand_conferences{" in row[0])
    assert {w.strip() for w in listed.split(",")} == outcomes


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_each_link_within_the_readme_leads_to_a_heading() -> None:
    outside = re.sub(r"```.*?```", "", README, flags=re.S)  # a fence's `#` is no heading
    anchors = {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", outside, flags=re.M)}
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", README)) - anchors)
    assert not broken, f"README links to #{broken}, which no heading makes"
