"""Selection: the `select` config section, `--select`/`--exclude`, and what the Space sees."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.support import (
    BRAND,
    SANDBOX_CREDENTIALS,
    SANDBOX_ENV,
    SandboxFactory,
    sandbox_in_thread,
    settings_for,
    write_config,
)
from worker.cli.main import main
from worker.config import load_settings, parse_settings
from worker.errors import ConfigError
from worker.rules import selected
from worker.run.job import run_job
from worker.select import Selection, all_of, parse_selection
from worker.shard import Shard


def _conference(name: str, cid: str = "c1") -> dict[str, Any]:
    return {"id": cid, "name": name}


def test_include_globs_match_names_case_sensitively() -> None:
    selection = Selection(include=("sales-*",))
    assert selection.matches(_conference("sales-weekly"))
    assert not selection.matches(_conference("Sales-weekly"))
    assert not selection.matches(_conference("support-daily"))


def test_exclude_wins_over_include() -> None:
    selection = Selection(include=("sales-*",), exclude=("*-archive",))
    assert selection.matches(_conference("sales-q1"))
    assert not selection.matches(_conference("sales-archive"))


def test_ids_and_globs_both_narrow() -> None:
    selection = Selection(include=("sales-*",), ids=frozenset({"a"}))
    assert selection.matches(_conference("sales-1", "a"))
    assert not selection.matches(_conference("sales-1", "b"))
    assert not selection.matches(_conference("other", "a"))


def test_a_conference_without_a_name_matches_only_match_all_globs() -> None:
    assert Selection(include=("*",)).matches({"id": "x", "name": None})
    assert not Selection(include=("room-*",)).matches({"id": "x"})


def test_empty_selection_does_not_narrow_and_flags_add_to_the_file() -> None:
    assert not Selection().narrows
    combined = Selection(include=("a*",), exclude=("b*",)).with_flags(["c*"], ["d*"])
    assert combined.include == ("a*", "c*")
    assert combined.exclude == ("b*", "d*")
    assert combined.narrows


def test_all_of_combines_selection_and_shard() -> None:
    shard = Shard(0, 2)
    select = all_of(Selection(include=("keep-*",)).matches, shard.owns)
    assert select is not None
    conferences = [_conference(f"keep-{i}", f"id-{i}") for i in range(200)]
    kept = [c for c in conferences if select(c)]
    assert kept == [c for c in conferences if shard.owns(c)]
    assert all_of(None, None) is None


def test_parse_selection_reads_every_key_and_normalises_times_to_utc() -> None:
    selection = parse_selection({
        "include": ["sales-*"], "exclude": ["*-old"], "ids": [" 0B6C2F5E-1D2A-4C3B-9E8F-7A6B5C4D3E2F "],
        "starts_after": datetime(2025, 1, 1, 2, 0, tzinfo=UTC),
        "ends_before": "2025-06-30T12:00:00+02:00",
    })
    assert selection.include == ("sales-*",)
    assert selection.ids == frozenset({"0b6c2f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"})
    assert selection.list_filters() == {"starts_after": "2025-01-01T02:00:00Z",
                                        "ends_before": "2025-06-30T10:00:00Z"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"include": ["a", "b", 7]}, "select.include[2]: 7 is not a glob"),
        ({"exclude": "x-*"}, "select.exclude: must be a list"),
        ({"ids": [""]}, "select.ids[0]: '' is not a conference id"),
        ({"ids": ["0b6c2f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f", "sales-1"]},
         "select.ids[1]: sales-1 is not a conference id; ids are UUIDs"),
        ({"names": ["a"]}, "select.names: unknown key"),
        ({"starts_after": "last tuesday"}, "select.starts_after: 'last tuesday' is not a date"),
        ({"ends_before": "2025-01-01T00:00:00"}, "select.ends_before: 2025-01-01T00:00:00 "
                                                 "has no timezone"),
        (["sales-*"], "select: must be a mapping"),
        # join_from on or after the first, join_until on or before the second: no room
        # ends before it starts, so nothing could be selected.
        ({"starts_after": "2026-01-01", "ends_before": "2025-12-31T22:00:00-01:00"},
         "select.starts_after: 2026-01-01T00:00:00Z is after select.ends_before "
         "2025-12-31T23:00:00Z"),
    ],
)
def test_bad_select_sections_are_refused_naming_the_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        parse_selection(raw)


_RANGE = "outside the times UTC can hold; use one from 0001-01-01T00:00:00Z to " \
         "9999-12-31T23:59:59Z"


@pytest.mark.parametrize(
    ("raw", "key", "shown"),
    [
        ({"starts_after": "9999-12-31T23:59:59-01:00"}, "starts_after",
         "9999-12-31T23:59:59-01:00"),
        ({"ends_before": "0001-01-01T00:00:00+01:00"}, "ends_before",
         "0001-01-01T00:00:00+01:00"),
        # As YAML builds an unquoted timestamp.
        ({"ends_before": datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=2)))},
         "ends_before", "9999-12-31T23:00:00-02:00"),
    ],
)
def test_a_time_past_the_calendar_edge_in_utc_is_refused_naming_the_key(
    raw: object, key: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_selection(raw)
    assert str(caught.value) == f"select.{key}: {shown} is {_RANGE}"


@pytest.mark.parametrize(
    ("given", "sent", "a_later_start_is_in"),
    [("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", True),
     ("0999-06-01T12:00:00+01:00", "0999-06-01T11:00:00Z", True),
     ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z", False)],
)
def test_the_first_and_last_years_are_sent_as_rfc_3339(
    given: str, sent: str, a_later_start_is_in: bool
) -> None:
    """Four-digit years, always: `%Y` writes year 1 as `1`, which no parser reads back."""
    selection = parse_selection({"starts_after": given})
    assert selection.list_filters() == {"starts_after": sent}
    conference = {"name": "a", "join_from": "2025-01-01T00:00:00Z"}
    assert selected(selection, conference) is a_later_start_is_in


def test_config_reads_select_and_confirm_above() -> None:
    settings = parse_settings({"space": "x.signalwire.com", "theme": {"light": {
        "primary": "#000000"}}, "select": {"include": ["a*"]}, "confirm_above": 0}, {})
    assert settings.select.include == ("a*",)
    assert settings.confirm_above == 0
    assert parse_settings({"space": "x.signalwire.com", "theme": {"light": {
        "primary": "#000000"}}}, {}).confirm_above == 50
    with pytest.raises(ConfigError, match="confirm_above: -1 is too small"):
        parse_settings({"space": "x.signalwire.com", "theme": {"light": {
            "primary": "#000000"}}, "confirm_above": -1}, {})


@pytest.mark.anyio
async def test_excluded_conferences_get_no_request_and_are_counted_not_logged(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=80) as sb:
        selection = Selection(include=("room-0001*", "room-0002*"), exclude=("room-00015-*",))
        settings = settings_for(sb.url, backup_dir=tmp_path, select={
            "include": list(selection.include), "exclude": list(selection.exclude)})
        result = await run_job(settings, SANDBOX_CREDENTIALS)
        chosen = {cid for cid, c in sb.space.conferences.items() if selection.matches(c)}
        touched = {path.rsplit("/", 1)[-1].split("?")[0] for method, path in sb.space.requests
                   if method in {"GET", "PUT"} and "/conferences/" in path}
    assert len(chosen) == 19  # room-00010..00029, less room-00015
    assert touched
    assert touched <= chosen
    assert result.summary.excluded == 80 - 19
    assert result.summary.listed == 80
    assert result.summary.updated + result.summary.unchanged == 19
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert "conference.excluded" not in events
    assert events.count("conference.updated") == result.summary.updated


def test_cli_select_and_exclude_flags_add_to_the_config(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with sandbox_in_thread(count=60) as sb:
        config = write_config(tmp_path, sb.url, select={"include": ["room-0000*"]})
        code = main(["plan", "--config", str(config), "--log-format", "json",
                     "--select", "room-0001*", "--exclude", "room-00003-*"], SANDBOX_ENV)
        assert sb.space.put_count == 0
    summary = _summary(capsys.readouterr().out)
    assert code in (0, 10)
    assert summary["listed"] == 60
    assert summary["excluded"] == 60 - 19
    assert summary["planned"] + summary["unchanged"] == 19


def test_list_filters_go_to_the_list_endpoint(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with sandbox_in_thread(count=60) as sb:
        config = write_config(tmp_path, sb.url,
                              select={"starts_after": "2021-01-01T00:00:00Z"})
        main(["plan", "--config", str(config), "--log-format", "json"], SANDBOX_ENV)
        lists = [path for method, path in sb.space.requests
                 if method == "GET" and path.startswith("/api/video/conferences?")]
        expected = sum(1 for c in sb.space.conferences.values()
                       if c["join_from"] and c["join_from"] >= "2021-01-01T00:00:00Z")
    assert "starts_after=2021-01-01T00:00:00Z" in lists[0]
    summary = _summary(capsys.readouterr().out)
    assert 0 < summary["listed"] == expected < 60
    assert summary["excluded"] == 0


def _summary(out: str) -> dict[str, Any]:
    for line in out.splitlines():
        event = json.loads(line)
        if event["event"] == "run.summary":
            return event
    raise AssertionError("no run.summary line")


@pytest.mark.parametrize(("written", "sent"), [
    ("2025-01-01", "2025-01-01T00:00:00Z"),
    ("2025-01-01T10:00:00+02:00", "2025-01-01T08:00:00Z"),
    ("2025-01-01 10:00:00Z", "2025-01-01T10:00:00Z"),
    ("'2025-01-01'", "2025-01-01T00:00:00Z"),
])
def test_a_time_in_the_config_file_is_read_as_written(
    tmp_path: Path, written: str, sent: str
) -> None:
    config = tmp_path / "rebrand.yaml"
    config.write_text("space: x.signalwire.com\ntheme: {light: {primary: '#000000'}}\n"
                      f"select: {{starts_after: {written}}}\n", encoding="utf-8")
    assert load_settings(config, {}).select.list_filters() == {"starts_after": sent}


def test_a_date_where_text_goes_is_the_text_written(tmp_path: Path) -> None:
    """A rule named `2025-01-01`, a glob `2025-*`: YAML would make the first a date."""
    config = tmp_path / "rebrand.yaml"
    config.write_text("space: x.signalwire.com\nrules:\n- name: 2025-01-01\n"
                      "  select: {include: [2025-01-01]}\n"
                      "  theme: {light: {primary: '#000000'}}\n", encoding="utf-8")
    rules = load_settings(config, {}).rules
    assert rules is not None
    assert rules.rules[0].name == "2025-01-01"
    assert rules.rules[0].select is not None
    assert rules.rules[0].select.include == ("2025-01-01",)



def test_ids_match_whatever_case_either_side_writes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A UUID is the same id in upper or lower case (RFC 9562): ids copied from a tool
    that writes them upper-case choose the same rooms, at the top level and in a rule."""
    other = {"light": {"primary": "#117733"}, "dark": {"primary": "#44AA99"}}
    with sandbox_in_thread(count=30, on_theme_fraction=0.0) as sb:
        ids = sorted(sb.space.conferences)
        chosen, ruled = ids[:5], ids[3:5]
        config = write_config(tmp_path, sb.url, theme=None, select={
            "ids": [i.upper() for i in chosen]}, rules=[
            {"name": "by-id", "select": {"ids": [i.upper() for i in ruled]}, "theme": other},
            {"name": "rest", "theme": BRAND}])
        config.write_text(config.read_text().replace("theme: null\n", ""))
        code = main(["run", "--config", str(config), "--log-format", "json",
                     "--backup-dir", str(tmp_path / "b")], SANDBOX_ENV)
        put = {path.rsplit("/", 1)[-1] for method, path in sb.space.requests if method == "PUT"}
        colors = {cid: sb.space.conferences[cid]["light_primary"] for cid in chosen}
    out = capsys.readouterr().out
    summary = _summary(out)
    assert code == 0
    assert put == set(chosen)
    assert summary["excluded"] == 30 - 5
    assert {cid for cid, c in colors.items() if c.upper() == "#117733"} == set(ruled)
    rules = {e["conference_id"]: e["rule"] for e in map(json.loads, out.splitlines())
             if e["event"] == "conference.updated"}
    assert rules == {cid: "by-id" if cid in ruled else "rest" for cid in chosen}


def test_a_bound_with_a_fraction_of_a_second_is_kept_to_the_microsecond(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`starts_after`/`ends_before` are "on or after"/"on or before" (the spec's list
    filters): a bound written with a fraction is that instant, not the second before it,
    both in the query the Space sees and in a rule's own test."""
    with sandbox_in_thread(count=6, on_theme_fraction=0.0) as sb:
        early, late, inside, *rest = sorted(sb.space.conferences)
        for cid in rest:
            sb.space.conferences[cid]["join_from"] = None
        sb.space.conferences[early]["join_from"] = "2030-01-01T00:00:00.250000Z"
        sb.space.conferences[late]["join_from"] = "2030-01-01T00:00:00.750000Z"
        sb.space.conferences[inside]["join_from"] = "2030-01-01T00:00:00.750000Z"
        sb.space.conferences[late]["join_until"] = "2030-02-01T00:00:00.750000Z"
        sb.space.conferences[inside]["join_until"] = "2030-02-01T00:00:00.250000Z"
        config = write_config(tmp_path, sb.url, theme=None,
                              select={"starts_after": "2030-01-01T01:00:00.5+01:00"},
                              rules=[{"name": "by-end", "theme": BRAND, "select": {
                                  "ends_before": "2030-02-01T00:00:00.500Z"}}])
        config.write_text(config.read_text().replace("theme: null\n", ""))
        code = main(["plan", "--config", str(config), "--log-format", "json"], SANDBOX_ENV)
        queries = [path for method, path in sb.space.requests if method == "GET"]
    planned = {e["conference_id"] for e in map(json.loads, capsys.readouterr().out.splitlines())
               if e["event"] == "conference.planned"}
    assert code == 10
    assert "starts_after=2030-01-01T00:00:00.500000Z" in unquote(queries[0])
    assert planned == {inside}
