"""The PUT body: the pure decision at the heart of a safe re-theme.

PUT is a full replacement with a closed schema: the body must carry every writable field
of the conference's current state (or the API resets it), nothing the update schema does
not name, and no nulls (the schema types are not nullable).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from worker.text import cut
from worker.theme import COLOR_FIELDS, Theme

# The properties of the published `Video.UpdateConferenceRequest`, in its order.
# tests/test_body.py checks this against the OpenAPI document.
WRITABLE_FIELDS: tuple[str, ...] = (
    "display_name",
    "description",
    "join_from",
    "join_until",
    "quality",
    "layout",
    "size",
    "record_on_start",
    "tone_on_entry_and_exit",
    "room_join_video_off",
    "user_join_video_off",
    "enable_room_previews",
    "enable_chat",
    *(f"dark_{role}" for role in ("primary", "background", "foreground", "success", "negative")),
    *(f"light_{role}" for role in ("primary", "background", "foreground", "success", "negative")),
)
_DATETIME_FIELDS = frozenset({"join_from", "join_until"})
_COLORS = frozenset(COLOR_FIELDS)


def writable_state(conference: Mapping[str, Any]) -> dict[str, Any]:
    """Every non-null writable field of a conference, with `display_name` falling back to
    `name` (the API shows a null display name as the name, and requires one on PUT)."""
    get = conference.get
    body = {f: value for f in WRITABLE_FIELDS if (value := get(f)) is not None}
    if "display_name" not in body and isinstance(conference.get("name"), str):
        body["display_name"] = conference["name"]
    return body


def build_put_body(conference: Mapping[str, Any], theme: Theme) -> dict[str, Any]:
    """The full-replacement body that applies `theme` and changes nothing else."""
    body = writable_state(conference)
    body.update(theme.colors)
    return body


def _normalise(field: str, value: Any) -> Any:
    if field in _COLORS and isinstance(value, str):
        return value.upper()
    if field in _DATETIME_FIELDS and isinstance(value, str):
        return _instant(value) or value
    return value


def _instant(text: str) -> datetime | None:
    """An RFC 3339 datetime or a bare date as an aware UTC instant (the API turns
    `2022-01-01` into `2022-01-01T00:00:00Z`), or None if it is neither."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.upper())  # RFC 3339 allows `t` and `z`
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def same_time(a: object, b: object) -> bool:
    """Do two timestamps from the API name the same instant? Equal values do; so do
    `2026-12-06T00:00:01Z` and `2026-12-06T00:00:01.000+00:00`, which one Space may write
    in its PUT's answer and the other in its GET's. Written at different precisions
    (`...:01Z` and `...:01.123456Z`), they are the same when the coarser one is the other
    cut short or rounded. Values that
    are not times must be equal."""
    if a == b:
        return True
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    left, right = _instant(a), _instant(b)
    if left is None or right is None:
        return False
    if left == right:
        return True
    digits_a, digits_b = _fraction_digits(a), _fraction_digits(b)
    if min(digits_a, digits_b) >= 6 or digits_a == digits_b:
        return False  # at one precision, the same instant is the same value
    coarse, fine, digits = (left, right, digits_a) if digits_a < digits_b else (right, left,
                                                                                digits_b)
    unit = timedelta(seconds=10.0 ** -digits)
    # Cut short, the fine one lies within the unit after the coarse; rounded, within
    # half a unit either side.
    return -unit / 2 <= fine - coarse < unit


def _fraction_digits(text: str) -> int:
    """How many digits of a second the timestamp writes (0 for none, or a bare date's)."""
    seconds = text[17:19]
    if len(text) < 20 or not seconds.isdigit() or text[19] not in ".,":
        return 0
    digits = 0
    for char in text[20:]:
        if not char.isdigit():
            break
        digits += 1
    return digits


def describe_mismatches(sent: Mapping[str, Any], answer: Mapping[str, Any],
                        fields: tuple[str, ...]) -> str:
    """What differs, field by field: `light_primary: sent "#0A84FF", the answer has
    "#123456"` (or `the answer lacks it`)."""
    parts = []
    for field in fields:
        got = (f"the answer has {_shown(answer[field])}" if field in answer
               else "the answer lacks it")
        parts.append(f"{field}: sent {_shown(sent.get(field))}, {got}")
    return "; ".join(parts)


def _shown(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        text = repr(value)
    # JSON's and repr's escapes alike: every backslash starts one, kept or dropped whole.
    return text if len(text) <= 60 else cut(text, 59, escaped=True)[0] + "…"


def echo_mismatches(sent: Mapping[str, Any], answer: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields of the body that the PUT's answer does not show as sent, datetimes and
    color case normalised. Empty when the write took exactly."""
    # Nearly every field comes back byte-identical: compare first, normalise only the rest.
    return tuple(
        field
        for field, value in sent.items()
        if (echoed := answer.get(field)) != value
        and _normalise(field, echoed) != _normalise(field, value)
    )
