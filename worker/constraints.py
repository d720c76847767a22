"""What a PUT body may hold, read from the bundled spec, and the check of a body against it.

The published `Video.UpdateConferenceRequest` bounds what a PUT may carry (display_name
required and at most 200 characters, description at most 3000, colors `#RRGGBB`, enums
for quality, layout and size, booleans, RFC 3339 times), while a GET's answer is bounded
by nothing. A body built from an answer the API would refuse is caught here, before any
request: the conference is `failed` with a message naming the field, the constraint and
what to do. Nothing is truncated or guessed. The check is a few comparisons per field
against one table built once from the spec, not a schema validator per request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from worker.openapi import schemas
from worker.text import cut

UPDATE_SCHEMA = "Video.UpdateConferenceRequest"
_NOTHING_SENT = ("Nothing was sent: a PUT carries every writable field, and rebrand does not "
                 "truncate or guess")


@dataclass(frozen=True, slots=True)
class Constraint:
    """One property of the update schema, as the few comparisons that check it."""

    kind: type  # str or bool
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    choices: tuple[str, ...] | None = None
    date_time: bool = False


@dataclass(frozen=True, slots=True)
class PutRules:
    constraints: Mapping[str, Constraint]
    required: tuple[str, ...]


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property's schema with its `allOf: [$ref]` folded in (how the spec writes enums)."""
    merged = dict(schema)
    for part in schema.get("allOf", ()):
        ref = part.get("$ref", "")
        merged = {**schemas()[ref.rsplit("/", 1)[-1]], **merged} if ref else merged
    return merged


@functools.cache
def put_rules() -> PutRules:
    """The update schema's constraints, read from the bundled spec once."""
    update = schemas()[UPDATE_SCHEMA]
    table: dict[str, Constraint] = {}
    for name, raw in update["properties"].items():
        prop = _resolve(raw)
        pattern = prop.get("pattern")
        if pattern and pattern.endswith("$"):
            # JSON Schema's `$` is the end of the text; Python's also matches before a
            # final newline, which the API would refuse.
            pattern = pattern[:-1] + r"\Z"
        table[name] = Constraint(
            kind=bool if prop.get("type") == "boolean" else str,
            max_length=prop.get("maxLength"),
            pattern=re.compile(pattern) if pattern else None,
            choices=tuple(prop["enum"]) if "enum" in prop else None,
            date_time=prop.get("format") == "date-time",
        )
    return PutRules(table, tuple(update.get("required", ())))


def _shown(value: Any) -> str:
    """`value` as repr writes it, cut before an escape (never inside one) when long."""
    text = repr(value)
    if len(text) <= 60:
        return text
    if isinstance(value, str):
        return f"{cut(text, 40, escaped=True)[0]}... ({len(value)} characters)"
    return cut(text, 60, escaped=True)[0] + "..."


# RFC 3339's `date-time` (section 5.6), which JSON Schema's `format: date-time` names:
# `T` and `Z` in either case, a fraction of any length, a numeric offset with a colon, and
# a leap second (the spec's own example is `23:59:60Z`). ASCII digits only. Python's
# `fromisoformat` also takes a space for the `T`, no offset, `,5` fractions, `20220101`
# and ISO week dates, all of which the API may refuse.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?\Z")


def _is_date_time(text: str) -> bool:
    """RFC 3339, or the bare date the spec's description says it converts to midnight."""
    match = _RFC3339.match(text)
    if match is None:
        return False
    try:
        date(int(match[1]), int(match[2]), int(match[3]))  # a day the month has
    except ValueError:
        return False
    return True


def _problem(value: Any, rule: Constraint) -> str | None:
    if rule.kind is bool:
        return None if isinstance(value, bool) else f"{_shown(value)} is not true or false"
    if not isinstance(value, str):
        return f"{_shown(value)} is not text"
    if rule.max_length is not None and len(value) > rule.max_length:
        return f"is {len(value):,} characters long; PUT allows at most {rule.max_length:,}"
    if rule.choices is not None and value not in rule.choices:
        return f"{_shown(value)} is not one of {', '.join(rule.choices)}"
    if rule.pattern is not None and not rule.pattern.search(value):
        return f"{_shown(value)} does not match {rule.pattern.pattern}"
    if rule.date_time and not _is_date_time(value):
        return f"{_shown(value)} is not an RFC 3339 date-time"
    return None


# Verdicts on values from small sets (enums, colors: the same few values on every
# conference), kept so each is judged once per run rather than once per conference: per
# field, the text values judged so far. Bounded: a Space with more distinct values than
# this starts the memo afresh. Only text is kept (1 == True, and 1 is not text).
_MEMO_LIMIT = 4096
_UNSEEN = "unseen"
_NO_VERDICTS: dict[str, str | None] = {}


@dataclass(eq=False, slots=True)
class _Verdicts:
    by_field: dict[str, dict[str, str | None]] = field(default_factory=dict)
    size: int = 0


_memo = _Verdicts()


def _memoised_problem(name: str, value: Any, rule: Constraint) -> str | None:
    if rule.kind is bool:
        return None if value.__class__ is bool else _problem(value, rule)
    if (rule.choices is None and rule.pattern is None) or value.__class__ is not str:
        # Free text (a length, or a date, different each time), or not text at all.
        return _problem(value, rule)
    memo = _memo
    seen = memo.by_field.get(name)
    if seen is None:
        seen = memo.by_field[name] = {}
    verdict = seen.get(value, _UNSEEN)
    if verdict is not _UNSEEN:
        return verdict
    if memo.size >= _MEMO_LIMIT:
        memo.by_field.clear()
        memo.size = 0
        seen = memo.by_field[name] = {}
    verdict = seen[value] = _problem(value, rule)
    memo.size += 1
    return verdict


def body_problems(body: Mapping[str, Any], conference: Mapping[str, Any]) -> tuple[str, ...]:
    """Why the API would refuse `body` (built from `conference`), one message per field,
    each saying what to do; empty when it would take it."""
    rules = put_rules()
    out = [f"{name}: missing, and PUT requires it; the conference has no {name} and no "
           f"name to show instead: give it a display name. {_NOTHING_SENT}"
           for name in rules.required if name not in body]
    constraints = rules.constraints
    memo = _memo.by_field
    for name, value in body.items():
        rule = constraints.get(name)
        if rule is None:
            continue
        # The common verdicts inline (a run checks ~20 fields per conference): a boolean
        # where one belongs, and text already judged fine for this field.
        if value.__class__ is bool:
            if rule.kind is bool:
                continue
        elif value.__class__ is str and memo.get(name, _NO_VERDICTS).get(value, _UNSEEN) is None:
            continue
        problem = _memoised_problem(name, value, rule)
        if problem is None:
            continue
        if name == "display_name" and conference.get("display_name") is None:
            problem = (f"null, so the name it falls back to is sent, and the name {problem}; "
                       "give this conference a display name of at most "
                       f"{rule.max_length} characters")
        elif rule.pattern is not None:
            problem += (f"; fix it on the conference, or add {name} to the theme so the "
                        "run replaces it")
        else:
            problem += "; fix it on the conference (in the dashboard or through the API)"
        out.append(f"{name}: {problem}. {_NOTHING_SENT}")
    return tuple(out)


__all__ = ["UPDATE_SCHEMA", "Constraint", "PutRules", "body_problems", "put_rules"]
