"""A plan as a table a person can read at a terminal, and as Markdown for a CI summary.

Names, ids and old colors come from the Space: at the terminal their control characters
are shown escaped (worker.text.printable), in Markdown every character that means markup
is an entity (worker.text.markdown_cell), so a row always keeps its four cells."""

from __future__ import annotations

import re
from collections.abc import Sequence

from worker.cli.style import Palette
from worker.outcome import Outcome, Summary
from worker.text import cells, encodable, fit, markdown_cell, printable

_MAX_ROWS = 200
# At a terminal: the narrowest the conference column is cut to, however narrow the window
# (below that a row wraps rather than lose the name), and the widest an old value may be
# (a color is 7; the Space may send anything).
_MIN_NAME_CELLS = 16
_MAX_OLD_CELLS = 24
PLAIN = Palette()  # no color: for a file, a pipe, or NO_COLOR
# Shown in a code span as they are: our own field names, and colors that are colors.
_PLAIN = re.compile(r"[A-Za-z0-9_.#-]+|\(unset\)")


def by_rule(planned: Sequence[Outcome]) -> dict[str | None, list[Outcome]]:
    """Planned outcomes grouped by the rule that decided them, in order of first sight
    (one group, keyed None, when the config has no rules)."""
    groups: dict[str | None, list[Outcome]] = {}
    for outcome in planned:
        groups.setdefault(outcome.rule, []).append(outcome)
    return groups


def plan_table(planned: Sequence[Outcome], palette: Palette = PLAIN,
               width: int | None = None, encoding: str | None = None) -> str:
    """One row per changing color: conference, field, old → new; with rules, a table per
    rule under its name. When the palette paints, each old and new color gets a swatch
    beside its hex. Columns are measured in terminal cells (a CJK name takes two a
    character); given the window's `width`, a long name is cut with `…` to fit it. Given
    the stream's `encoding`, what it cannot show is measured as the escape it writes."""
    groups = by_rule(planned)
    if list(groups) == [None]:
        return _plan_table(planned, palette, width, encoding)
    parts = [f"rule {printable(str(rule))}: {len(group)} conference(s)\n"
             f"{_plan_table(group, palette, width, encoding)}"
             for rule, group in groups.items()]
    return "\n\n".join(parts)


def _plan_table(planned: Sequence[Outcome], palette: Palette, width: int | None,
                encoding: str | None) -> str:
    def shown(text: str) -> str:
        return encodable(printable(text), encoding)

    ellipsis = "…" if shown("…") == "…" else "..."
    rows = [("conference", "field", "old", "new")]
    for outcome in planned[:_MAX_ROWS]:
        label = shown(outcome.name or outcome.conference_id)
        for i, change in enumerate(outcome.changes):
            rows.append((label if i == 0 else "", change.field,
                         shown(change.old or "(unset)"), change.new))
    widths = [max(cells(r[i]) for r in rows) for i in range(4)]
    widths[2] = min(widths[2], _MAX_OLD_CELLS)
    blank = palette.swatch(None)  # as wide as a swatch: keeps the headers over the hex
    if width is not None:
        # Every line at most width - 1 cells: one that fills the last column wraps on some
        # terminals.
        others = widths[1] + widths[2] + widths[3] + 2 * len(blank) + 3 * 2
        widths[0] = min(widths[0], max(_MIN_NAME_CELLS, width - 1 - others))

    def color_cell(text: str, cell_width: int, header: bool) -> str:
        swatch = blank if header else palette.swatch(text if text.startswith("#") else None)
        return swatch + fit(text, cell_width, ellipsis)

    lines = []
    for n, row in enumerate(rows):
        row_cells = [fit(row[0], widths[0], ellipsis), fit(row[1], widths[1], ellipsis),
                  color_cell(row[2], widths[2], n == 0), color_cell(row[3], widths[3], n == 0)]
        lines.append("  ".join(row_cells).rstrip())
    lines.insert(1, "  ".join("-" * (w + (len(blank) if i >= 2 else 0))
                              for i, w in enumerate(widths)))
    if len(planned) > _MAX_ROWS:
        lines.append(f"... and {len(planned) - _MAX_ROWS} more conferences (-v shows every one)")
    return "\n".join(lines)


def _code(text: str) -> str:
    """A code span for plain identifiers and colors; anything else as escaped text."""
    return f"`{text}`" if _PLAIN.fullmatch(text) else markdown_cell(text)


def _code_list(names: Sequence[str]) -> str:
    return ", ".join(_code(name) for name in names)


def _beyond_spec(summary: Summary) -> list[str]:
    """The drift a pull-request plan must show before anyone applies: properties the API
    spec does not name, that stopped the plan or that the operator allowed."""
    lines = []
    if summary.unknown_fields:
        lines += [f"**The Space's answers hold properties the API spec of this rebrand does "
                  f"not name: {_code_list(summary.unknown_fields)}.** A run would stop before "
                  "writing the first conference that holds one, because PUT replaces the whole "
                  "conference and a body without them would reset them. Upgrade rebrand to a "
                  "version whose spec names them, or, if the Space's PUT leaves them alone, "
                  "allow them with `--allow-field NAME` (or `REBRAND_ALLOW_FIELDS`).", ""]
    if summary.allowed_fields:
        lines += [f"Allowed properties beyond the spec, left out of every PUT and kept in "
                  f"the journal: {_code_list(summary.allowed_fields)}.", ""]
    return lines


# What a headline says when the plan did not finish, by exit code (README, Exit codes).
_UNFINISHED = {
    1: "some conferences could not be planned",
    2: "bad input, nothing was planned",
    3: "the Space refused the credentials",
    4: "aborted, the plan is partial",
    5: "deadline reached, the plan is partial",
    130: "interrupted (SIGINT), the plan is partial",
    143: "terminated (SIGTERM), the plan is partial",
}


def plan_headline(summary: Summary | None, exit_code: int) -> str:
    """The first line of plan.md: what a reviewer needs from the pull request's page."""
    if exit_code in (0, 10) and summary is not None:
        verdict = ("no changes" if not summary.planned
                   else f"{summary.planned:,} conference(s) would change")
    else:
        verdict = _UNFINISHED.get(exit_code, f"failed (exit {exit_code})")
    return f"### rebrand plan: {verdict}"


def _error_block(error: str) -> list[str]:
    fence = "~~~~" if "```" in error else "```"
    return ["**Error:**", "", f"{fence}text", error, fence, ""]


def error_markdown(exit_code: int, error: str) -> str:
    """plan.md when rebrand stopped before planning anything (bad input: exit 2)."""
    return "\n".join([plan_headline(None, exit_code), "",
                      f"Nothing was sent to the Space (exit {exit_code}).", "",
                      *_error_block(error)])


def plan_markdown(planned: Sequence[Outcome], summary: Summary, *, exit_code: int,
                  error: str | None = None, lost: Sequence[str] = (),
                  finished_with: int = 0) -> str:
    """The plan as GitHub-flavoured Markdown, for a CI job summary: a headline, the
    counts, and the same rows as `plan_table`; the error, when there is one. `lost`: the
    work finished (with `finished_with`), and `exit_code` is 4 only because these outputs
    could not be written."""
    if lost:
        lines = [plan_headline(summary, finished_with), "",
                 f"**Exit {exit_code}: the plan finished, but "
                 + "; ".join(markdown_cell(text) for text in lost) + ".**", ""]
    else:
        lines = [plan_headline(summary, exit_code), ""]
    if exit_code not in (0, 10) and not lost:
        lines += [f"**The plan did not finish (exit {exit_code}); the counts are partial.**",
                  ""]
    if error:
        lines += _error_block(error)
    lines += _beyond_spec(summary)
    counts = [("listed", summary.listed), ("would change", summary.planned),
              ("already on theme", summary.unchanged), ("excluded", summary.excluded),
              ("vanished", summary.vanished), ("failed", summary.failed)]
    lines += ["| " + " | ".join(name for name, _ in counts) + " |",
              "|" + "---:|" * len(counts),
              "| " + " | ".join(f"{value:,}" for _, value in counts) + " |", ""]
    groups = by_rule(planned)
    for rule, group in groups.items() if planned else ():
        if rule is not None:
            lines += [f"#### rule {_code(rule)}: {len(group):,} conference(s)", ""]
        lines += _markdown_rows(group)
    return "\n".join(lines) + "\n"


def _markdown_rows(planned: Sequence[Outcome]) -> list[str]:
    lines = []
    if planned:
        lines += ["| conference | field | old | new |", "|---|---|---|---|"]
        for outcome in planned[:_MAX_ROWS]:
            label = markdown_cell(outcome.name or outcome.conference_id)
            for i, change in enumerate(outcome.changes):
                lines.append(f"| {label if i == 0 else ''} | {change.field} | "
                             f"{_code(change.old or '(unset)')} | {_code(change.new)} |")
        if len(planned) > _MAX_ROWS:
            lines += ["", f"... and {len(planned) - _MAX_ROWS:,} more conferences "
                          "(see the JSON events in the job log)."]
        lines.append("")
    return lines
