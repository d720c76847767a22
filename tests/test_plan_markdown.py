"""The plan as Markdown for CI job summaries (a pure renderer)."""

from __future__ import annotations

import pytest

from worker.cli.tables import error_markdown, plan_markdown
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
    assert "| sales&#124;weekly | light_primary | `#000000` | `#0A84FF` |" in lines
    assert "|  | dark_primary | `(unset)` | `#0A84FF` |" in lines


def test_markdown_plan_without_changes_says_so_and_an_unfinished_plan_is_flagged() -> None:
    assert plan_markdown([], _summary(0), exit_code=0).startswith("### rebrand plan: no changes")
    assert "did not finish (exit 3)" in plan_markdown([], _summary(0), exit_code=3)
    assert "| conference |" not in plan_markdown([], _summary(0), exit_code=0)


@pytest.mark.parametrize(("exit_code", "headline"), [
    (0, "no changes"),
    (10, "2 conference(s) would change"),
    (1, "some conferences could not be planned"),
    (2, "bad input, nothing was planned"),
    (3, "the Space refused the credentials"),
    (4, "aborted, the plan is partial"),
    (5, "deadline reached, the plan is partial"),
    (130, "interrupted (SIGINT), the plan is partial"),
    (143, "terminated (SIGTERM), the plan is partial"),
    (77, "failed (exit 77)"),
])
def test_the_headline_is_right_for_every_exit_code(exit_code: int, headline: str) -> None:
    """Exit 3 with nothing planned once read "no changes": a reviewer would merge."""
    text = plan_markdown([], _summary(0 if exit_code == 0 else 2), exit_code=exit_code,
                         error=None if exit_code in (0, 10) else "the reason")
    assert text.splitlines()[0] == f"### rebrand plan: {headline}"
    if exit_code not in (0, 10):
        assert "```text\nthe reason\n```" in text


def test_a_plan_that_never_started_still_has_its_markdown_with_the_error() -> None:
    text = error_markdown(2, "theme.light.primary: \"#12345\" is not a #RRGGBB color")
    assert text.splitlines()[0] == "### rebrand plan: bad input, nothing was planned"
    assert "Nothing was sent to the Space (exit 2)." in text
    assert '```text\ntheme.light.primary: "#12345" is not a #RRGGBB color\n```' in text
    # An error that holds a code fence cannot close ours early.
    assert "~~~~text\nbad ``` input\n~~~~" in error_markdown(2, "bad ``` input")
