"""Which conferences a run touches: the config's `select` section and the CLI's flags.

Names are matched with shell-style globs, case-sensitively (`fnmatchcase`): a
conference's `name` is its unique identifier in the API, so `Sales-*` and `sales-*` are
different rooms, on every platform. Every key narrows the run: a conference is selected
when its id is in `ids` (if given), its name matches some `include` glob (if any), and no
`exclude` glob. `starts_after`/`ends_before` are not tested here: they go to the list
endpoint as its own filters, so the Space never sends what they leave out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from fnmatch import fnmatchcase
from typing import Any, Protocol

from worker.errors import ConfigError
from worker.suggest import did_you_mean
from worker.text import clipped

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# The API's conference ids are UUIDs, which RFC 9562 reads in either case.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_KEYS = ("include", "exclude", "ids", "starts_after", "ends_before")


class Predicate(Protocol):
    """Whether a listed conference is in the run (the producer asks it of each one)."""

    def __call__(self, conference: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class Selection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # Lower-case, as a UUID compares: `matches` lowers the conference's id too.
    ids: frozenset[str] = field(default_factory=frozenset)
    # RFC 3339 in UTC with a `Z` (and microseconds when the bound has a fraction): safe
    # in a query string as it stands.
    starts_after: str | None = None
    ends_before: str | None = None

    @property
    def narrows(self) -> bool:
        """Whether `matches` can ever say no (else no per-conference test is needed)."""
        return bool(self.include or self.exclude or self.ids)

    def matches(self, conference: Mapping[str, Any]) -> bool:
        name = str(conference.get("name") or "")
        if self.ids and str(conference.get("id")).lower() not in self.ids:
            return False
        if self.include and not any(fnmatchcase(name, g) for g in self.include):
            return False
        return not any(fnmatchcase(name, g) for g in self.exclude)

    def list_filters(self) -> dict[str, str]:
        """Query parameters for the first list page."""
        filters = {"starts_after": self.starts_after, "ends_before": self.ends_before}
        return {k: v for k, v in filters.items() if v is not None}

    def with_flags(self, include: Sequence[str] | None,
                   exclude: Sequence[str] | None) -> Selection:
        """`--select` / `--exclude` add to the file's lists."""
        return Selection(
            include=self.include + tuple(_globs(include or (), "--select")),
            exclude=self.exclude + tuple(_globs(exclude or (), "--exclude")),
            ids=self.ids, starts_after=self.starts_after, ends_before=self.ends_before,
        )


def all_of(*predicates: Predicate | None) -> Predicate | None:
    """One selector from several (None ones skipped); None when nothing narrows."""
    kept = [p for p in predicates if p is not None]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]

    def every(conference: Mapping[str, Any]) -> bool:
        return all(p(conference) for p in kept)

    return every


def parse_selection(raw: object) -> Selection:
    """The `select:` section, each problem a ConfigError that names the key."""
    if raw is None:
        return Selection()
    if not isinstance(raw, Mapping):
        raise ConfigError("select: must be a mapping with any of " + ", ".join(_KEYS))
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"select.{key}: unknown key; {did_you_mean(key, _KEYS)}"
                              f"allowed here: {', '.join(_KEYS)}")
    starts_after = _instant(raw.get("starts_after"), "select.starts_after")
    ends_before = _instant(raw.get("ends_before"), "select.ends_before")
    if (starts_after is not None and ends_before is not None
            and datetime.fromisoformat(starts_after) > datetime.fromisoformat(ends_before)):
        # join_from on or after the one, join_until on or before the other: no room ends
        # before it starts, so the run would choose nothing and exit 0.
        raise ConfigError(f"select.starts_after: {starts_after} is after select.ends_before "
                          f"{ends_before} (both in UTC), so no conference can be chosen; "
                          "swap them or correct one")
    return Selection(
        include=tuple(_globs(_list(raw, "include"), "select.include")),
        exclude=tuple(_globs(_list(raw, "exclude"), "select.exclude")),
        ids=frozenset(_ids(_list(raw, "ids"))),
        starts_after=starts_after,
        ends_before=ends_before,
    )


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        example = '["0b6c2f5e-..."]' if key == "ids" else '["sales-*"]'
        raise ConfigError(f"select.{key}: must be a list, e.g. {key}: {example}")
    return value


def _globs(values: Iterable[Any], where: str) -> Iterable[str]:
    for i, value in enumerate(values):
        label = where if where.startswith("--") else f"{where}[{i}]"
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{label}: {value!r} is not a glob; quote a pattern "
                              "such as \"sales-*\"")
        yield value


def _ids(values: Iterable[Any]) -> Iterable[str]:
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"select.ids[{i}]: {value!r} is not a conference id; "
                              "quote the id string")
        cid = value.strip().lower()
        if _UUID.fullmatch(cid) is None:
            # No conference could match it: the run would leave out every room, exit 0.
            raise ConfigError(f"select.ids[{i}]: {clipped(value)} is not a conference id; "
                              "ids are UUIDs such as 0b6c2f5e-1d2a-4c3b-9e8f-7a6b5c4d3e2f")
        yield cid


def _parse_instant(text: str) -> datetime | None:
    """A date (`2025-01-31`, midnight UTC, as YAML reads it) or a date and time."""
    try:
        if _DATE.fullmatch(text):
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _instant(value: object, key: str) -> str | None:
    """A YAML timestamp, date or RFC 3339 string, as UTC `YYYY-MM-DDTHH:MM:SSZ`."""
    if value is None:
        return None
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        moment = _parse_instant(value.strip())
    if moment is None:
        raise ConfigError(f"{key}: {value!r} is not a date or time; write RFC 3339, e.g. "
                          "2025-01-31T00:00:00Z")
    if moment.tzinfo is None:
        # A bare local time would shift by the runner's zone: make the operator say.
        raise ConfigError(f"{key}: {moment.isoformat()} has no timezone; add Z (UTC) or an "
                          "offset such as +02:00")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as exc:
        # 9999-12-31T23:59:59-01:00 is a year 10000 in UTC, which no datetime holds.
        raise ConfigError(f"{key}: {clipped(moment.isoformat())} is outside the times UTC "
                          "can hold; use one from 0001-01-01T00:00:00Z to "
                          "9999-12-31T23:59:59Z") from exc
    # Not strftime: its %Y writes year 1 as `1`, which no RFC 3339 reader takes back. A
    # fraction is kept: the filters are inclusive, and cutting `12:00:00.5` to `12:00:00`
    # would take in (starts_after) or leave out (ends_before) the half second between.
    spec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
