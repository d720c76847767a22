"""`rebrand validate --online`: one listing page and one conference, read and checked
against the API spec this rebrand carries. Nothing is written.

A scheduled job runs it to catch drift (a property the spec does not name, a required
one missing, a value of the wrong type) before a rebrand run meets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from worker import conformance
from worker.answers import AnswerRules
from worker.config import Settings
from worker.credentials import Credentials
from worker.errors import ApiError, UnreachableError
from worker.openapi import CONFERENCE_SCHEMA, LIST_SCHEMA
from worker.retry import Sleep, with_retries
from worker.run.api import SpaceClient
from worker.run.job import session_for


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the check found: each problem as `where: what`, the allowed properties met,
    how many conferences the page listed, and the one read (None on an empty Space)."""

    problems: tuple[str, ...]
    allowed: tuple[str, ...]
    listed: int
    conference_id: str | None


async def probe(settings: Settings, credentials: Credentials, *,
                sleep: Sleep = anyio.sleep) -> ProbeResult:
    """Read the first listing page and its first conference, and check both."""
    rules = AnswerRules.from_spec(settings.allow_fields)
    allowed: set[str] = set()
    async with session_for(1) as session:
        client = SpaceClient(session, settings.space, credentials.authorization(),
                             timeout_s=settings.request_timeout_s, secrets=credentials.secrets)
        url = client.first_page_url(settings.page_size)
        try:
            page = (await with_retries(lambda: client.read_page(url), settings.retry,
                                       sleep=sleep)).value
        except ApiError as exc:
            raise UnreachableError(f"listing conferences failed: {exc}") from exc
        found = [f"listing: {p}" for p in conformance.problems(
            _without_allowed_in_page(_without_null_next(page), rules, allowed), LIST_SCHEMA)]
        data = page.get("data")
        first = next((item["id"] for item in data if isinstance(item, dict)
                      and isinstance(item.get("id"), str)), None) if isinstance(data, list) else None
        if first is not None:
            found += await _check_one(client, first, settings, rules, allowed, sleep)
    return ProbeResult(tuple(found), tuple(sorted(allowed)),
                       len(data) if isinstance(data, list) else 0, first)


async def _check_one(client: SpaceClient, cid: str, settings: Settings, rules: AnswerRules,
                     allowed: set[str], sleep: Sleep) -> list[str]:
    try:
        answer = (await with_retries(lambda: client.get(cid), settings.retry,
                                     sleep=sleep)).value
    except ApiError as exc:
        raise UnreachableError(f"reading conference {cid} failed: {exc}") from exc
    where = f"conference {cid}"
    found = [f"{where}: {p}" for p in rules.problems(answer, cid) if p.startswith("id ")]
    found += [f"{where}: {p}" for p in conformance.problems(
        _without_allowed(answer, rules, allowed), CONFERENCE_SCHEMA)]
    return found


def _without_null_next(page: Mapping[str, Any]) -> Mapping[str, Any]:
    """The page with a null `links.next` left out: the spec types `next` as a string, but
    many APIs write the last page's as null, and a run reads it as the end of the listing
    (see SpaceClient.list_page), so it is no drift a run would meet."""
    links = page.get("links")
    if not isinstance(links, Mapping) or "next" not in links or links["next"] is not None:
        return page
    return {**page, "links": {k: v for k, v in links.items() if k != "next"}}


def _without_allowed(conference: Mapping[str, Any], rules: AnswerRules,
                     allowed: set[str]) -> Mapping[str, Any]:
    """The conference without the properties the operator allowed (noted in `allowed`):
    they are beyond the spec on purpose."""
    met = rules.beyond_spec(conference) & rules.allowed
    if not met:
        return conference
    allowed.update(met)
    return {k: v for k, v in conference.items() if k not in met}


def _without_allowed_in_page(page: Mapping[str, Any], rules: AnswerRules,
                             allowed: set[str]) -> Mapping[str, Any]:
    data = page.get("data")
    if not rules.allowed or not isinstance(data, list):
        return page
    return {**page, "data": [_without_allowed(item, rules, allowed)
                             if isinstance(item, dict) else item for item in data]}


__all__ = ["ProbeResult", "probe"]
