"""A plan as a table a person can read at a terminal."""

from __future__ import annotations

from collections.abc import Sequence

from worker.outcome import Outcome

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
