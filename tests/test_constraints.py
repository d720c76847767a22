"""Never a body the API must refuse: every PUT body (run and restore) is checked against
the update schema's constraints before it is sent. A conference that cannot be written
without changing data the theme does not own is `failed`, with no request, and a message
naming the field, the constraint and what to do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    json_events,
    restore_settings,
    settings_for,
)
from worker.body import WRITABLE_FIELDS, writable_state
from worker.constraints import body_problems, put_rules
from worker.errors import ExitCode
from worker.openapi import schemas
from worker.run.job import restore_job, run_job
from worker.run.journal import read_journal
from worker.theme import COLOR_FIELDS

pytestmark = pytest.mark.anyio

GOOD = {"display_name": "Sales", "description": "d", "join_from": "2026-01-01T00:00:00Z",
        "join_until": "2026-12-31", "quality": "1080p", "layout": "2x2", "size": "large",
        "record_on_start": False, "enable_chat": True, "light_primary": "#0a84FF"}


def test_the_constraints_are_the_published_update_schema_s() -> None:
    rules = put_rules()
    assert tuple(rules.constraints) == WRITABLE_FIELDS
    assert rules.required == ("display_name",)
    assert rules.constraints["display_name"].max_length == 200
    assert rules.constraints["description"].max_length == 3000
    assert rules.constraints["quality"].choices == ("720p", "1080p")
    assert rules.constraints["size"].choices == ("small", "medium", "large")
    layouts = schemas()["Video.VideoLayout"]["enum"]
    assert rules.constraints["layout"].choices == tuple(layouts)
    for color in COLOR_FIELDS:
        pattern = rules.constraints[color].pattern
        assert pattern is not None
        assert pattern.search("#0A84ff") and not pattern.search("#0A84FF\n")
    assert {f for f, c in rules.constraints.items() if c.kind is bool} == {
        "record_on_start", "tone_on_entry_and_exit", "room_join_video_off",
        "user_join_video_off", "enable_room_previews", "enable_chat"}


def test_a_body_the_api_takes_has_no_problems() -> None:
    assert body_problems(GOOD, GOOD) == ()


@pytest.mark.parametrize(
    ("conference", "said"),
    [({"name": "n" * 250, "display_name": None},
      "display_name: null, so the name it falls back to is sent, and the name is 250 "
      "characters long; PUT allows at most 200; give this conference a display name"),
     ({"display_name": "d" * 201}, "display_name: is 201 characters long; PUT allows at "
                                   "most 200; fix it on the conference"),
     ({"display_name": None, "name": None}, "display_name: missing, and PUT requires it"),
     ({"description": "x" * 3001}, "description: is 3,001 characters long"),
     ({"dark_success": "blue"}, "dark_success: 'blue' does not match ^#[0-9a-fA-F]{6}"),
     ({"dark_success": "#00000G"}, "add dark_success to the theme so the run replaces it"),
     ({"light_negative": "#000000\n"}, "light_negative: '#000000\\n' does not match"),
     ({"quality": "4k"}, "quality: '4k' is not one of 720p, 1080p"),
     ({"layout": "grid"}, "layout: 'grid' is not one of grid-responsive"),
     ({"size": "huge"}, "size: 'huge' is not one of small, medium, large"),
     ({"enable_chat": "yes"}, "enable_chat: 'yes' is not true or false"),
     ({"record_on_start": 1}, "record_on_start: 1 is not true or false"),
     ({"description": 5}, "description: 5 is not text"),
     ({"join_from": "soon"}, "join_from: 'soon' is not an RFC 3339 date-time")],
)
def test_each_constraint_is_named_with_what_to_do(conference: dict[str, Any],
                                                  said: str) -> None:
    state = {**GOOD, "name": "room", **conference}
    problems = body_problems(writable_state(state), state)
    assert len(problems) == 1, problems
    assert said in problems[0]
    assert "Nothing was sent" in problems[0] and "does not truncate or guess" in problems[0]


@pytest.mark.parametrize("value", [
    "2022-01-01T00:00:00", "2022-01-01 00:00:00Z", "20220101T000000Z", "2022-W01-1",
    "2022-01-01T00:00Z", "2022-01-01T00:00:00,5Z", "2022-01-01T00", "20220101",
    "2022-02-30T00:00:00Z", "2022-01-01T24:00:00Z", "2022-01-01T00:00:00+0100",
    "\u0662\u0660\u0662\u0662-01-01T00:00:00Z", "2022-01-01T00:00:00Z\n",
])
def test_a_time_that_is_not_rfc_3339_is_refused(value: str) -> None:
    """Python's fromisoformat takes all of these; the spec's `format: date-time` (RFC 3339)
    takes none."""
    state = {**GOOD, "name": "room", "join_until": value}
    problems = body_problems(writable_state(state), state)
    assert len(problems) == 1 and "is not an RFC 3339 date-time" in problems[0], problems


@pytest.mark.parametrize("value", [
    "2022-01-01T23:59:60Z", "2022-01-01t00:00:00z", "2022-01-01T00:00:00.123456789+05:30",
    "2024-02-29T00:00:00-00:00", "2022-01-01",
])
def test_every_form_rfc_3339_allows_is_taken(value: str) -> None:
    """A leap second is the spec's own example; a bare date its description converts."""
    state = {**GOOD, "name": "room", "join_until": value}
    assert body_problems(writable_state(state), state) == ()


def test_a_value_judged_before_is_judged_again_by_its_type() -> None:
    """Verdicts are remembered per value: True must not answer for 1, nor "#0A84FF" for
    the same text with a newline, whichever the run met first."""
    for judged_first, then in ((True, 1), (False, 0), (1, True), ("#0A84FF", "#0A84FF\n")):
        field = "light_primary" if isinstance(judged_first, str) else "enable_chat"
        first = body_problems({**GOOD, field: judged_first}, GOOD)
        second = body_problems({**GOOD, field: then}, GOOD)
        assert (first == ()) != (second == ()), (judged_first, then)


def test_the_remembered_verdicts_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import constraints

    monkeypatch.setattr(constraints, "_memo", constraints._Verdicts())
    for n in range(3 * constraints._MEMO_LIMIT):
        assert body_problems({**GOOD, "light_primary": f"#{n:06X}"}, GOOD) == ()
        kept = sum(len(verdicts) for verdicts in constraints._memo.by_field.values())
        assert kept <= constraints._MEMO_LIMIT
    assert kept > 0  # it remembers
    # A bad value seen after the memo started afresh is still refused.
    assert body_problems({**GOOD, "light_primary": "#12345"}, GOOD)


async def test_a_conference_the_api_would_refuse_is_failed_without_a_request(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theme = {"light": {"primary": "#0A84FF"}}
    async with sandbox_factory(count=12, on_theme_fraction=0.0) as sb:
        long_name, blue = list(sb.space.conferences)[:2]
        sb.space.conferences[long_name].update(name="n" * 250, display_name=None)
        sb.space.conferences[blue]["dark_success"] = "blue"  # a color the theme leaves alone
        planned = await run_job(settings_for(sb.url, theme=theme, backup_dir=tmp_path,
                                             dry_run=True), SANDBOX_CREDENTIALS)
        result = await run_job(settings_for(sb.url, theme=theme, backup_dir=tmp_path),
                               SANDBOX_CREDENTIALS)
        put_ids = [path.rsplit("/", 1)[-1] for method, path in sb.space.requests
                   if method == "PUT"]
    # The plan already says so, from the listing alone.
    assert planned.exit_code == ExitCode.FAILURES
    assert (planned.summary.failed, planned.summary.planned) == (2, 10)
    assert result.exit_code == ExitCode.FAILURES
    assert (result.summary.failed, result.summary.updated) == (2, 10)
    assert long_name not in put_ids and blue not in put_ids
    failed = {e["conference_id"]: e["errors"][0]
              for e in json_events(capsys.readouterr().out)
              if e["event"] == "conference.failed"}
    assert "display_name: null, so the name it falls back to" in failed[long_name]
    assert "dark_success: 'blue'" in failed[blue]


async def test_a_restore_body_the_api_would_refuse_is_failed_without_a_request(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=6, on_theme_fraction=0.0) as sb:
        run = await run_job(settings_for(sb.url, backup_dir=tmp_path / "run"),
                            SANDBOX_CREDENTIALS)
        assert run.journal is not None
        # A pre-image whose quality the API would refuse (edited, or from an older API).
        lines = run.journal.read_bytes().splitlines()
        record = orjson.loads(lines[1])
        bad = record["conference"]["id"]
        record["conference"]["quality"] = "4k"
        run.journal.write_bytes(b"\n".join([lines[0], orjson.dumps(record), *lines[2:]])
                                + b"\n")
        before = len(sb.space.requests)
        restored = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "r"),
                                     SANDBOX_CREDENTIALS, read_journal(run.journal))
        puts = [path for method, path in sb.space.requests[before:] if method == "PUT"]
    assert restored.summary.failed == 1
    assert restored.summary.updated == 5
    assert not any(path.endswith(bad) for path in puts)


@pytest.mark.parametrize("field", ["quality", "size", "description"])
def test_a_long_value_is_shown_cut_before_an_escape_never_inside(field: str) -> None:
    """The value a refusal quotes is repr'd, so control characters show as escapes; a
    long one is cut before an escape, never leaving half of one."""
    for offset in range(12):
        text = "a" * offset + "\x1b" * 40
        # Text for the enums; a value that is not text for description (repr'd whole).
        value: Any = [text] if field == "description" else text
        (problem,) = body_problems({**GOOD, field: value}, GOOD)
        quoted = problem.split(": ", 1)[1].split("...", 1)[0]
        assert repr(value).startswith(quoted), quoted
        assert not re.search(r"\\(?:x[0-9a-f]?)?$", quoted), quoted
