"""A plan as a table a person can read at a terminal."""

from __future__ import annotations

from collections.abc import Sequence

from worker.outcome import Outcome, Summary

_MAX_ROWS = 200


def plan_table(planned: Sequence[Outcome]) -> str:
    """One row per changing color: conference, field, old → new."""
    rows = [("conference", "field", "old", "new")]
    for outcome in planned[:_MAX_ROWS]:
        label = outcome.name or outcome.conference_id
        for i, change in enumerate(outcome.changes):
            rows.append((label if i == 0 else "", change.field, change.old or "(unset)",
                         change.new))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(planned) > _MAX_ROWS:
        lines.append(f"... and {len(planned) - _MAX_ROWS} more conferences (see the JSON events)")
    lines.append(f"{len(planned)} conference(s) would change.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code_list(names: Sequence[str]) -> str:
    return ", ".join(f"`{_cell(name).replace('`', '')}`" for name in names)


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


def plan_markdown(planned: Sequence[Outcome], summary: Summary, *, exit_code: int) -> str:
    """The plan as GitHub-flavoured Markdown, for a CI job summary: a headline, the
    counts, and the same rows as `plan_table`."""
    verdict = ("no changes" if not summary.planned
               else f"{summary.planned:,} conference(s) would change")
    lines = [f"### rebrand plan: {verdict}", ""]
    if exit_code not in (0, 10):
        lines += [f"**The plan did not finish (exit {exit_code}); the counts are partial.**",
                  ""]
    lines += _beyond_spec(summary)
    counts = [("listed", summary.listed), ("would change", summary.planned),
              ("already on theme", summary.unchanged), ("excluded", summary.excluded),
              ("vanished", summary.vanished), ("failed", summary.failed)]
    lines += ["| " + " | ".join(name for name, _ in counts) + " |",
              "|" + "---:|" * len(counts),
              "| " + " | ".join(f"{value:,}" for _, value in counts) + " |", ""]
    if planned:
        lines += ["| conference | field | old | new |", "|---|---|---|---|"]
        for outcome in planned[:_MAX_ROWS]:
            label = _cell(outcome.name or outcome.conference_id)
            for i, change in enumerate(outcome.changes):
                lines.append(f"| {label if i == 0 else ''} | {change.field} | "
                             f"`{change.old or '(unset)'}` | `{change.new}` |")
        if len(planned) > _MAX_ROWS:
            lines += ["", f"... and {len(planned) - _MAX_ROWS:,} more conferences "
                          "(see the JSON events in the job log)."]
    return "\n".join(lines) + "\n"
