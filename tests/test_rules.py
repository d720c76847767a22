"""Rules: the first matching rule's theme, unmatched rooms excluded, mistakes named."""

from __future__ import annotations

from typing import Any

import pytest

from worker.errors import ConfigError
from worker.rules import Rules, parse_rules
from worker.theme import parse_theme

SALES = {"light": {"primary": "#FF0000"}}
SUPPORT = {"light": {"primary": "#00FF00"}}
REST = {"light": {"primary": "#0000FF"}}
KEEP = "9f1e0c3a-5b7d-4e2f-8a1c-6d3b2e4f5a60"


def _room(name: str, cid: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"id": cid, "name": name, **extra}


def test_the_first_matching_rule_decides() -> None:
    rules = parse_rules([
        {"name": "sales", "select": {"include": ["sales-*"]}, "theme": SALES},
        {"name": "sales-and-support", "select": {"include": ["s*"]}, "theme": SUPPORT},
        {"name": "rest", "theme": REST},
    ])
    picked = {name: rules.first_match(_room(name)) for name in ("sales-1", "support-1", "hr")}
    assert {k: v.name for k, v in picked.items() if v} == {
        "sales-1": "sales", "support-1": "sales-and-support", "hr": "rest",
    }
    assert picked["sales-1"] is not None
    assert picked["sales-1"].theme == parse_theme(SALES)


def test_a_room_no_rule_matches_has_no_rule() -> None:
    rules = parse_rules([{"name": "sales", "select": {"include": ["sales-*"]}, "theme": SALES}])
    assert rules.first_match(_room("support-1")) is None


def test_rule_select_keys_work_as_the_top_level_select() -> None:
    rules = parse_rules([
        {"name": "by-id", "select": {"ids": [KEEP.upper()]}, "theme": SALES},
        {"name": "not-archives", "select": {"exclude": ["*-archive"]}, "theme": SUPPORT},
        {"name": "recent", "select": {"starts_after": "2026-01-01T00:00:00Z"}, "theme": REST},
    ])
    assert rules.first_match(_room("x-archive", KEEP)).name == "by-id"  # type: ignore[union-attr]
    assert rules.first_match(_room("weekly")).name == "not-archives"  # type: ignore[union-attr]
    late = _room("x-archive", join_from="2026-03-01T09:00:00Z")
    early = _room("x-archive", join_from="2025-03-01T09:00:00+00:00")
    assert rules.first_match(late).name == "recent"  # type: ignore[union-attr]
    assert rules.first_match(early) is None
    assert rules.first_match(_room("x-archive", join_from=None)) is None


def test_rules_after_a_catch_all_are_unreachable() -> None:
    rules = parse_rules([
        {"name": "sales", "select": {"include": ["sales-*"]}, "theme": SALES},
        {"name": "everyone", "theme": REST},
        {"name": "support", "select": {"include": ["support-*"]}, "theme": SUPPORT},
    ])
    assert rules.unreachable() == ("support",)
    assert parse_rules([{"theme": REST}]).unreachable() == ()


def test_rules_without_names_are_named_by_position() -> None:
    rules = parse_rules([{"select": {"include": ["a*"]}, "theme": SALES}, {"theme": REST}])
    assert [r.name for r in rules.rules] == ["1", "2"]
    assert rules.named
    assert not Rules.single(parse_theme(REST)).named


@pytest.mark.parametrize(("raw", "message"), [
    ([], "rules: must be a non-empty list"),
    ({"name": "x"}, "rules: must be a non-empty list"),
    (["sales"], "rules[0]: must be a mapping"),
    ([{"name": "a"}], "rules[0].theme: missing"),
    ([{"theme": SALES, "colour": 1}], "rules[0].colour: unknown key"),
    ([{"name": "a", "theme": SALES}, {"name": "a", "theme": REST}],
     "rules[1].name: 'a' is used by an earlier rule"),
    ([{"name": "", "theme": SALES}], "rules[0].name: '' is not a name"),
    ([{"theme": {"light": {"primary": "blue"}}}],
     "rules[0].theme.light.primary: 'blue' is not a #RRGGBB color"),
    ([{"theme": SALES, "select": {"include": "sales-*"}}],
     "rules[0].select.include: must be a list"),
])
def test_mistakes_name_the_rule_and_key(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rules(raw)
    assert str(caught.value).startswith(message)


def test_themes_are_recorded_by_rule_name() -> None:
    rules = parse_rules([{"name": "sales", "select": {"include": ["s*"]}, "theme": SALES},
                         {"name": "rest", "theme": REST}])
    assert rules.themes() == {"sales": SALES, "rest": REST}


def test_plans_are_grouped_by_rule_in_the_table_and_the_markdown() -> None:
    from worker.cli.tables import plan_markdown, plan_table
    from worker.outcome import Change, Kind, Outcome, Summary

    planned = [
        Outcome(Kind.PLANNED, "a", "room-a-sales", rule="sales",
                changes=(Change("light_primary", "#000000", "#FF0000"),)),
        Outcome(Kind.PLANNED, "b", "room-b", rule="rest",
                changes=(Change("light_primary", None, "#0000FF"),)),
        Outcome(Kind.PLANNED, "c", "room-c-sales", rule="sales",
                changes=(Change("light_primary", "#111111", "#FF0000"),)),
    ]
    summary = Summary(listed=3, updated=0, unchanged=0, vanished=0, failed=0, retries=0,
                      duration_s=1.0, updates_per_s=0.0, planned=3)
    table = plan_table(planned)
    assert table.index("rule sales: 2 conference(s)") < table.index("room-a-sales")
    assert table.index("room-c-sales") < table.index("rule rest: 1 conference(s)")
    assert table.index("rule rest: 1 conference(s)") < table.index("room-b")
    markdown = plan_markdown(planned, summary, exit_code=10)
    assert markdown.index("#### rule `sales`: 2 conference(s)") < markdown.index("room-c-sales")
    assert markdown.index("room-c-sales") < markdown.index("#### rule `rest`: 1 conference(s)")
    assert "rule" not in plan_table([Outcome(Kind.PLANNED, "x", "x", changes=planned[0].changes)])
