"""What to do with one conference: pure decisions, no I/O.

A strategy looks at a conference as its source gave it (a listing's row, or a journal's
pre-image), to skip it without a request when it can, and as freshly read, to decide the
write. `Retheme` applies a theme; `Restore` puts a journal's pre-image back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from worker.body import (
    WRITABLE_FIELDS,
    build_put_body,
    echo_mismatches,
    same_time,
    writable_state,
)
from worker.outcome import Change, Kind
from worker.rules import Rules
from worker.theme import COLOR_FIELDS, Theme, wears_theme


@dataclass(frozen=True, slots=True)
class Write:
    """Send `body` as the PUT; the fields in `must_take` must come back as sent, and
    none of `must_clear` (fields the body leaves out) may still read its value."""

    body: dict[str, Any]
    must_take: tuple[str, ...]
    changes: tuple[Change, ...]
    before: tuple[tuple[str, str | None], ...] = ()
    must_clear: tuple[tuple[str, str], ...] = ()

    def still_showing(self, answer: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """The `must_clear` fields the answer still shows with the value to clear."""
        return tuple((name, value) for name, value in self.must_clear
                     if shows_as_sent({name: value}, answer))


@dataclass(frozen=True, slots=True)
class Skip:
    kind: Kind
    errors: tuple[str, ...] = ()


Decision = Write | Skip


class Strategy(Protocol):
    """`given` is the conference as the source handed it over; `fresh` as just read."""

    # True when a plan can be decided from the listing alone, without a fresh GET.
    plans_from_listing: bool
    # What `given` is, when the PUT body is built from it rather than from the fresh
    # read: it must then be a whole conference, as an answer must. None when `given`
    # only decides whether to read (and which rule applies).
    body_source: str | None
    # What to do when `given` is not a whole conference (None when body_source is).
    body_source_fix: str | None
    # True when the PUT body cannot be worked out again from the pre-image and the
    # journal's header (a restore's comes from another journal): the journal then keeps
    # it beside the pre-image, for a restore of this run to tell our write from others'.
    journals_body: bool

    def quick(self, given: Mapping[str, Any], /) -> Skip | None: ...

    def rule_of(self, given: Mapping[str, Any], /) -> str | None:
        """The name of the rule that decides this conference, for its events; None when
        the config has no named rules."""
        ...

    def decide(self, given: Mapping[str, Any], fresh: Mapping[str, Any], /) -> Decision: ...


LOOK_FIELDS: tuple[str, ...] = (*COLOR_FIELDS, "layout")


def look(conference: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    """The conference's colors and layout, as (field, value) pairs; None when unset."""
    get = conference.get
    return tuple([(name, value if isinstance(value := get(name), str) else None)
                  for name in LOOK_FIELDS])


def color_changes(conference: Mapping[str, Any], theme: Theme) -> tuple[Change, ...]:
    """Each theme color that differs (case-insensitively) from the conference's."""
    out = []
    for (name, value), (_, folded) in zip(theme.colors, theme.folded, strict=True):
        old = conference.get(name)
        if not isinstance(old, str):
            out.append(Change(name, None, value))
        elif old != folded and old.upper() != folded:
            out.append(Change(name, old, value))
    return tuple(out)


class Retheme:
    """Apply a theme (or each conference its first matching rule's), keeping every other
    writable field as it is now. A conference no rule matches is excluded."""

    plans_from_listing = True
    body_source: str | None = None  # the body is built from the fresh read
    body_source_fix: str | None = None
    journals_body = False  # the pre-image and the header's theme give it again

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
        changes = color_changes(fresh, theme)  # none: it wears the theme already
        if not changes:
            return Skip(Kind.UNCHANGED)
        return Write(build_put_body(fresh, theme), tuple(name for name, _ in theme.colors),
                     changes, look(fresh))


def same_writable_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Do two conferences agree on every writable field (datetimes and color case
    normalised)? Nulls count: a field null in one and set in the other differs."""
    left, right = writable_state(a), writable_state(b)
    return left.keys() == right.keys() and not echo_mismatches(left, right)


class Restore:
    """Put a journal's pre-image back, unless someone else has written since we did.

    A PUT cannot send null, so the fields a pre-image has null are left out of the restore
    body, and what they read afterwards is the Space's business: its default, null, or
    the value they had (the spec does not say). Every judgement here therefore rests on
    the fields a body carries, never on the ones it leaves out.
    """

    # The journal's copy is the old state: only a fresh read shows what would change.
    plans_from_listing = False
    # A journal is a file that may have been edited: a pre-image without a property the
    # API always sends would restore it by leaving it out, which resets it.
    body_source: str | None = "the journal's pre-image"
    body_source_fix: str | None = (
        "the journal was edited or damaged; restore with an undamaged copy of the journal, "
        "or put this conference back by hand")
    journals_body = True

    def __init__(self, written_at: Mapping[str, str | None], *, force: bool,
                 theme: Theme | None,
                 theme_of: Callable[[str], Theme | None] | None = None,
                 sent: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._written_at = written_at
        # For a journal of a restore: the body each unanswered PUT carried (the journal
        # keeps it, as no theme can give it again).
        self._sent = sent or {}
        self._force = force
        self._theme = theme
        # A run with rules wrote each conference its own rule's theme (the journal says
        # which): what that PUT carried, this conference's.
        self._theme_of = theme_of

    def _theme_for(self, pre: Mapping[str, Any]) -> Theme | None:
        if self._theme_of is not None:
            return self._theme_of(str(pre.get("id")))
        return self._theme

    def quick(self, pre: Mapping[str, Any], /) -> Skip | None:
        return None  # the journal's copy is old; only a fresh read can tell

    def rule_of(self, pre: Mapping[str, Any], /) -> str | None:
        return None  # a restore puts pre-images back, whichever rule wrote them

    def decide(self, pre: Mapping[str, Any], fresh: Mapping[str, Any], /) -> Decision:
        """`pre` is the journal's pre-image: the state to put back."""
        body = writable_state(pre)
        left = self._theme_left_behind(pre, fresh)
        # Both sides as a PUT would carry them: a null display_name reads as the name.
        carried_back = shows_as_sent(body, writable_state(fresh))
        if carried_back and not left:
            return Skip(Kind.UNCHANGED)  # already back: restoring twice is harmless
        # Back but for theme colors a PUT can only clear by leaving them out (a restore
        # on a Space that keeps omitted fields ends so): writing the body again changes
        # nothing anyone else wrote, so it is not judged as an edit by someone else.
        if not carried_back and not self._force and self._edited_since_us(pre, fresh):
            return Skip(Kind.CONFLICT, (
                "edited by someone else since rebrand wrote it; "
                "left alone (use --force to restore anyway)",
            ))
        changes = tuple(
            Change(f, _text(fresh.get(f)), _text(body.get(f)) or "")
            for f in WRITABLE_FIELDS
            if f in body and echo_mismatches({f: body[f]}, fresh)
        ) + tuple(Change(name, value, "") for name, value in left)
        return Write(body, tuple(body), changes, must_clear=left)

    def _theme_left_behind(self, pre: Mapping[str, Any],
                           fresh: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        """The theme colors the pre-image had null that still show the theme's value:
        only a PUT that leaves them out can clear them, and only on a Space that resets
        what a PUT leaves out."""
        theme = self._theme_for(pre)
        if theme is None:
            return ()
        return tuple((name, value) for name, value in theme.colors
                     if pre.get(name) is None and shows_as_sent({name: value}, fresh))

    def _edited_since_us(self, pre: Mapping[str, Any], fresh: Mapping[str, Any]) -> bool:
        ours = self._written_at.get(str(pre.get("id")))
        if ours is not None:
            return not same_time(fresh.get("updated_at"), ours)
        # The crash came between the pre-image and our PUT's answer: the PUT may or may
        # not have landed. Unchanged since the pre-image means nothing landed at all.
        if pre.get("updated_at") is not None and same_time(fresh.get("updated_at"),
                                                            pre["updated_at"]):
            return False
        # Something landed. It was our PUT exactly when every field that PUT carried
        # reads as sent; the fields it left out may read anything (default, null, kept).
        sent = self._sent.get(str(pre.get("id")))
        if sent is not None:
            return not shows_as_sent(sent, fresh)
        theme = self._theme_for(pre)
        if theme is None:
            return True  # what our PUT carried is not known: only --force may go on
        return not shows_as_sent(build_put_body(pre, theme), fresh)


def shows_as_sent(body: Mapping[str, Any], conference: Mapping[str, Any]) -> bool:
    """Does the conference show every field of `body` as sent (datetimes and color case
    normalised)? Fields the body does not carry are not looked at."""
    return not echo_mismatches(body, conference)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


