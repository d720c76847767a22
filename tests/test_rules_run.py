"""Rules end to end: sales rooms in one palette, the rest in another, the rule on every event,
the journal saying which rule wrote what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import SANDBOX_CREDENTIALS, SandboxFactory, json_events
from worker.body import WRITABLE_FIELDS
from worker.config import parse_settings
from worker.errors import ConfigError, ExitCode
from worker.run.job import run_job
from worker.theme import COLOR_FIELDS

pytestmark = pytest.mark.anyio

SALES = {"light": {"primary": "#FF5500", "background": "#FFFFFF"},
         "dark": {"primary": "#FF7733"}}
REST = {"light": {"primary": "#0055FF", "background": "#FAFAFA"},
        "dark": {"primary": "#3377FF"}}
FAST_RETRY = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "retry_after_cap_s": 0.05,
              "max_attempts": 8}


def _flat(theme: dict[str, dict[str, str]]) -> dict[str, str]:
    return {f"{mode}_{role}": value for mode, roles in theme.items()
            for role, value in roles.items()}


def _settings(url: str, tmp_path: Path, rules: list[dict[str, Any]], **extra: Any) -> Any:
    raw = {"space": url, "rules": rules, "concurrency": 8, "retry": FAST_RETRY, **extra}
    return parse_settings(raw, {}, {"backup_dir": tmp_path})


async def test_sales_rooms_get_their_palette_and_the_rest_theirs(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rules = [{"name": "sales", "select": {"include": ["*-sales"]}, "theme": SALES},
             {"name": "everyone-else", "theme": REST}]
    async with sandbox_factory(count=300, on_theme_fraction=0.0) as sandbox:
        before = {cid: dict(c) for cid, c in sandbox.space.conferences.items()}
        result = await run_job(_settings(sandbox.url, tmp_path, rules), SANDBOX_CREDENTIALS)
        after = sandbox.space.conferences
    assert result.exit_code == ExitCode.OK
    sales = {cid for cid, c in before.items() if c["name"].endswith("-sales")}
    assert 0 < len(sales) < len(before)
    for cid, conference in after.items():
        palette = _flat(SALES if cid in sales else REST)
        assert {f: conference[f] for f in palette} == palette, conference["name"]
        untouched = set(WRITABLE_FIELDS) - set(palette) - {"display_name"}
        assert {f: conference.get(f) for f in untouched} == {
            f: before[cid].get(f) for f in untouched}
        # PUT requires a display name: a null one is written as the name (README).
        assert conference["display_name"] == (before[cid]["display_name"]
                                              or before[cid]["name"])
    events = [e for e in json_events(capsys.readouterr().out)
              if e["event"].startswith("conference.")]
    assert len(events) == len(before)
    assert {e["conference_id"]: e["rule"] for e in events} == {
        cid: "sales" if cid in sales else "everyone-else" for cid in before}
    # The journal says which rule wrote each pre-image, and keeps each rule's theme.
    assert result.journal is not None
    records = [orjson.loads(line) for line in result.journal.read_bytes().splitlines()]
    assert records[0]["rules"] == {"sales": SALES, "everyone-else": REST}
    assert records[0]["theme"] is None
    pre = {r["conference"]["id"]: r["rule"] for r in records if r["type"] == "pre_image"}
    assert pre == {cid: "sales" if cid in sales else "everyone-else" for cid in pre}
    assert len(pre) == len(before)


async def test_a_room_no_rule_matches_is_excluded_and_left_alone(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rules = [{"name": "sales", "select": {"include": ["*-sales"]}, "theme": SALES}]
    async with sandbox_factory(count=120, on_theme_fraction=0.0) as sandbox:
        before = {cid: dict(c) for cid, c in sandbox.space.conferences.items()}
        result = await run_job(_settings(sandbox.url, tmp_path, rules), SANDBOX_CREDENTIALS)
        after = sandbox.space.conferences
        written = {p.rsplit("/", 1)[-1] for m, p in sandbox.space.requests if m == "PUT"}
    others = {cid for cid, c in before.items() if not c["name"].endswith("-sales")}
    assert result.summary.excluded == len(others) > 0
    assert result.summary.updated == len(before) - len(others)
    assert not written & others
    assert all(after[cid] == before[cid] for cid in others)
    del capsys


async def test_plan_with_rules_reports_each_change_under_its_rule(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rules = [{"name": "sales", "select": {"include": ["*-sales"]}, "theme": SALES},
             {"name": "rest", "theme": REST}]
    async with sandbox_factory(count=80, on_theme_fraction=0.0) as sandbox:
        settings = _settings(sandbox.url, tmp_path, rules)
        result = await run_job(parse_settings(
            {"space": sandbox.url, "rules": rules}, {}, {"dry_run": True}),
            SANDBOX_CREDENTIALS)
        assert sandbox.space.put_count == 0
    assert settings.themes is not None and settings.themes.named
    assert result.exit_code == ExitCode.CHANGES_PENDING
    planned = [e for e in json_events(capsys.readouterr().out)
               if e["event"] == "conference.planned"]
    assert {e["rule"] for e in planned} == {"sales", "rest"}
    for event in planned:
        theme = _flat(SALES if event["rule"] == "sales" else REST)
        assert {f: c["new"] for f, c in event["changes"].items()}.items() <= theme.items()


def test_theme_and_rules_together_is_bad_input() -> None:
    with pytest.raises(ConfigError, match="theme and rules: both given; pick one"):
        parse_settings({"space": "x.signalwire.com", "theme": REST,
                        "rules": [{"theme": SALES}]}, {})


def test_a_rule_after_a_catch_all_is_bad_input_naming_both() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"space": "x.signalwire.com", "rules": [
            {"name": "all", "theme": REST},
            {"name": "sales", "select": {"include": ["*-sales"]}, "theme": SALES}]}, {})
    assert "'sales' can never match: rule 'all' before it has no `select`" in str(caught.value)


@pytest.mark.parametrize("reset", ["defaults", "nulls", "keep"])
async def test_a_crash_after_rule_writes_landed_restores_them_exactly(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    reset: str,
) -> None:
    """Every PUT landed, but no answer was journaled (as after a SIGKILL at the worst
    moment): restore must see each write as ours by its own rule's theme, not as someone
    else's edit, and put every conference back."""
    from worker.body import writable_state
    from worker.decide import shows_as_sent
    from worker.run.job import restore_job
    from worker.run.journal import read_journal

    rules = [{"name": "sales", "select": {"include": ["*-sales"]}, "theme": SALES},
             {"name": "everyone-else", "theme": REST}]
    async with sandbox_factory(count=150, on_theme_fraction=0.0, reset=reset) as sandbox:
        before = {cid: dict(c) for cid, c in sandbox.space.conferences.items()}
        result = await run_job(_settings(sandbox.url, tmp_path, rules), SANDBOX_CREDENTIALS)
        assert result.exit_code == ExitCode.OK and result.journal is not None
        kept = [line for line in result.journal.read_bytes().splitlines()
                if orjson.loads(line)["type"] != "written"]
        result.journal.write_bytes(b"\n".join(kept) + b"\n")
        undo = await restore_job(
            parse_settings({"space": sandbox.url, "retry": FAST_RETRY}, {},
                           {"backup_dir": tmp_path / "undo"}, restoring=True),
            SANDBOX_CREDENTIALS, read_journal(result.journal))
        after = sandbox.space.conferences
    assert undo.summary.conflict == 0, capsys.readouterr().out[-2000:]
    # A color the room had none of, which a Space that keeps omitted fields cannot clear:
    # failed, saying why, so exit 0 still means undone.
    left = {cid for cid, old in before.items()
            if any(old[color] is None and after[cid][color] is not None
                   for color in COLOR_FIELDS)}
    assert not left or reset == "keep"
    assert undo.summary.failed == len(left)
    assert undo.exit_code == (ExitCode.FAILURES if left else ExitCode.OK)
    # Back as they were, on every field a PUT can carry (a null display_name reads as the
    # name); the fields the pre-image had null are the Space's to fill, by its reading.
    for cid, old in before.items():
        assert shows_as_sent(writable_state(old), after[cid]), cid
