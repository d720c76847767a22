"""What a theme does to the rooms it changes: each conference's merged palette (its own
colors with the theme over them) checked for contrast, and the conferences grouped by the
palette they have now, for the preview's "before → after".

A partial theme passes the theme check on the pairs it fully defines, yet over a room's
own colors it can still make text unreadable (a grey foreground over a room's white
background). This is where that gets counted, conference by conference.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from worker.contrast import Finding, Level, check_palette
from worker.outcome import Kind, Outcome
from worker.theme import COLOR_FIELDS, as_shown, is_color

Look = tuple[tuple[str, str | None], ...]
# A Space usually has a handful of palettes; past this many distinct ones the rest are
# only counted, so memory stays bounded on a Space where every room differs.
MAX_TRACKED_PALETTES = 1000
MAX_EXAMPLES = 5
_COLOR_SET = frozenset(COLOR_FIELDS)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A conference whose merged palette fails the check."""

    conference_id: str
    name: str
    failures: tuple[Finding, ...]

    def line(self) -> str:
        return f"{self.name or self.conference_id}: " + "; ".join(
            f.line() for f in self.failures)


@dataclass(frozen=True, slots=True)
class PaletteGroup:
    """Conferences that share one current palette and get the same colors over it."""

    before: Look  # colors (upper case, None when unset or not a color) and layout
    after: Look
    count: int
    examples: tuple[str, ...]


@lru_cache(maxsize=8192)
def _color(value: str | None) -> str | None:
    """Colors compared case-insensitively (as the API does); anything that is not a
    `#RRGGBB` color counts as unset, so it can never reach the preview's CSS. Cached: a
    Space repeats a few colors across thousands of rooms."""
    return value.upper() if value is not None and is_color(value) else None


def _normalised(before: Look) -> Look:
    return tuple((name, _color(value) if name in _COLOR_SET else value)
                 for name, value in before)


class PlanAudit:
    """Listens to a job's outcomes (`Reporter.listeners`): counts the conferences whose
    merged palette (their colors with the changes over them) fails at `level`, keeps a
    few of them, and groups them all by palette before and after.

    The changes are the theme's colors that differ, so this needs no theme: with `rules:`
    each conference's own rule has already decided them. `partial` is false when every
    theme sets all ten colors: the merged palette is then the theme, checked before the
    run, and only the grouping is left to do."""

    def __init__(self, level: Level, *, partial: bool = True, group: bool = True) -> None:
        self.level = level
        self.partial = partial
        # Grouping serves only the preview: without one it is not worth its CPU.
        self.group = group
        self.checked = 0
        self.failing = 0
        self.examples: list[Unreadable] = []
        self._groups: dict[tuple[Look, Look], tuple[Look, list[str]]] = {}
        self._counts: dict[tuple[Look, Look], int] = {}
        self.untracked = 0  # conferences whose palette came after the tracking cap

    def observe(self, outcome: Outcome) -> None:
        if outcome.kind not in (Kind.PLANNED, Kind.UPDATED) or not outcome.before:
            return
        checking = self.partial and self.level is not Level.OFF
        if not (checking or self.group):
            return
        before = _normalised(outcome.before)
        over = {change.field: change.new.upper() for change in outcome.changes}
        after = tuple((name, over.get(name, value)) for name, value in before)
        if self.group:
            self._group(before, after, outcome.name or outcome.conference_id)
        if not checking:
            return
        self.checked += 1
        # A color the room leaves unset shows as the API's default, and is checked so.
        failures = tuple(f for f in check_palette(as_shown(dict(after)), self.level, over)
                         if not f.ok)
        if failures:
            self.failing += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(Unreadable(outcome.conference_id, outcome.name, failures))

    def _group(self, before: Look, after: Look, label: str) -> None:
        # Grouped by colors alone; the first room's layout is the one drawn.
        key = (tuple(pair for pair in before if pair[0] in COLOR_FIELDS),
               tuple(pair for pair in after if pair[0] in COLOR_FIELDS))
        count = self._counts.get(key)
        if count is None:
            if len(self._counts) >= MAX_TRACKED_PALETTES:
                self.untracked += 1
                return
            self._groups[key] = (before, [])
            count = 0
        self._counts[key] = count + 1
        labels = self._groups[key][1]
        if len(labels) < 3:
            labels.append(label)

    def groups(self) -> list[PaletteGroup]:
        """The palettes, most common first."""
        out = []
        for key, count in sorted(self._counts.items(), key=lambda item: -item[1]):
            before, labels = self._groups[key]
            layout = tuple(pair for pair in before if pair[0] not in COLOR_FIELDS)
            out.append(PaletteGroup(before, key[1] + layout, count, tuple(labels)))
        return out

    def others(self) -> tuple[int, int]:
        """(palettes, conferences) past the tracking cap. Their palettes were not kept, so
        the first is a floor: each such room's palette is new, so there is at least one."""
        return (1 if self.untracked else 0), self.untracked

    def warning(self, *, done: bool = False) -> str | None:
        """Lines for a person, or None when every merged palette passes. `done`: the
        theme was applied (run), not planned."""
        if not self.failing:
            return None
        verb = "now fail" if done else "would fail"
        lines = [f"{self.failing:,} of {self.checked:,} conferences {verb} the WCAG "
                 f"{self.level.value} contrast check with the theme over their own colors, "
                 "e.g.:"]
        lines += [f"  {example.line()}" for example in self.examples]
        lines.append("  name those colors in the theme too, so every pair is one you chose, "
                     "or leave these rooms out with --exclude")
        return "\n".join(lines)

    def event(self) -> dict[str, object]:
        """The fields of a `conferences.contrast` event."""
        return {
            "wcag_level": self.level.value, "checked": self.checked, "failing": self.failing,
            "examples": [
                {"conference_id": e.conference_id, "name": e.name,
                 "pairs": [f.event() for f in e.failures]}
                for e in self.examples
            ],
        }
