"""What to do with one conference: pure decisions, no I/O.

A strategy looks at a conference as its source gave it (a listing's row, or a journal's
pre-image), to skip it without a request when it can, and as freshly read, to decide the
write. `Retheme` applies a theme; `Restore` puts a journal's pre-image back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from worker.body import WRITABLE_FIELDS, build_put_body, echo_mismatches, writable_state
from worker.outcome import Change, Kind
from worker.rules import Rules
from worker.theme import COLOR_FIELDS, Theme, wears_theme


@dataclass(frozen=True, slots=True)
class Write:
    """Send `body` as the PUT; the fields in `must_take` must come back as sent."""

    body: dict[str, Any]
    must_take: tuple[str, ...]
    changes: tuple[Change, ...]
    before: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Skip:
    kind: Kind
    errors: tuple[str, ...] = ()


Decision = Write | Skip


class Strategy(Protocol):
    """`given` is the conference as the source handed it over; `fresh` as just read."""

    # True when a plan can be decided from the listing alone, without a fresh GET.
    plans_from_listing: bool

    def quick(self, given: Mapping[str, Any], /) -> Skip | None: ...

    def rule_of(self, given: Mapping[str, Any], /) -> str | None:
        """The name of the rule that decides this conference, for its events; None when
        the config has no named rules."""
        ...

    def decide(self, given: Mapping[str, Any], fresh: Mapping[str, Any], /) -> Decision: ...


LOOK_FIELDS: tuple[str, ...] = (*COLOR_FIELDS, "layout")


def look(conference: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    """The conference's colors and layout, as (field, value) pairs; None when unset."""
    out = []
    for name in LOOK_FIELDS:
        value = conference.get(name)
        out.append((name, value if isinstance(value, str) else None))
    return tuple(out)


def color_changes(conference: Mapping[str, Any], theme: Theme) -> tuple[Change, ...]:
    """Each theme color that differs (case-insensitively) from the conference's."""
    out = []
    for name, value in theme.colors:
        old = conference.get(name)
        if not isinstance(old, str) or old.upper() != value.upper():
            out.append(Change(name, old if isinstance(old, str) else None, value))
    return tuple(out)


class Retheme:
    """Apply a theme (or each conference its first matching rule's), keeping every other
    writable field as it is now. A conference no rule matches is excluded."""

    plans_from_listing = True

    def __init__(self, themes: Theme | Rules) -> None:
        self.rules = Rules.single(themes) if isinstance(themes, Theme) else themes
        self._named = self.rules.named

    def rule_of(self, listed: Mapping[str, Any], /) -> str | None:
        if not self._named:
            return None
        rule = self.rules.first_match(listed)
        return None if rule is None else rule.name

    def quick(self, listed: Mapping[str, Any], /) -> Skip | None:
        # Matched on the listing, as the top-level `select` is: `name` is not writable, so
        # the fresh read cannot move a conference to another rule.
        rule = self.rules.first_match(listed)
        if rule is None:
            return Skip(Kind.EXCLUDED)
        return Skip(Kind.UNCHANGED) if wears_theme(listed, rule.theme) else None

    def decide(self, listed: Mapping[str, Any], fresh: Mapping[str, Any], /) -> Decision:
        rule = self.rules.first_match(listed)
        if rule is None:
            return Skip(Kind.EXCLUDED)
        theme = rule.theme
        if wears_theme(fresh, theme):
            return Skip(Kind.UNCHANGED)
        return Write(build_put_body(fresh, theme), tuple(name for name, _ in theme.colors),
                     color_changes(fresh, theme), look(fresh))


def same_writable_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Do two conferences agree on every writable field (datetimes and color case
    normalised)? Nulls count: a field null in one and set in the other differs."""
    left, right = writable_state(a), writable_state(b)
    return left.keys() == right.keys() and not echo_mismatches(left, right)


class Restore:
    """Put a journal's pre-image back, unless someone else has written since we did."""

    # The journal's copy is the old state: only a fresh read shows what would change.
    plans_from_listing = False

    def __init__(self, written_at: Mapping[str, str | None], *, force: bool,
                 theme: Theme | None) -> None:
        self._written_at = written_at
        self._force = force
        self._theme = theme

    def quick(self, pre: Mapping[str, Any], /) -> Skip | None:
        return None  # the journal's copy is old; only a fresh read can tell

    def rule_of(self, pre: Mapping[str, Any], /) -> str | None:
        return None  # a restore puts pre-images back, whichever rule wrote them

    def decide(self, pre: Mapping[str, Any], fresh: Mapping[str, Any], /) -> Decision:
        """`pre` is the journal's pre-image: the state to put back."""
        if same_writable_state(fresh, pre):
            return Skip(Kind.UNCHANGED)  # already back: restoring twice is harmless
        if not self._force and self._edited_since_us(pre, fresh):
            return Skip(Kind.CONFLICT, (
                "edited by someone else since rebrand wrote it; "
                "left alone (use --force to restore anyway)",
            ))
        body = writable_state(pre)
        changes = tuple(
            Change(f, _text(fresh.get(f)), _text(body.get(f)) or "")
            for f in WRITABLE_FIELDS
            if f in body and echo_mismatches({f: body[f]}, fresh)
        )
        return Write(body, tuple(body), changes)

    def _edited_since_us(self, pre: Mapping[str, Any], fresh: Mapping[str, Any]) -> bool:
        cid = str(pre.get("id"))
        ours = self._written_at.get(cid)
        if ours is not None:
            return fresh.get("updated_at") != ours
        # The crash came between the pre-image and our PUT's answer: the PUT may or may
        # not have landed. It is ours if the conference shows exactly what we would
        # have written; anything else is someone else's edit.
        if self._theme is None:
            return True
        return not same_writable_state(fresh, build_put_body(pre, self._theme))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


