"""The terminal's words and colors as pure functions: which events get a line, how each
reads, the closing summary with its undo command, colors and swatches, and the help."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import structlog

import worker.cli.main
from worker.cli import helptext
from worker.cli.human import (
    Ending,
    HumanRenderer,
    Verbosity,
    changes_by_field,
    event_line,
    shown,
    summary_lines,
    undo_command,
)
from worker.cli.style import Palette, choose_palette, xterm256
from worker.cli.tables import plan_table
from worker.errors import RebrandError
from worker.outcome import Change, Kind, Outcome, Summary
from worker.run.stopping import StopReason
from worker.text import printable

PLAIN = Palette()
COLOR = Palette(enabled=True)
SGR = re.compile(r"\x1b\[[0-9;]*m")


def _summary(**counts: Any) -> Summary:
    base: dict[str, Any] = {"listed": 500, "updated": 447, "unchanged": 53, "vanished": 0,
                            "failed": 0, "retries": 46, "duration_s": 6.8,
                            "updates_per_s": 65.7, "throttled": 10}
    return Summary(**(base | counts))


# Which events reach the terminal


@pytest.mark.parametrize(("event", "level", "quiet", "normal", "verbose"), [
    ("conference.updated", "info", False, False, True),
    ("conference.unchanged", "info", False, False, True),
    ("conference.vanished", "warning", False, True, True),
    ("conference.conflict", "warning", False, True, True),
    ("conference.updated", "warning", False, True, True),  # a field that did not take
    ("conference.failed", "error", True, True, True),
    ("run.aborted", "error", True, True, True),
    ("run.summary", "info", False, False, False),  # the summary in words replaces it
    ("conferences.contrast", "warning", False, False, False),  # so does the audit's warning
])
def test_each_verbosity_shows_what_it_promises(event: str, level: str, quiet: bool,
                                               normal: bool, verbose: bool) -> None:
    assert shown(event, level, Verbosity.QUIET) is quiet
    assert shown(event, level, Verbosity.NORMAL) is normal
    assert shown(event, level, Verbosity.VERBOSE) is verbose


def test_the_renderer_drops_what_is_not_shown() -> None:
    render = HumanRenderer(PLAIN, Verbosity.NORMAL)
    with pytest.raises(structlog.DropEvent):
        render(None, "info", {"event": "conference.updated", "level": "info", "name": "a"})
    line = render(None, "error", {"event": "conference.failed", "level": "error",
                                  "name": "a", "conference_id": "c1", "status": 422,
                                  "errors": ["display_name: too long"], "attempts": 1})
    assert line == "failed      a  HTTP 422: display_name: too long  [c1]"


# How each reads


def test_a_failure_says_why_after_how_many_attempts_in_red() -> None:
    line = event_line({"event": "conference.failed", "name": "room-1", "conference_id": "c1",
                       "status": 503, "errors": ["busy"], "attempts": 6}, COLOR)
    assert "\x1b[31;1mfailed" in line
    assert SGR.sub("", line) == "failed      room-1  HTTP 503: busy (after 6 attempts)  [c1]"


def test_conflicts_vanished_and_fields_that_did_not_take_are_yellow() -> None:
    conflict = event_line({"event": "conference.conflict", "name": "r", "conference_id": "c",
                           "errors": ["edited by someone else"]}, COLOR)
    vanished = event_line({"event": "conference.vanished", "name": "r"}, COLOR)
    mismatch = event_line({"event": "conference.updated", "name": "r",
                           "mismatched_fields": ["light_primary"]}, COLOR)
    for line in (conflict, vanished, mismatch):
        assert line.startswith("\x1b[33m")
    assert "deleted since it was listed" in vanished
    assert "the Space did not keep light_primary" in mismatch


def test_updated_is_green_and_a_plan_names_each_change() -> None:
    assert event_line({"event": "conference.updated", "name": "r"}, COLOR).startswith(
        "\x1b[32m")
    planned = event_line({"event": "conference.planned", "name": "r", "changes": {
        "light_primary": {"old": None, "new": "#0A84FF"}}}, PLAIN)
    assert planned == "would change  r  light_primary (unset) -> #0A84FF"


def test_errors_stops_and_other_events_read_as_sentences() -> None:
    assert event_line({"event": "run.aborted", "error": "cannot reach the Space"},
                      PLAIN) == "error: cannot reach the Space"
    assert "stopping: deadline reached" in event_line(
        {"event": "run.stopping", "reason": "deadline reached"}, PLAIN)
    said = event_line({"event": "config.allow_field_known", "level": "warning",
                       "fields": ["x"], "message": "remove the --allow-field"}, PLAIN)
    assert said == "warning: remove the --allow-field  fields=['x']  (config.allow_field_known)"


def test_text_from_the_space_cannot_drive_the_terminal() -> None:
    line = event_line({"event": "conference.failed", "name": "evil\x1b[2J\u202ename",
                       "errors": ["line\nbreak"], "status": 400}, COLOR)
    assert "\x1b[2J" not in line and "\u202e" not in line and "\n" not in line
    assert "evil\\x1b[2J\\u202ename" in line
    assert printable("tab\there") == "tab\\x09here"


# The closing summary


def _run_ending(**kw: Any) -> Ending:
    base: dict[str, Any] = {"space": "https://example.signalwire.com",
                            "journal": Path("/backups/20261130T000000Z-abc.jsonl"),
                            "config": Path("config.yaml")}
    return Ending("run", **({"exit_code": 0} | base | kw))


def test_a_run_summary_says_what_happened_and_how_to_undo_it() -> None:
    lines = summary_lines(_summary(), _run_ending(report=Path("/r/report.json"),
                                                  metrics=Path("/m/rebrand.prom")), PLAIN)
    assert lines[0] == "Re-themed 447 of 500 conferences."
    assert lines[1] == "  53 already on theme"
    assert lines[2] == "  took 6.8 s, 65.7 updates/s, 46 retries (10 throttled by the Space)"
    assert "Journal: /backups/20261130T000000Z-abc.jsonl" in lines
    assert ("Undo:    rebrand restore --space https://example.signalwire.com "
            "/backups/20261130T000000Z-abc.jsonl") in lines
    assert "Report:  /r/report.json" in lines
    assert "Metrics: /m/rebrand.prom" in lines


def test_the_undo_command_is_quoted_for_the_shell() -> None:
    journal = Path("/my backups/it's.jsonl")
    command = undo_command("https://example.signalwire.com", journal)
    assert shlex.split(command) == ["rebrand", "restore", "--space",
                                    "https://example.signalwire.com", str(journal)]


def test_a_run_that_changed_nothing_offers_nothing_to_undo() -> None:
    lines = summary_lines(_summary(updated=0, unchanged=500, updates_per_s=0.0),
                          _run_ending(), PLAIN)
    assert lines[0] == "Nothing to re-theme: 500 conferences checked."
    assert not any(line.startswith("Undo:") for line in lines)


def test_a_run_that_wrote_nothing_says_its_journal_has_nothing_to_restore() -> None:
    """A run that sent no PUT leaves a journal holding its header alone: the summary
    says there is nothing to restore rather than point at it as the run's backup."""
    lines = summary_lines(_summary(updated=0, unchanged=500, updates_per_s=0.0),
                          _run_ending(journal_empty=True), PLAIN)
    journal = [line for line in lines if line.startswith("Journal:")]
    assert journal == ["Journal: nothing was written, so there is nothing to restore "
                       "(/backups/20261130T000000Z-abc.jsonl holds no pre-image)"]
    assert not any(line.startswith("Undo:") for line in lines)


def test_a_stopped_run_says_why_and_what_was_left() -> None:
    lines = summary_lines(_summary(updated=20, unchanged=3, failed=30, not_started=447,
                                   stopped="too many failures"),
                          _run_ending(exit_code=4), COLOR)
    plain = [SGR.sub("", line) for line in lines]
    assert plain[1] == "  3 already on theme, 30 failed, 447 not started"
    assert "\x1b[31;1m30 failed\x1b[0m" in lines[1]
    assert any(line.startswith("Stopped early: --max-failures reached (exit 4). Next: ")
               for line in plain)
    assert any(line.startswith("Undo:") for line in plain)
    assert any(line.startswith("Retry:   rebrand run --config config.yaml") for line in plain)


def test_a_run_stopped_by_an_error_before_listing_has_nothing_to_undo() -> None:
    lines = summary_lines(_summary(listed=0, updated=0, unchanged=0, retries=0,
                                   stopped="UnreachableError"), _run_ending(exit_code=4), PLAIN)
    assert lines[0] == "Nothing was done: no conference was listed."
    assert any(line.startswith("Stopped early: the Space could not be reached or listed "
                               "(exit 4). Next: check the Space's address") for line in lines)
    assert not any(line.startswith("Undo:") for line in lines)


# Fields of Summary that are not counts of conferences or requests.
_NOT_COUNTS = {"duration_s", "updates_per_s", "effective_rate", "concurrency",
               "concurrency_min", "concurrency_max"}
_COUNTS = [f.name for f in dataclasses.fields(Summary)
           if f.name not in _NOT_COUNTS and f.type in ("int", int)]
# A dry run sends no write; a run that writes plans nothing.
_ENDINGS = {"run": (_run_ending(exit_code=1), {"planned"}),
            "plan": (_run_ending(exit_code=10, dry_run=True, journal=None),
                     {"updated", "unknown"}),
            "restore": (Ending("restore", 1, space="https://example.signalwire.com",
                               journal=Path("/b/r.jsonl")), {"planned"}),
            "restore --dry-run": (Ending("restore", 10, dry_run=True), {"updated", "unknown"})}


def test_every_count_of_the_summary_is_known_here() -> None:
    """A count added to Summary must be added to the terminal's words (and to _COUNTS)."""
    assert "unknown" in _COUNTS and "journal_dropped" in _COUNTS and len(_COUNTS) >= 13


# Each (count, ending) a summary can hold: a count an ending never has is left out, and
# only a restore reads a journal (and so drops its torn records).
_POSSIBLE = [(count, ending) for ending, (_end, impossible) in _ENDINGS.items()
             for count in _COUNTS
             if count not in impossible
             and (count != "journal_dropped" or ending.startswith("restore"))]


@pytest.mark.parametrize(("count", "ending"), _POSSIBLE)
def test_the_summary_names_every_count_that_is_not_zero(count: str, ending: str) -> None:
    end, _impossible = _ENDINGS[ending]
    zero = dict.fromkeys(_COUNTS, 0) | {"listed": 9_999}
    # A 429 is retried: the throttled are among the retries.
    given = {count: 4_321} | ({"retries": 5_000} if count == "throttled" else {})
    text = "\n".join(summary_lines(_summary(**(zero | given)), end, PLAIN))
    assert "4,321" in text, f"{count}=4321 is not in:\n{text}"


def test_unanswered_writes_are_named_with_what_to_do() -> None:
    lines = summary_lines(_summary(updated=400, unchanged=50, unknown=7, not_started=43,
                                   stopped="terminated (SIGTERM)"),
                          _run_ending(exit_code=143), PLAIN)
    text = "\n".join(lines)
    assert lines[0] != "Nothing to re-theme: 500 conferences checked."
    assert "7 unknown: sent, but the answer never came (each may have landed)" in lines[1]
    assert "rebrand run --config config.yaml" in text  # re-run: settles them
    assert any(line.startswith("Undo:    rebrand restore") for line in lines)


def test_writes_whose_answers_alone_are_missing_are_not_nothing_to_re_theme() -> None:
    lines = summary_lines(_summary(updated=0, unchanged=497, unknown=3,
                                   stopped="UnreachableError"),
                          _run_ending(exit_code=4), PLAIN)
    assert not lines[0].startswith("Nothing to re-theme")


def _error_names() -> list[str]:
    found: list[str] = []
    todo: list[type[RebrandError]] = [RebrandError]
    while todo:
        kind = todo.pop()
        found.append(kind.__name__)
        todo += kind.__subclasses__()
    return found


@pytest.mark.parametrize("stopped", _error_names() + [r.value for r in StopReason])
def test_every_stop_reason_is_told_in_plain_words_with_what_to_do(stopped: str) -> None:
    lines = summary_lines(_summary(updated=10, not_started=490, stopped=stopped),
                          _run_ending(exit_code=4), PLAIN)
    [line] = [line for line in lines if line.startswith("Stopped early: ")]
    assert not re.search(r"\b[A-Z][a-z]+(Error)\b", line), line  # no class name
    reason = line.removeprefix("Stopped early: ")
    assert len(reason.split()) >= 3, line
    assert re.search(r"\(exit 4\)[.:;] \S", line) or "Next:" in "\n".join(lines), (
        f"no next step after {line!r}")


def test_a_journal_error_names_the_journal_and_says_free_space() -> None:
    journal = Path("/backups/20261130T000000Z-abc.jsonl")
    lines = summary_lines(_summary(updated=10, not_started=490, stopped="JournalError"),
                          _run_ending(exit_code=4, journal=journal), PLAIN)
    [line] = [line for line in lines if line.startswith("Stopped early: ")]
    assert "the journal could not be written" in line
    assert f"free space in {journal.parent}" in line


def test_a_plan_summary_gives_the_command_that_applies_it() -> None:
    lines = summary_lines(_summary(updated=0, planned=447, updates_per_s=0.0),
                          _run_ending(dry_run=True, journal=None, exit_code=10), PLAIN)
    assert lines[0] == "447 of 500 conferences would change; nothing was sent."
    assert "Apply:   rebrand run --config config.yaml" in lines
    assert lines[2] == "  took 6.8 s, 46 retries (10 throttled by the Space)"


def test_a_restore_summary_counts_conflicts_and_can_itself_be_undone() -> None:
    lines = summary_lines(
        _summary(listed=450, updated=440, unchanged=5, conflict=5, retries=0),
        Ending("restore", 0, space="https://example.signalwire.com",
               journal=Path("/b/restore.jsonl")), PLAIN)
    assert lines[0] == "Restored 440 of 450 conferences in the journal."
    assert "5 left alone: edited by someone else since (--force restores them)" in lines[1]
    assert any(line.startswith("Undo:    rebrand restore --space") for line in lines)
    dry = summary_lines(_summary(listed=450, updated=0, planned=440),
                        Ending("restore", 10, dry_run=True), PLAIN)
    assert dry[0] == "440 of 450 conferences in the journal would be restored; nothing was sent."


def test_the_demo_says_its_space_is_gone() -> None:
    lines = summary_lines(_summary(), _run_ending(demo=True, pushgateway="http://pg:9091"),
                          PLAIN)
    assert "Metrics: pushed to http://pg:9091" in lines
    assert "demo's sandbox Space stopped" in lines[-1]


def test_the_question_before_a_big_run_shows_one_line_per_color() -> None:
    planned = [Outcome(Kind.PLANNED, f"c{i}", f"r{i}", changes=(
        Change("light_primary", "#000000", "#0A84FF"),
        Change("dark_primary", None, "#0A84FF"))) for i in range(300)]
    lines = changes_by_field(planned, PLAIN)
    assert lines == ["  light_primary  #0A84FF  in 300 conferences",
                     "  dark_primary   #0A84FF  in 300 conferences"]


# Colors


@pytest.mark.parametrize(("isatty", "env", "flag", "enabled"), [
    (True, {}, False, True),
    (False, {}, False, False),
    (True, {"NO_COLOR": "1"}, False, False),
    (True, {"NO_COLOR": ""}, False, True),  # no-color.org: set and not empty
    (True, {}, True, False),
    (True, {"TERM": "dumb"}, False, False),
])
def test_color_only_for_a_terminal_that_did_not_ask_for_none(
        isatty: bool, env: dict[str, str], flag: bool, enabled: bool) -> None:
    assert choose_palette(isatty=isatty, env=env, no_color=flag).enabled is enabled


def test_swatches_are_24_bit_when_the_terminal_says_so_else_the_nearest_of_256() -> None:
    true = choose_palette(isatty=True, env={"COLORTERM": "truecolor"})
    assert true.swatch("#0A84FF") == "\x1b[48;2;10;132;255m  \x1b[0m "
    assert choose_palette(isatty=True, env={}).swatch("#FF0000") == "\x1b[48;5;196m  \x1b[0m "
    assert COLOR.swatch(None) == "   " == COLOR.swatch("#XYZXYZ")
    assert PLAIN.swatch("#0A84FF") == ""
    assert PLAIN.paint("x", "red") == "x"


@pytest.mark.parametrize(("rgb", "index"), [((0, 0, 0), 16), ((255, 255, 255), 231),
                                            ((255, 0, 0), 196), ((128, 128, 128), 244),
                                            ((10, 132, 255), 33)])
def test_xterm256_picks_the_nearest_color(rgb: tuple[int, int, int], index: int) -> None:
    assert xterm256(*rgb) == index


def test_the_plan_table_puts_a_swatch_beside_each_hex_and_keeps_its_columns() -> None:
    planned = [Outcome(Kind.PLANNED, "c1", "room", changes=(
        Change("light_primary", "#000000", "#0A84FF"), Change("dark_primary", None, "#0A84FF")))]
    painted = plan_table(planned, COLOR).splitlines()
    assert painted[2].count("\x1b[48;5;") == 2
    assert painted[3].count("\x1b[48;5;") == 1  # (unset) has a blank, no color
    header, _, first = (SGR.sub("", line) for line in painted[:3])
    # The headers stay over the hex codes, swatch cells and all.
    assert header.index("old") == first.index("#000000")
    assert header.index("new") == first.index("#0A84FF")
    assert "\x1b" not in plan_table(planned)


# Help


def _help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as done:
        worker.cli.main.main([*args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_the_top_level_help_lists_the_commands_and_how_to_start(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys)
    assert worker.cli.main.__doc__ is not None
    assert worker.cli.main.__doc__.splitlines()[0] not in text  # no module docstring
    for name, words in helptext.COMMANDS.items():
        assert re.search(rf"^ +{name} +{re.escape(words.summary)}$", text, re.MULTILINE)
    assert "get started:\n  rebrand demo" in text


@pytest.mark.parametrize("command", list(helptext.COMMANDS))
def test_each_command_help_opens_with_a_sentence_and_examples_and_ends_with_exit_codes(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, command)
    words = helptext.COMMANDS[command]
    after_usage = text.split("\n\n", 1)[1]
    assert after_usage.startswith(words.sentence[:40])
    examples = re.findall(r"^  (rebrand .+)$", after_usage.split("options:")[0], re.MULTILINE)
    assert 1 <= len(examples) <= 3 and all(e.startswith(f"rebrand {command}") for e in examples)
    tail = text.rsplit("exit codes:", 1)[1]
    assert re.search(r"^\s+0  ", tail, re.MULTILINE)
    assert text.rstrip().endswith(words.epilog().splitlines()[-1].strip())


def test_an_unknown_write_says_it_may_have_landed_in_the_summarys_red() -> None:
    """At a stop whose grace ran out, each write whose answer never came got a bare
    `unknown  <id>` line: no color, no word of what it means."""
    line = event_line({"event": "conference.unknown", "level": "warning", "name": "",
                       "conference_id": "c1", "errors": ["its PUT was sent but the run "
                                                         "ended before the answer came"]},
                      COLOR)
    assert line.startswith("\x1b[31;1munknown")
    assert SGR.sub("", line) == ("unknown     c1  sent, but the answer never came: it may "
                                 "have landed")


def test_an_interrupted_plan_says_it_is_partial_and_offers_no_apply() -> None:
    """A plan stopped by Ctrl-C told of 'writes in flight' (a plan sends none), said what
    was done 'is skipped' next time (a plan skips nothing), and offered to apply a plan
    the person had only seen part of."""
    stopping = event_line({"event": "run.stopping", "reason": "interrupted (SIGINT)"}, PLAIN)
    assert "the writes in flight get" not in stopping
    assert "any write in flight" in stopping
    lines = summary_lines(_summary(updated=0, unchanged=58, planned=453, not_started=489,
                                   listed=1000, stopped=StopReason.SIGINT.value),
                          _run_ending(exit_code=130, dry_run=True, journal=None), PLAIN)
    stopped = next(line for line in lines if line.startswith("Stopped early:"))
    assert "is skipped" not in stopped
    assert "run the same command again for the whole plan" in stopped
    assert not any(line.startswith("Apply:") for line in lines)


def test_a_signals_line_goes_back_over_the_echoed_ctrl_c_only_at_a_terminal() -> None:
    event = {"event": "run.stopping", "level": "warning", "reason": "interrupted (SIGINT)"}
    at_terminal = HumanRenderer(PLAIN, Verbosity.NORMAL, terminal=True)
    to_a_file = HumanRenderer(PLAIN, Verbosity.NORMAL)
    assert at_terminal(None, "warning", dict(event)).startswith("\rstopping: ")
    assert to_a_file(None, "warning", dict(event)).startswith("stopping: ")
