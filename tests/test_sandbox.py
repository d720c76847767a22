"""The sandbox Space behaves like the published Video Conferences API, over real sockets.

Every test starts a server on loopback, talks to it with aiohttp, and asserts on what
the server answered and on the state it holds afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from worker.sandbox import (
    DEFAULT_API_TOKEN,
    DEFAULT_PROJECT_ID,
    ON_THEME,
    FaultConfig,
    SandboxConfig,
    SpaceState,
    serve,
)
from worker.sandbox.space import median_of_counts
from worker.sandbox.spec import spec_document

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
LIST = "/api/video/conferences"
AUTH = {"Authorization": aiohttp.encode_basic_auth(DEFAULT_PROJECT_ID, DEFAULT_API_TOKEN)}
ERROR_URL = "https://developer.signalwire.com/rest/overview/error-codes"
WRITABLE_RESETS = {
    "description": None,
    "join_from": None,
    "join_until": None,
    "quality": "720p",
    "layout": "grid-responsive",
    "size": "medium",
    "record_on_start": False,
    "tone_on_entry_and_exit": False,
    "user_join_video_off": False,
    "room_join_video_off": False,
    "enable_chat": True,
    "enable_room_previews": False,
    **dict.fromkeys(ON_THEME),
}
# A Space that resets omitted fields to null: wherever the Conference schema allows it.
NULL_RESETS = {**WRITABLE_RESETS, "size": None, "enable_room_previews": None}
MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def sandbox(
    config: SandboxConfig, *, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, SpaceState, aiohttp.ClientSession]]:
    async with (
        serve(config) as running,
        aiohttp.ClientSession(headers=AUTH if headers is None else headers) as session,
    ):
        yield running.url, running.space, session


async def put(session: aiohttp.ClientSession, url: str, cid: str, body: Any) -> tuple[int, Any]:
    async with session.put(f"{url}{LIST}/{cid}", json=body) as response:
        return response.status, await response.json()


def first_id(space: SpaceState) -> str:
    return next(iter(space.conferences))


def assert_validation_error(payload: Any, attribute: str | None, message: str) -> None:
    assert set(payload) == {"errors"}
    items = payload["errors"]
    matching = [item for item in items if item["attribute"] == attribute]
    assert matching, items
    assert any(message in item["message"] for item in matching), items
    for item in items:
        assert item["type"] == "validation_error"
        assert item["code"] == "invalid_parameter"
        assert item["url"] == ERROR_URL


# Paging


async def test_following_next_visits_every_conference_once_in_a_stable_order() -> None:
    async with sandbox(SandboxConfig(count=137, validate=False)) as (url, space, session):
        seen: list[dict[str, Any]] = []
        link: str | None = f"{url}{LIST}?page_size=20"
        pages = 0
        while link is not None:
            async with session.get(link) as response:
                assert response.status == 200
                payload = await response.json()
            assert set(payload) == {"links", "data"}
            assert ("prev" in payload["links"]) == (pages > 0)
            seen.extend(payload["data"])
            link = payload["links"].get("next")
            pages += 1
        assert pages == 7
        ids = [c["id"] for c in seen]
        assert len(ids) == len(set(ids)) == 137
        assert set(ids) == set(space.conferences)
        assert ids == [c["id"] for c in sorted(seen, key=lambda c: (c["created_at"], c["id"]))]
        assert space.list_count == 7


async def test_prev_leads_back_to_the_page_before() -> None:
    async with sandbox(SandboxConfig(count=30)) as (url, _space, session):
        pages = []
        link: str | None = f"{url}{LIST}?page_size=7"
        while link is not None:
            async with session.get(link) as response:
                pages.append(await response.json())
            link = pages[-1]["links"].get("next")
        for index in range(1, len(pages)):
            async with session.get(pages[index]["links"]["prev"]) as response:
                assert response.status == 200
                previous = await response.json()
            assert previous["data"] == pages[index - 1]["data"]
            assert ("prev" in previous["links"]) == (index > 1)


async def test_default_page_size_is_50_and_links_carry_filters() -> None:
    async with sandbox(SandboxConfig(count=60, validate=False)) as (url, _space, session):
        async with session.get(f"{url}{LIST}?include_active_session=false") as response:
            payload = await response.json()
        assert len(payload["data"]) == 50
        assert payload["links"]["next"].startswith(f"{url}{LIST}?page_number=1&page_size=50&")
        assert "include_active_session=false" in payload["links"]["next"]
        async with session.get(payload["links"]["next"]) as response:
            payload = await response.json()
        assert len(payload["data"]) == 10
        assert "next" not in payload["links"]


async def test_links_are_relative_when_configured() -> None:
    async with sandbox(SandboxConfig(count=5, next_form="relative")) as (url, _space, session):
        async with session.get(f"{url}{LIST}?page_size=2") as response:
            links = (await response.json())["links"]
        assert links["next"].startswith(f"{LIST}?page_number=1&page_size=2&page_token=")
        assert links["first"] == f"{LIST}?page_size=2"
        async with session.get(url + links["next"]) as response:
            assert response.status == 200


async def test_links_can_be_a_query_alone_and_the_last_next_an_empty_string() -> None:
    config = SandboxConfig(count=3, next_form="query", last_next="empty")
    async with sandbox(config) as (url, _space, session):
        async with session.get(f"{url}{LIST}?page_size=2") as response:
            links = (await response.json())["links"]
        assert links["next"].startswith("?page_number=1&page_size=2&page_token=")
        async with session.get(f"{url}{LIST}{links['next']}") as response:
            last = await response.json()
        assert len(last["data"]) == 1
        assert last["links"]["next"] == ""


async def test_429s_leave_out_retry_after_when_told_to() -> None:
    config = SandboxConfig(count=2, put_rate_limit=1, retry_after=False)
    async with sandbox(config) as (url, space, session):
        conference = next(iter(space.conferences.values()))
        body = {"display_name": conference["display_name"]}
        statuses = []
        for _ in range(2):
            async with session.put(f"{url}{LIST}/{conference['id']}", json=body) as response:
                statuses.append(response.status)
                headers = response.headers
        assert statuses == [200, 429]
        assert "Retry-After" not in headers


def test_the_flags_choose_the_readings_the_spec_leaves_open() -> None:
    from worker.sandbox.cli import build_parser, config_from_args

    flags = build_parser().parse_args(["--next-form", "query", "--last-next", "empty",
                                       "--no-retry-after"])
    config = config_from_args(flags)
    assert (config.next_form, config.last_next, config.retry_after) == ("query", "empty", False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--next-form", "fragment"])
    with pytest.raises(ValueError, match="next_form"):
        SandboxConfig(next_form="fragment")


async def test_links_base_points_links_at_a_foreign_host() -> None:
    config = SandboxConfig(count=5, links_base="https://evil.example.com/")
    async with sandbox(config) as (url, _space, session):
        async with session.get(f"{url}{LIST}?page_size=2") as response:
            links = (await response.json())["links"]
        assert links["next"].startswith(f"https://evil.example.com{LIST}?page_number=1")
        assert links["self"] == f"https://evil.example.com{LIST}?page_size=2"


async def test_public_url_points_links_next_where_a_proxy_serves_the_sandbox() -> None:
    from worker.sandbox.cli import build_parser, config_from_args

    flags = build_parser().parse_args(["--public-url", "https://proxy.example:8443/",
                                       "--reset", "keep"])
    config = config_from_args(flags)
    assert (config.links_base, config.reset) == ("https://proxy.example:8443", "keep")
    async with sandbox(config) as (url, _space, session), \
            session.get(f"{url}{LIST}?page_size=2") as response:
        links = (await response.json())["links"]
    assert links["next"].startswith(f"https://proxy.example:8443{LIST}?page_number=1")


@pytest.mark.parametrize("bad", ["proxy.example", "ftp://proxy.example", "https://proxy/x",
                                 "https://u:p@proxy.example", "https://proxy.example?q=1"])
def test_a_public_url_that_is_not_an_origin_is_bad_input(bad: str) -> None:
    from worker.cli.main import main

    assert main(["sandbox", "--public-url", bad]) == 2


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("size", ["0", "1001", "-3", "ten"])
async def test_page_size_out_of_bounds_is_422(validate: bool, size: str) -> None:
    async with sandbox(SandboxConfig(count=3, validate=validate)) as (url, space, session):
        async with session.get(f"{url}{LIST}?page_size={size}") as response:
            assert response.status == 422
            assert_validation_error(await response.json(), "page_size", "page_size")
        assert space.status_counts[422] == 1


@pytest.mark.parametrize("size", [1, 1000])
async def test_page_size_bounds_are_inclusive(size: int) -> None:
    async with (
        sandbox(SandboxConfig(count=3)) as (url, _space, session),
        session.get(f"{url}{LIST}?page_size={size}") as response,
    ):
        assert response.status == 200
        assert len((await response.json())["data"]) == min(size, 3)


@pytest.mark.parametrize("query", ["page_token=not-a-cursor!", "page_number=2"])
async def test_bad_cursor_is_422_on_page_token(query: str) -> None:
    async with (
        sandbox(SandboxConfig(count=3)) as (url, _space, session),
        session.get(f"{url}{LIST}?{query}") as response,
    ):
        assert response.status == 422
        assert_validation_error(await response.json(), "page_token", "page_token")


async def test_deleting_during_paging_neither_skips_nor_repeats() -> None:
    def delete_last_listed(space: SpaceState, page: list[dict[str, Any]]) -> None:
        if page:
            del space.conferences[page[-1]["id"]]

    async with sandbox(SandboxConfig(count=45, validate=False)) as (url, space, session):
        seeded = set(space.conferences)
        space.after_list_page = delete_last_listed
        ids: list[str] = []
        link: str | None = f"{url}{LIST}?page_size=10"
        while link is not None:
            async with session.get(link) as response:
                payload = await response.json()
            ids.extend(c["id"] for c in payload["data"])
            link = payload["links"].get("next")
        assert len(ids) == len(set(ids))
        assert set(ids) == seeded
        assert len(space.conferences) == 45 - 5


async def test_edit_after_listing_is_not_in_the_page_already_served() -> None:
    def rename(space: SpaceState, page: list[dict[str, Any]]) -> None:
        for conference in page:
            conference["display_name"] = "edited later"

    async with sandbox(SandboxConfig(count=4)) as (url, space, session):
        space.after_list_page = rename
        async with session.get(f"{url}{LIST}") as response:
            served = (await response.json())["data"]
        assert all(c["display_name"] != "edited later" for c in served)
        assert all(c["display_name"] == "edited later" for c in space.conferences.values())


async def test_date_filters_select_on_join_times() -> None:
    async with sandbox(SandboxConfig(count=300, validate=False)) as (url, space, session):
        bound = "2022-01-01T00:00:00Z"
        async with session.get(f"{url}{LIST}?page_size=1000&starts_after={bound}") as response:
            after = {c["id"] for c in (await response.json())["data"]}
        expected = {
            c["id"]
            for c in space.conferences.values()
            if c["join_from"] is not None and c["join_from"] >= bound
        }
        assert after == expected
        assert 0 < len(after) < 300
        unix = "1640995200"  # the same instant as a Unix timestamp
        async with session.get(f"{url}{LIST}?page_size=1000&ends_before={unix}") as response:
            before = {c["id"] for c in (await response.json())["data"]}
        assert before == {
            c["id"]
            for c in space.conferences.values()
            if c["join_until"] is not None and c["join_until"] <= bound
        }


# PUT semantics


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("reset", ["defaults", "nulls", "keep"])
async def test_put_replaces_every_writable_field_and_treats_the_omitted_per_reset_mode(
    validate: bool, reset: str
) -> None:
    config = SandboxConfig(count=20, validate=validate, reset=reset)
    async with sandbox(config) as (url, space, session):
        cid = first_id(space)
        before = dict(space.conferences[cid])
        status, answer = await put(session, url, cid, {"display_name": "Only this"})
        assert status == 200
        stored = space.conferences[cid]
        assert answer == stored
        assert stored["display_name"] == "Only this"
        expected = {"defaults": WRITABLE_RESETS, "nulls": NULL_RESETS,
                    "keep": {name: before[name] for name in WRITABLE_RESETS}}[reset]
        for name, value in expected.items():
            assert stored[name] == value, name
        for name in ("id", "name", "meta", "created_at"):
            assert stored[name] == before[name], name
        assert stored["updated_at"] != before["updated_at"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stored["updated_at"])
        assert space.puts_applied == 1
        assert space.puts_by_id == {cid: 1}


def test_an_unknown_reset_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="defaults, nulls, keep"):
        SandboxConfig(reset="zero")


async def test_put_stores_colors_as_sent_and_keeps_every_other_field() -> None:
    async with sandbox(SandboxConfig(count=5)) as (url, space, session):
        cid = first_id(space)
        body = {**{k: v for k, v in space.conferences[cid].items() if k in WRITABLE_RESETS}}
        body = {k: v for k, v in body.items() if v is not None}
        body["display_name"] = "Themed"
        body["light_primary"] = "#0a84ff"
        status, _ = await put(session, url, cid, body)
        assert status == 200
        stored = space.conferences[cid]
        assert stored["light_primary"] == "#0a84ff"
        seeded = space.seed_snapshot()[cid]
        changed = {k for k in stored if stored[k] != seeded[k]}
        assert changed <= {"display_name", "light_primary", "updated_at"}


async def test_two_puts_in_one_second_have_different_updated_at() -> None:
    async with sandbox(SandboxConfig(count=2, validate=False)) as (url, space, session):
        cid = first_id(space)
        stamps = []
        for _ in range(2):
            await put(session, url, cid, {"display_name": "x"})
            stamps.append(space.conferences[cid]["updated_at"])
        assert stamps[0] < stamps[1]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    ("extra", "attribute", "message"),
    [
        ({"id": MISSING}, "id", "id is not a permitted field"),
        ({"name": "renamed"}, "name", "name is not a permitted field"),
        ({"meta": {}}, "meta", "meta is not a permitted field"),
        ({"created_at": "2022-01-01T00:00:00Z"}, "created_at", "created_at is not a permitted"),
        ({"light_primary": None}, "light_primary", "light_primary must not be null"),
        ({"description": None}, "description", "description must not be null"),
    ],
)
async def test_closed_schema_refuses_fields_and_nulls(
    validate: bool, extra: dict[str, Any], attribute: str, message: str
) -> None:
    async with sandbox(SandboxConfig(count=3, validate=validate)) as (url, space, session):
        cid = first_id(space)
        before = dict(space.conferences[cid])
        status, payload = await put(session, url, cid, {"display_name": "x", **extra})
        assert status == 422
        assert_validation_error(payload, attribute, message)
        assert space.conferences[cid] == before
        assert space.puts_applied == 0
        assert space.put_count == 1


@pytest.mark.parametrize("validate", [True, False])
async def test_display_name_is_required(validate: bool) -> None:
    async with sandbox(SandboxConfig(count=3, validate=validate)) as (url, space, session):
        status, payload = await put(session, url, first_id(space), {"description": "no name"})
        assert status == 422
        assert_validation_error(payload, "display_name", "display_name is required")
        assert space.puts_applied == 0


async def test_validation_checks_patterns_and_enums_only_when_enabled() -> None:
    body = {"display_name": "x", "light_primary": "#12345", "quality": "4k"}
    async with sandbox(SandboxConfig(count=3)) as (url, space, session):
        status, payload = await put(session, url, first_id(space), body)
        assert status == 422
        assert_validation_error(payload, "light_primary", "does not match")
        assert_validation_error(payload, "quality", "is not one of")
    # Throughput runs skip the document and keep only the cheap checks.
    async with sandbox(SandboxConfig(count=3, validate=False)) as (url, space, session):
        status, _ = await put(session, url, first_id(space), body)
        assert status == 200
        assert space.conferences[first_id(space)]["light_primary"] == "#12345"


async def test_body_that_is_not_json_is_422() -> None:
    async with sandbox(SandboxConfig(count=1)) as (url, space, session):
        target = f"{url}{LIST}/{first_id(space)}"
        async with session.put(target, data=b"{not json", headers=AUTH) as response:
            assert response.status == 422
            assert_validation_error(await response.json(), None, "not valid JSON")


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2022-01-01", "2022-01-01T00:00:00Z"),
        ("2022-03-04T05:06:07+02:00", "2022-03-04T03:06:07Z"),
        ("2022-03-04T05:06:07Z", "2022-03-04T05:06:07Z"),
    ],
)
async def test_dates_are_normalised_to_utc(validate: bool, sent: str, stored: str) -> None:
    async with sandbox(SandboxConfig(count=2, validate=validate)) as (url, space, session):
        cid = first_id(space)
        status, answer = await put(session, url, cid, {"display_name": "x", "join_until": sent})
        assert status == 200
        assert space.conferences[cid]["join_until"] == stored
        assert answer["join_until"] == stored


async def test_unknown_ids_are_404() -> None:
    async with sandbox(SandboxConfig(count=2)) as (url, space, session):
        for method in ("GET", "PUT", "DELETE"):
            body = {"display_name": "x"} if method == "PUT" else None
            async with session.request(method, f"{url}{LIST}/{MISSING}", json=body) as response:
                assert response.status == 404, method
                assert await response.json() == {"error": "Not Found"}
        assert space.status_counts[404] == 3
        assert len(space.conferences) == 2


async def test_get_returns_the_stored_conference() -> None:
    async with sandbox(SandboxConfig(count=2)) as (url, space, session):
        cid = first_id(space)
        async with session.get(f"{url}{LIST}/{cid}?include_active_session=true") as response:
            assert response.status == 200
            assert await response.json() == space.conferences[cid]
        assert space.get_count == 1


async def test_create_then_delete() -> None:
    async with sandbox(SandboxConfig(count=2)) as (url, space, session):
        body = {"display_name": "New", "name": "brand_new", "join_from": "2030-05-01"}
        async with session.post(f"{url}{LIST}", json=body) as response:
            assert response.status == 200
            created = await response.json()
        assert space.conferences[created["id"]]["name"] == "brand_new"
        assert space.conferences[created["id"]]["join_from"] == "2030-05-01T00:00:00Z"
        async with session.get(f"{url}{LIST}") as response:
            assert created["id"] in {c["id"] for c in (await response.json())["data"]}
        async with session.post(f"{url}{LIST}", json=body) as response:
            assert response.status == 422
            assert_validation_error(await response.json(), "name", "already taken")
        async with session.delete(f"{url}{LIST}/{created['id']}") as response:
            assert response.status == 204
        assert created["id"] not in space.conferences
        assert len(space.conferences) == 2


# Auth


@pytest.mark.parametrize(
    "header",
    [
        None,
        aiohttp.encode_basic_auth(DEFAULT_PROJECT_ID, "wrong-token"),
        aiohttp.encode_basic_auth("other-project", DEFAULT_API_TOKEN),
        "Bearer sandbox-token",
        "Basic !!!not-base64",
    ],
)
async def test_missing_or_wrong_credentials_are_401(header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with sandbox(SandboxConfig(count=2), headers=headers) as (url, space, session):
        cid = first_id(space)
        before = dict(space.conferences[cid])
        async with session.get(f"{url}{LIST}") as response:
            assert response.status == 401
            assert await response.json() == {"error": "Unauthorized"}
        async with session.put(f"{url}{LIST}/{cid}", json={"display_name": "x"}) as response:
            assert response.status == 401
        assert space.unauthorized_count == 2
        assert space.conferences[cid] == before


@pytest.mark.parametrize("validate", [True, False])
async def test_auth_scheme_name_is_case_insensitive(validate: bool) -> None:
    token = aiohttp.encode_basic_auth(DEFAULT_PROJECT_ID, DEFAULT_API_TOKEN).split(" ")[1]
    headers = {"Authorization": f"bAsIc {token}"}
    async with sandbox(SandboxConfig(count=2, validate=validate), headers=headers) as (
        url,
        space,
        session,
    ):
        status, _ = await put(session, url, first_id(space), {"display_name": "x"})
        assert status == 200
        assert space.unauthorized_count == 0


# Rate limit and faults


async def test_rate_limit_answers_429_with_retry_after_and_does_not_apply() -> None:
    config = SandboxConfig(count=2, put_rate_limit=3, rate_window_s=30, validate=False)
    async with sandbox(config) as (url, space, session):
        cid = first_id(space)
        statuses = []
        for n in range(5):
            async with session.put(f"{url}{LIST}/{cid}", json={"display_name": f"v{n}"}) as r:
                statuses.append(r.status)
                retry_after = r.headers.get("Retry-After")
                if r.status == 429:
                    assert await r.json() == {"error": "Too Many Requests"}
                    assert retry_after is not None
                    assert 1 <= int(retry_after) <= 30
        assert statuses == [200, 200, 200, 429, 429]
        assert space.puts_applied == 3
        assert space.conferences[cid]["display_name"] == "v2"
        # GETs are never rate limited.
        async with session.get(f"{url}{LIST}/{cid}") as response:
            assert response.status == 200


async def test_rate_limit_frees_a_slot_after_the_window() -> None:
    config = SandboxConfig(count=2, put_rate_limit=2, rate_window_s=0.3, validate=False)
    async with sandbox(config) as (url, space, session):
        cid = first_id(space)
        statuses = [(await put(session, url, cid, {"display_name": "x"}))[0] for _ in range(3)]
        await asyncio.sleep(0.35)
        statuses.append((await put(session, url, cid, {"display_name": "y"}))[0])
        assert statuses == [200, 200, 429, 200]
        assert space.conferences[cid]["display_name"] == "y"


@pytest.mark.parametrize(
    ("faults", "status", "error"),
    [
        (FaultConfig(error_500=1.0), 500, "Internal Server Error"),
        (FaultConfig(error_503=1.0), 503, "Service Unavailable"),
        (FaultConfig(error_429=1.0, retry_after_s=1.2), 429, "Too Many Requests"),
    ],
)
async def test_injected_put_faults_do_not_apply(
    faults: FaultConfig, status: int, error: str
) -> None:
    async with sandbox(SandboxConfig(count=2, faults=faults)) as (url, space, session):
        cid = first_id(space)
        before = dict(space.conferences[cid])
        async with session.put(f"{url}{LIST}/{cid}", json={"display_name": "x"}) as response:
            assert response.status == status
            assert await response.json() == {"error": error}
            if status == 429:
                assert response.headers["Retry-After"] == "2"
        assert space.conferences[cid] == before
        assert space.puts_applied == 0
        assert space.status_counts[status] == 1


async def test_injected_429_can_send_an_http_date() -> None:
    faults = FaultConfig(error_429=1.0, retry_after_s=5, retry_after_http_date=True)
    async with sandbox(SandboxConfig(count=2, faults=faults)) as (url, space, session):
        async with session.put(
            f"{url}{LIST}/{first_id(space)}", json={"display_name": "x"}
        ) as response:
            assert response.status == 429
            when = parsedate_to_datetime(response.headers["Retry-After"])
        assert 3 <= when.timestamp() - time.time() <= 6


async def test_get_faults_hit_single_and_list_gets() -> None:
    faults = FaultConfig(get_500=1.0)
    async with sandbox(SandboxConfig(count=2, faults=faults)) as (url, space, session):
        for target in (f"{url}{LIST}", f"{url}{LIST}/{first_id(space)}"):
            async with session.get(target) as response:
                assert response.status == 500
                assert await response.json() == {"error": "Internal Server Error"}
        status, _ = await put(session, url, first_id(space), {"display_name": "x"})
        assert status == 200


async def test_drop_after_apply_applies_then_closes_without_an_answer() -> None:
    faults = FaultConfig(drop_after_apply=1.0)
    async with sandbox(SandboxConfig(count=2, faults=faults)) as (url, space, session):
        cid = first_id(space)
        with pytest.raises(aiohttp.ClientConnectionError):
            await put(session, url, cid, {"display_name": "applied anyway"})
        assert space.conferences[cid]["display_name"] == "applied anyway"
        # aiohttp silently retries an idempotent PUT once on a dropped connection.
        assert space.puts_applied == space.put_count >= 1
        assert space.dropped_count == space.put_count
        assert 200 not in space.status_counts


async def test_drop_after_apply_sends_not_one_byte() -> None:
    faults = FaultConfig(drop_after_apply=1.0)
    async with serve(SandboxConfig(count=2, faults=faults)) as running:
        cid = first_id(running.space)
        host, port = running.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"display_name": "raw"}'
        writer.write(
            f"PUT {LIST}/{cid} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
        writer.close()
        await writer.wait_closed()
        assert running.space.puts_applied == 1
        assert running.space.conferences[cid]["display_name"] == "raw"


async def test_faults_are_reproducible_by_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        config = SandboxConfig(count=1, seed=seed, faults=FaultConfig(error_500=0.5))
        async with sandbox(config) as (url, space, session):
            cid = first_id(space)
            return [(await put(session, url, cid, {"display_name": "x"}))[0] for _ in range(24)]

    first = await statuses(7)
    assert first == await statuses(7)
    assert {200, 500} == set(first)
    assert first != await statuses(8)


async def test_latency_is_added_to_api_requests_only() -> None:
    async with sandbox(SandboxConfig(count=2, latency_s=0.25)) as (url, _space, session):
        started = time.perf_counter()
        async with session.get(f"{url}{LIST}") as response:
            assert response.status == 200
        assert time.perf_counter() - started >= 0.25
        started = time.perf_counter()
        async with session.get(f"{url}/_sandbox/stats") as response:
            assert response.status == 200
        assert time.perf_counter() - started < 0.25


async def test_a_space_with_a_capacity_queues_requests_beyond_it() -> None:
    """Capacity 2 at 0.2 s: six requests at once are served two at a time, so the last
    pair waits two turns; without a capacity all six take one turn."""

    async def six_at_once(config: SandboxConfig) -> tuple[float, dict[str, Any]]:
        async with sandbox(config) as (url, space, session):

            async def one() -> None:
                async with session.get(f"{url}{LIST}") as response:
                    assert response.status == 200

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(6)))
            return time.perf_counter() - started, space.stats()

    queued, stats = await six_at_once(SandboxConfig(count=2, latency_s=0.2, capacity=2))
    assert queued >= 0.6
    # The requests waited 0.2, 0.4 and 0.6 s, two each: the median is 0.4 s (more on a
    # busy machine, never less).
    assert stats["median_latency_ms"] >= 400
    # All served at once: 0.2 s each, well short of the queued median. A stall of this
    # busy machine can only make a median longer, never shorter, so the shortest of three
    # tries is the one judged: a Space that queued without a capacity never gets under.
    medians = []
    for _ in range(3):
        _flat, stats = await six_at_once(SandboxConfig(count=2, latency_s=0.2))
        medians.append(stats["median_latency_ms"])
        if medians[-1] < 390:
            break
    assert 200 <= min(medians) < 390, medians


def test_capacity_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="capacity"):
        SandboxConfig(capacity=0)


@pytest.mark.parametrize(("counts", "median"), [
    ({}, None), ({5: 1}, 5.0), ({1: 1, 3: 1}, 2.0), ({1: 2, 9: 1}, 1.0), ({1: 1, 2: 2, 7: 1}, 2.0),
])
def test_median_of_counts(counts: dict[int, int], median: float | None) -> None:
    assert median_of_counts(Counter(counts)) == median


# Seeded data


def test_seeding_is_deterministic_by_seed() -> None:
    one = SpaceState(SandboxConfig(count=50, seed=3)).conferences
    assert one == SpaceState(SandboxConfig(count=50, seed=3)).conferences
    assert one != SpaceState(SandboxConfig(count=50, seed=4)).conferences


def test_seeded_conferences_are_valid_and_varied() -> None:
    conferences = list(SpaceState(SandboxConfig(count=2000, seed=1)).conferences.values())
    document = spec_document()
    schema = {
        "$ref": "#/components/schemas/Video.Conference",
        "components": document["components"],
    }
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for conference in conferences[:300]:
        validator.validate(conference)
    names = [c["name"] for c in conferences]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in names)
    assert all(c["size"] is not None for c in conferences)
    assert all(c["updated_at"] >= c["created_at"] for c in conferences)
    assert any(c["display_name"] is None for c in conferences)
    assert any(c["display_name"] and not c["display_name"].isascii() for c in conferences)
    assert any(c["meta"] is None for c in conferences)
    assert any(isinstance(c["meta"], dict) for c in conferences)
    assert any(c["light_primary"] is None for c in conferences)
    on_theme = [c for c in conferences if all(str(c[k]).upper() == v for k, v in ON_THEME.items())]
    assert 0.07 < len(on_theme) / len(conferences) < 0.13
    assert any(c["light_primary"] == "#0a84ff" for c in on_theme)
    assert any(c["light_primary"] == "#0A84FF" for c in on_theme)


def test_seed_snapshot_is_a_deep_copy_of_the_seed() -> None:
    space = SpaceState(SandboxConfig(count=10))
    snapshot = space.seed_snapshot()
    assert snapshot == space.conferences
    cid = first_id(space)
    space.conferences[cid]["display_name"] = "changed"
    if isinstance(space.conferences[cid]["meta"], dict):
        space.conferences[cid]["meta"]["x"] = 1
    assert space.seed_snapshot() == snapshot
    assert space.seed_snapshot()[cid] != space.conferences[cid]


# Admin endpoints and the CLI


async def test_admin_endpoints_report_counters_and_state_without_auth() -> None:
    async with sandbox(SandboxConfig(count=3, validate=False), headers={}) as (
        url,
        space,
        session,
    ):
        cid = first_id(space)
        await put(session, url, cid, {"display_name": "x"})  # 401: no credentials
        async with session.put(
            f"{url}{LIST}/{cid}", json={"display_name": "changed"}, headers=AUTH
        ) as response:
            assert response.status == 200
        async with session.get(f"{url}/_sandbox/stats") as response:
            assert response.status == 200
            stats = await response.json()
        assert stats["put_count"] == 2
        assert stats["puts_applied"] == 1
        assert stats["unauthorized_count"] == 1
        assert stats["status_counts"] == {"200": 1, "401": 1}
        async with session.get(f"{url}/_sandbox/conferences") as response:
            state = await response.json()
        assert state["conferences"][cid]["display_name"] == "changed"
        assert state["seeded"][cid]["display_name"] != "changed"
        assert set(state["seeded"]) == set(state["conferences"])
        assert ("GET", "/_sandbox/stats") not in space.requests
        assert space.requests == [("PUT", f"{LIST}/{cid}"), ("PUT", f"{LIST}/{cid}")]


def test_python_m_worker_sandbox_announces_itself_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.sandbox", "--port", "0", "--count", "5", "--no-validate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["event"] == "sandbox.ready"
        assert ready["project_id"] == DEFAULT_PROJECT_ID
        assert ready["count"] == 5
        assert ready["validate"] is False
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", ready["url"])
        import urllib.request

        request = urllib.request.Request(f"{ready['url']}{LIST}", headers=AUTH)  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            assert len(json.loads(response.read())["data"]) == 5
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()


# A newer Space (--extra-field)

NEWER = SandboxConfig(count=3, extra_fields=(("enable_live_captions", True),
                                             ("tier", {"level": "gold"})))


@pytest.mark.parametrize("validate", [True, False], ids=["validating", "hand-checks"])
async def test_a_newer_space_shows_its_extra_fields_and_a_put_without_them_resets_them(
    validate: bool,
) -> None:
    async with sandbox(SandboxConfig(count=3, validate=validate,
                                     extra_fields=NEWER.extra_fields)) as (url, space, session):
        cid = first_id(space)
        async with session.get(f"{url}{LIST}/{cid}") as response:
            shown = await response.json()
        assert shown["enable_live_captions"] is True and shown["tier"] == {"level": "gold"}
        async with session.get(f"{url}{LIST}") as response:
            assert all(item["tier"] == {"level": "gold"}
                       for item in (await response.json())["data"])
        status, answer = await put(session, url, cid, {"display_name": "x"})
        assert status == 200
        assert answer["enable_live_captions"] is None and answer["tier"] is None
        # The newer Space accepts its own property in a PUT, like any writable one.
        status, answer = await put(session, url, cid,
                                   {"display_name": "x", "enable_live_captions": False})
        assert status == 200, answer
        assert answer["enable_live_captions"] is False


async def test_a_newer_space_in_keep_mode_leaves_an_omitted_extra_field_alone() -> None:
    config = SandboxConfig(count=2, extra_fields=NEWER.extra_fields, extra_on_put="keep")
    async with sandbox(config) as (url, space, session):
        cid = first_id(space)
        status, answer = await put(session, url, cid, {"display_name": "x"})
        assert status == 200
        assert answer["enable_live_captions"] is True and answer["tier"] == {"level": "gold"}


async def test_a_newer_space_creates_conferences_with_its_extra_fields() -> None:
    async with sandbox(NEWER) as (url, _space, session):
        async with session.post(f"{url}{LIST}", json={"display_name": "New"}) as response:
            created = await response.json()
        assert response.status == 200, created
        assert created["enable_live_captions"] is True


def test_an_extra_field_the_spec_already_names_is_refused() -> None:
    with pytest.raises(ValueError, match="the spec already names it"):
        SandboxConfig(extra_fields=(("description", None),))
    with pytest.raises(ValueError, match="given twice"):
        SandboxConfig(extra_fields=(("a", 1), ("a", 2)))


# A port the sandbox cannot listen on: exit 2 and a sentence, never a traceback.


def _sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker", "sandbox", "--no-validate", *args],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("args", "said"), [
    (("--port", "99999"), "--port: 99999 must be at most 65535"),
    (("--port", "-1"), "--port: -1 must be at least 0"),
    (("--port", "65535", "--spaces", "3"), "--port 65535 with --spaces 3 needs ports up to "
                                           "65537; the last port is 65535"),
])
def test_a_port_out_of_range_is_exit_2_naming_the_flag(args: tuple[str, ...], said: str) -> None:
    done = _sandbox_cli(*args)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("module", [("worker", "sandbox"), ("worker.sandbox",)])
def test_a_port_already_in_use_is_exit_2_saying_which(module: tuple[str, ...]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", *module, "--no-validate", "--port",
                               str(port)], capture_output=True, text=True, timeout=30,
                              check=False)
    assert done.returncode == 2, done.stderr
    assert (f"--port {port}: something else already listens on 127.0.0.1:{port}; stop it, "
            "or pick another port (--port 0 picks a free one)") in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
