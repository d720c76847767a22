"""The plan as Markdown for CI job summaries (a pure renderer)."""

from __future__ import annotations

from worker.cli.tables import plan_markdown
from worker.outcome import Change, Kind, Outcome, Summary


def _summary(planned: int, **extra: int) -> Summary:
    return Summary(listed=5, updated=0, unchanged=1, vanished=0, failed=0, retries=0,
                   duration_s=0.1, updates_per_s=0.0, planned=planned, **extra)


def test_markdown_plan_has_a_headline_counts_and_one_row_per_changed_color() -> None:
    planned = [Outcome(Kind.PLANNED, "c1", "sales|weekly", changes=(
        Change("light_primary", "#000000", "#0A84FF"), Change("dark_primary", None, "#0A84FF")))]
    text = plan_markdown(planned, _summary(1, excluded=3), exit_code=10)
    lines = text.splitlines()
    assert lines[0] == "### rebrand plan: 1 conference(s) would change"
    assert "| 5 | 1 | 1 | 3 | 0 | 0 |" in lines
    # A pipe in a name would otherwise split the table's columns.
    assert r"| sales\|weekly | light_primary | `#000000` | `#0A84FF` |" in lines
    assert "|  | dark_primary | `(unset)` | `#0A84FF` |" in lines


def test_markdown_plan_without_changes_says_so_and_an_unfinished_plan_is_flagged() -> None:
    assert plan_markdown([], _summary(0), exit_code=0).startswith("### rebrand plan: no changes")
    assert "did not finish (exit 3)" in plan_markdown([], _summary(0), exit_code=3)
    assert "| conference |" not in plan_markdown([], _summary(0), exit_code=0)
