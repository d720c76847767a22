"""What a PUT or POST does to a conference, as pure functions of plain values.

A PUT is a full replacement: every writable field takes the body's value or, when the
body omits it, what the Space's reset mode says (RESET_MODES). Dates are normalised to RFC 3339 in UTC with a `Z`.
"""

from __future__ import annotations

import copy
import re
from collections import ChainMap
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from worker.sandbox import spec
from worker.sandbox.config import RESET_MODES
from worker.sandbox.errors import ErrorItem

CONFERENCE_FIELDS: tuple[str, ...] = tuple(
    name for name in spec.properties(spec.CONFERENCE_SCHEMA) if name != "active_session"
)
UPDATE_FIELDS: tuple[str, ...] = spec.properties(spec.UPDATE_SCHEMA)
CREATE_FIELDS: tuple[str, ...] = spec.properties(spec.CREATE_SCHEMA)
DATETIME_FIELDS = ("join_from", "join_until")
COLOR_FIELDS: tuple[str, ...] = tuple(
    f"{mode}_{role}"
    for mode in ("dark", "light")
    for role in ("primary", "background", "foreground", "success", "negative")
)


def _omitted_values(fields: tuple[str, ...], *readings: dict[str, Any]) -> dict[str, Any]:
    """The value each of `fields` takes when a body omits it: that of the first reading
    that names it (a field no reading names is left out)."""
    chain: ChainMap[str, Any] = ChainMap(*readings)
    return {name: chain[name] for name in fields if name in chain}


_CHAT_ON = {"enable_chat": True}  # a conference has chat on unless told otherwise


def _create_defaults() -> dict[str, Any]:
    """The value each field takes when a POST body omits it.

    The request schema's `default` if it has one, else null when the Conference allows
    null, else false for booleans, except `enable_chat`, which a conference has on.
    """
    return _omitted_values(
        CONFERENCE_FIELDS,
        spec.defaults(spec.CREATE_SCHEMA),
        _CHAT_ON,
        dict.fromkeys(spec.nullable(spec.CONFERENCE_SCHEMA)),
        dict.fromkeys(spec.booleans(spec.CONFERENCE_SCHEMA), False),
    )


# How a full-replacement PUT treats a writable field its body leaves out. The published
# spec does not say, so the sandbox can play each reading a Space might take:
#   defaults  the field's default: the update schema's declared one (quality, layout,
#             size), chat on, every other boolean off (enable_room_previews too); fields
#             with no default value (text, dates, colors) become null
#   nulls     null wherever the Conference schema allows null (size, enable_room_previews,
#             text, dates, colors); the rest, which cannot be null, take their default
#   keep      the field keeps the value it had, as a PATCH would


def _update_resets(mode: str) -> dict[str, Any]:
    readings: list[dict[str, Any]] = [
        spec.defaults(spec.UPDATE_SCHEMA),
        _CHAT_ON,
        dict.fromkeys(spec.booleans(spec.UPDATE_SCHEMA), False),
        dict.fromkeys(UPDATE_FIELDS),  # no default value: null
    ]
    if mode == "nulls":
        readings.insert(0, dict.fromkeys(spec.nullable(spec.CONFERENCE_SCHEMA)))
    return _omitted_values(UPDATE_FIELDS, *readings)


RESETS: dict[str, dict[str, Any]] = {
    mode: _update_resets(mode) for mode in RESET_MODES if mode != "keep"
}
# The sandbox's default reading (SandboxConfig.reset).
UPDATE_RESETS: dict[str, Any] = RESETS["nulls"]
CREATE_DEFAULTS: dict[str, Any] = _create_defaults()
# Fields the server owns: a PUT keeps them, whatever it carries.
KEPT_ON_UPDATE = tuple(name for name in CONFERENCE_FIELDS if name not in UPDATE_FIELDS)

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`; microseconds only when there are any."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_timestamp() -> str:
    """The current time at microsecond precision, so two writes in one second differ."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_datetime(value: str) -> datetime | None:
    """A date-only or RFC 3339 string as an aware datetime, or None if it is neither."""
    if _DATE_ONLY.match(value):
        try:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            return None
    if not _RFC3339.match(value):
        return None
    # RFC 3339 allows a leap second that datetime cannot hold; the next instant is as good.
    text = value.upper()
    leap = text[17:19] == "60"
    if leap:
        text = text[:17] + "59" + text[19:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if leap:
        moment = moment.replace(microsecond=999_999)
    return moment


def normalise_dates(body: dict[str, Any]) -> list[ErrorItem]:
    """Rewrite the body's date fields to RFC 3339 UTC in place; report those that aren't dates.

    The spec says `2022-01-01` becomes `2022-01-01T00:00:00Z`, though its own
    `format: date-time` would refuse a bare date, so this runs before validation.
    """
    errors: list[ErrorItem] = []
    for name in DATETIME_FIELDS:
        value = body.get(name)
        if not isinstance(value, str):
            continue
        moment = parse_datetime(value)
        if moment is None:
            errors.append(
                ErrorItem(f"{name} must be an RFC 3339 datetime or a YYYY-MM-DD date", name)
            )
        else:
            body[name] = format_timestamp(moment)
    return errors


def hand_check(body: object, allowed: tuple[str, ...]) -> list[ErrorItem]:
    """The cheap checks that keep PUT semantics honest when OpenAPI validation is off.

    A JSON object, `display_name` present and a string, no field the schema does not
    name, no nulls.
    """
    if not isinstance(body, dict):
        return [ErrorItem("request body must be a JSON object")]
    errors: list[ErrorItem] = []
    if "display_name" not in body:
        errors.append(ErrorItem("display_name is required", "display_name"))
    errors.extend(
        ErrorItem(f"{key} is not a permitted field", str(key)) for key in body if key not in allowed
    )
    for key, value in body.items():
        if key in allowed and value is None:
            errors.append(ErrorItem(f"{key} must not be null", key))
    display_name = body.get("display_name")
    if display_name is not None and not isinstance(display_name, str):
        errors.append(ErrorItem("display_name must be a string", "display_name"))
    return errors


def replace(
    current: dict[str, Any],
    body: dict[str, Any],
    updated_at: str,
    extra: tuple[str, ...] = (),
    *,
    keep_extra: bool = False,
    reset: str = "nulls",
) -> dict[str, Any]:
    """The conference after a full-replacement PUT of a validated, date-normalised body.

    `reset` (one of RESET_MODES) says what the published fields the body omits become.
    `extra` names the properties of a newer Space: writable like the others, so a body
    that omits one resets it to null, unless `keep_extra` (its PUT leaves them alone).
    """
    replaced = {name: current[name] for name in KEPT_ON_UPDATE if name in current}
    if reset == "keep":
        replaced.update((name, current.get(name)) for name in UPDATE_FIELDS)
        replaced.update(body)
    else:
        for name, value in RESETS[reset].items():
            replaced[name] = body.get(name, value)
    replaced["updated_at"] = updated_at
    # Keep the published field order, so answers read like the real API's.
    result = {name: replaced[name] for name in CONFERENCE_FIELDS if name in replaced}
    for name in extra:
        if name in body:
            result[name] = body[name]
        elif keep_extra:
            result[name] = current.get(name)
        else:
            result[name] = None  # what a full replacement does to what the body leaves out
    return result


def create(
    body: dict[str, Any],
    conference_id: str,
    created_at: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new conference from a validated, date-normalised POST body; a newer Space's
    `extra` properties take the body's value or their configured one."""
    values = dict(CREATE_DEFAULTS)
    values.update({name: value for name, value in body.items() if name in CONFERENCE_FIELDS})
    values["id"] = conference_id
    if not values.get("name"):
        values["name"] = f"conference-{conference_id[:8]}"
    values["meta"] = None
    values["created_at"] = created_at
    values["updated_at"] = created_at
    created = {name: values.get(name) for name in CONFERENCE_FIELDS}
    for name, value in (extra or {}).items():
        created[name] = body.get(name, copy.deepcopy(value))
    return created
