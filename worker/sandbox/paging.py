"""Cursor pagination over a stable order, and the links that walk it.

A cursor holds the sort key (created_at, id) of the item it continues from, not an
offset, so conferences deleted between pages neither skip nor repeat the others.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from worker.sandbox.conference import parse_datetime

SortKey = tuple[str, str]
LIST_PATH = "/api/video/conferences"
MIN_PAGE_SIZE = 1
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
# Carried from the request into every link, so following `next` keeps the same filter.
FILTER_PARAMS = ("starts_after", "ends_before", "include_active_session")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Continue after (`forward`) or before the item with sort key `key`."""

    forward: bool
    key: SortKey


def sort_key(conference: Mapping[str, Any]) -> SortKey:
    return (str(conference["created_at"]), str(conference["id"]))


def encode_cursor(cursor: Cursor) -> str:
    text = f"{'a' if cursor.forward else 'b'}|{cursor.key[0]}|{cursor.key[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor | None:
    """The cursor a page token holds, or None when it is not one this server issued."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        direction, created_at, conference_id = raw.decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if direction not in {"a", "b"} or not created_at or not conference_id:
        return None
    return Cursor(direction == "a", (created_at, conference_id))


def parse_bound(value: str) -> datetime | None:
    """A filter bound: an RFC 3339 datetime or a Unix timestamp; None if it is neither."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return parse_datetime(value)


def date_filter(
    starts_after: datetime | None, ends_before: datetime | None
) -> Callable[[Mapping[str, Any]], bool] | None:
    """The predicate for the list filters, or None when there is nothing to filter."""
    if starts_after is None and ends_before is None:
        return None

    def matches(conference: Mapping[str, Any]) -> bool:
        # A conference with no join_from has no start to compare, so it is never "after".
        if starts_after is not None:
            join_from = _as_datetime(conference.get("join_from"))
            if join_from is None or join_from < starts_after:
                return False
        if ends_before is not None:
            join_until = _as_datetime(conference.get("join_until"))
            if join_until is None or join_until > ends_before:
                return False
        return True

    return matches


def _as_datetime(value: object) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    has_next: bool
    has_prev: bool


def select_page(
    order: list[SortKey],
    conferences: Mapping[str, dict[str, Any]],
    cursor: Cursor | None,
    size: int,
    matches: Callable[[Mapping[str, Any]], bool] | None,
) -> Page:
    """The page of `size` matching conferences the cursor points at, in `order`."""

    def found(index: int) -> dict[str, Any] | None:
        conference = conferences.get(order[index][1])
        if conference is None or (matches is not None and not matches(conference)):
            return None
        return conference

    if cursor is None or cursor.forward:
        start = 0 if cursor is None else bisect_right(order, cursor.key)
        items: list[dict[str, Any]] = []
        index = start
        while index < len(order) and len(items) < size:
            conference = found(index)
            if conference is not None:
                items.append(conference)
            index += 1
        has_next = _any_match(found, range(index, len(order)))
        has_prev = cursor is not None and _any_match(found, range(start - 1, -1, -1))
        return Page(items, has_next, has_prev)
    end = bisect_left(order, cursor.key)
    backwards: list[dict[str, Any]] = []
    index = end - 1
    while index >= 0 and len(backwards) < size:
        conference = found(index)
        if conference is not None:
            backwards.append(conference)
        index -= 1
    backwards.reverse()
    has_prev = _any_match(found, range(index, -1, -1))
    has_next = _any_match(found, range(end, len(order)))
    return Page(backwards, has_next, has_prev)


def _any_match(found: Callable[[int], dict[str, Any] | None], indices: range) -> bool:
    return any(found(index) is not None for index in indices)


def page_links(
    root: str,
    self_query: str,
    page: Page,
    page_number: int,
    size: int,
    filters: Mapping[str, str],
    *,
    last_next: str = "absent",
) -> dict[str, str]:
    """`self`, `first`, and `next`/`prev` only where there is such a page; `root` is the
    list's URL, path, or "" (links that are a query alone). On the last page, `next` is
    left out, or with `last_next` "empty" is an empty string."""
    links = {
        "self": f"{root}?{self_query}" if self_query else (root or "?"),
        "first": f"{root}?{urlencode({'page_size': size, **filters})}",
    }
    if page.has_next and page.items:
        token = encode_cursor(Cursor(True, sort_key(page.items[-1])))
        links["next"] = _link(root, page_number + 1, size, token, filters)
    elif last_next == "empty":
        links["next"] = ""
    if page.has_prev and page.items:
        token = encode_cursor(Cursor(False, sort_key(page.items[0])))
        links["prev"] = _link(root, max(page_number - 1, 0), size, token, filters)
    return links


def _link(root: str, number: int, size: int, token: str, filters: Mapping[str, str]) -> str:
    query = {"page_number": number, "page_size": size, "page_token": token, **filters}
    return f"{root}?{urlencode(query)}"
