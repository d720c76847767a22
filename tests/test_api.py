"""The HTTP edge: the three calls against real loopback servers, and how every kind of
failure is translated into the error tree (status, server messages, retryable or not)."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from aiohttp import web

from tests.support import SANDBOX_CREDENTIALS, SandboxFactory, serve_app, trap_app
from worker.credentials import Credentials
from worker.errors import ApiError, AuthError, NotFoundError, RetryableApiError
from worker.run.api import (
    CONFERENCES,
    SNIPPET_CHARS,
    SpaceClient,
    error_messages,
    request_path,
    snippet,
)
from worker.sandbox import FaultConfig
from worker.space import parse_space

pytestmark = pytest.mark.anyio
# A conference id as the API gives them: a UUID (see test_hostile_server for the others).
CID = "0b6c2f5e-0000-4000-8000-000000000001"

MISSING = "00000000-0000-4000-8000-000000000000"


@asynccontextmanager
async def client_for(url: str, *, token: str | None = None,
                     timeout_s: float = 5.0) -> AsyncIterator[SpaceClient]:
    credentials = SANDBOX_CREDENTIALS
    if token is not None:
        credentials = Credentials(credentials.project_id, token)
    header = credentials.authorization()
    async with aiohttp.ClientSession() as session:
        yield SpaceClient(session, parse_space(url), header, timeout_s=timeout_s)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def app_answering(handler: Handler) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


# The three calls


async def test_list_page_returns_conferences_and_the_next_link(
    sandbox_factory: SandboxFactory
) -> None:
    async with sandbox_factory(count=5) as sb, client_for(sb.url) as client:
        page = await client.list_page(client.first_page_url(2))
        assert len(page.conferences) == 2
        assert {c["id"] for c in page.conferences} <= set(sb.space.conferences)
        assert page.next_link is not None
        assert "page_token=" in page.next_link
        assert sb.space.requests == [("GET", f"{CONFERENCES}?page_size=2")]
        last = await client.list_page(client.first_page_url(1000))
        assert last.next_link is None
        assert {c["id"] for c in last.conferences} == set(sb.space.conferences)


async def test_get_returns_the_stored_conference(sandbox_factory: SandboxFactory) -> None:
    async with sandbox_factory(count=3) as sb, client_for(sb.url) as client:
        cid = next(iter(sb.space.conferences))
        assert await client.get(cid) == sb.space.conferences[cid]
        assert sb.space.get_count == 1


async def test_put_sends_the_body_as_json_and_returns_the_answer(
    sandbox_factory: SandboxFactory
) -> None:
    async with sandbox_factory(count=3) as sb, client_for(sb.url) as client:
        cid = next(iter(sb.space.conferences))
        answer = await client.put(cid, {"display_name": "Ünïcode 🎉", "light_primary": "#0A84FF"})
        stored = sb.space.conferences[cid]
        assert stored["display_name"] == "Ünïcode 🎉"
        assert stored["light_primary"] == "#0A84FF"
        assert answer == stored
        assert sb.space.puts_applied == 1


async def test_list_filters_go_into_the_first_page_url(sandbox_factory: SandboxFactory) -> None:
    async with sandbox_factory(count=3) as sb, client_for(sb.url) as client:
        url = client.first_page_url(10, {"include_active_session": "false"})
        await client.list_page(url)
        assert sb.space.requests == [
            ("GET", f"{CONFERENCES}?page_size=10&include_active_session=false")]


# Errors from the Space


async def test_404_is_not_found(sandbox_factory: SandboxFactory) -> None:
    async with sandbox_factory(count=1) as sb, client_for(sb.url) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.get(MISSING)
        assert caught.value.status == 404
        assert caught.value.errors == ("Not Found",)


async def test_422_carries_the_servers_messages_and_is_not_retryable(
    sandbox_factory: SandboxFactory
) -> None:
    async with sandbox_factory(count=1) as sb, client_for(sb.url) as client:
        cid = next(iter(sb.space.conferences))
        with pytest.raises(ApiError) as caught:
            await client.put(cid, {"display_name": "x" * 201, "light_primary": "blue"})
        assert not isinstance(caught.value, RetryableApiError)
        assert caught.value.status == 422
        attributes = {message.split(":", 1)[0] for message in caught.value.errors}
        assert {"display_name", "light_primary"} <= attributes
        assert sb.space.status_counts[422] == 1
        assert sb.space.puts_applied == 0


async def test_wrong_credentials_are_an_auth_error(sandbox_factory: SandboxFactory) -> None:
    async with sandbox_factory(count=1) as sb, client_for(sb.url, token="wrong") as client:
        with pytest.raises(AuthError) as caught:
            await client.list_page(client.first_page_url(10))
        assert caught.value.status == 401
        assert "SIGNALWIRE_API_TOKEN" in str(caught.value)  # says what to check
        assert "wrong" not in str(caught.value)
        assert sb.space.unauthorized_count == 1


async def test_403_is_an_auth_error_too() -> None:
    async def forbidden(_request: web.Request) -> web.Response:
        return web.json_response({"error": "Forbidden: token lacks the Video scope"},
                                 status=403)

    async with serve_app(app_answering(forbidden)) as url, client_for(url) as client:
        with pytest.raises(AuthError) as caught:
            await client.get(CID)
        assert caught.value.status == 403
        assert "lacks the Video scope" in str(caught.value)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_retryable_and_keep_retry_after(status: int) -> None:
    async def transient(_request: web.Request) -> web.Response:
        return web.json_response({"error": "busy"}, status=status,
                                 headers={"Retry-After": "7"})

    async with serve_app(app_answering(transient)) as url, client_for(url) as client:
        with pytest.raises(RetryableApiError) as caught:
            await client.put(CID, {"display_name": "x"})
        assert caught.value.status == status
        assert caught.value.retry_after == "7"
        assert caught.value.errors == ("busy",)


@pytest.mark.parametrize("status", [400, 409, 501])
async def test_other_error_statuses_are_not_retryable(status: int) -> None:
    async def refuse(_request: web.Request) -> web.Response:
        return web.Response(status=status, text="<html>nope</html>")

    async with serve_app(app_answering(refuse)) as url, client_for(url) as client:
        with pytest.raises(ApiError) as caught:
            await client.get(CID)
        assert type(caught.value) is ApiError
        assert caught.value.status == status


async def test_the_sandboxs_injected_faults_are_retryable(sandbox_factory: SandboxFactory) -> None:
    faults = FaultConfig(error_503=1.0)
    async with sandbox_factory(count=1, faults=faults) as sb, client_for(sb.url) as client:
        cid = next(iter(sb.space.conferences))
        with pytest.raises(RetryableApiError) as caught:
            await client.put(cid, {"display_name": "x"})
        assert caught.value.status == 503


async def test_a_rate_limited_put_carries_the_servers_retry_after(
    sandbox_factory: SandboxFactory
) -> None:
    async with sandbox_factory(count=2, put_rate_limit=1, rate_window_s=30) as sb, client_for(
        sb.url
    ) as client:
        first, second = list(sb.space.conferences)
        await client.put(first, {"display_name": "a"})
        with pytest.raises(RetryableApiError) as caught:
            await client.put(second, {"display_name": "b"})
        assert caught.value.status == 429
        assert caught.value.retry_after is not None
        assert 25 <= int(caught.value.retry_after) <= 30


# Transport failures


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_retryable() -> None:
    async with client_for(f"http://127.0.0.1:{closed_port()}") as client:
        with pytest.raises(RetryableApiError) as caught:
            await client.get(CID)
        assert caught.value.status is None
        assert "the TCP connection to 127.0.0.1:" in caught.value.errors[0]
        assert "Connection refused" in caught.value.errors[0]


async def test_a_connection_dropped_after_the_update_is_retryable(
    sandbox_factory: SandboxFactory
) -> None:
    faults = FaultConfig(drop_after_apply=1.0)
    async with sandbox_factory(count=1, faults=faults) as sb, client_for(sb.url) as client:
        cid = next(iter(sb.space.conferences))
        with pytest.raises(RetryableApiError) as caught:
            await client.put(cid, {"display_name": "applied, unanswered"})
        assert caught.value.status is None
        assert sb.space.conferences[cid]["display_name"] == "applied, unanswered"
        # aiohttp itself resends an idempotent request once on a dropped connection, so
        # the server may see two; either way the caller is told to retry.
        assert sb.space.dropped_count >= 1


async def test_a_slow_answer_times_out_as_retryable() -> None:
    async def slow(_request: web.Request) -> web.Response:
        await anyio.sleep(2)
        return web.json_response({})

    async with serve_app(app_answering(slow)) as url, client_for(url, timeout_s=0.1) as client:
        with pytest.raises(RetryableApiError) as caught:
            await client.get(CID)
        assert caught.value.status is None
        assert "timed out" in caught.value.errors[0]


# Answers that are not what the API promises


@pytest.mark.parametrize(
    ("body", "call"),
    [(b"not json", "get"), (b"[1, 2]", "get"), (b'{"data": {}}', "list"),
     (b'{"data": []}', "list"), (b'{"links": {}}', "list")],
)
async def test_a_malformed_200_is_an_api_error(body: bytes, call: str) -> None:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async with serve_app(app_answering(answer)) as url, client_for(url) as client:
        request = (client.get(CID) if call == "get"
                   else client.list_page(client.first_page_url(10)))
        with pytest.raises(ApiError) as caught:
            await request
        assert type(caught.value) is ApiError
        assert caught.value.status == 200


async def test_an_empty_or_absent_next_link_means_the_last_page() -> None:
    async def answer(request: web.Request) -> web.Response:
        links: dict[str, Any] = {"self": "x"}
        if "blank" in request.query:
            links["next"] = ""
        elif "null" in request.query:
            links["next"] = None
        return web.json_response({"links": links, "data": []})

    async with serve_app(app_answering(answer)) as url, client_for(url) as client:
        for query in ("blank", "null", "absent"):
            page = await client.list_page(f"{url}{CONFERENCES}?{query}=1")
            assert page.next_link is None


# Credentials stay on the Space


async def test_the_authorization_header_is_sent_to_the_space() -> None:
    seen: list[str] = []
    async with serve_app(trap_app(seen)) as url, client_for(url) as client:
        await client.list_page(client.first_page_url(10))
    assert seen == [f"GET {CONFERENCES}?page_size=10 {SANDBOX_CREDENTIALS.authorization()}"]


async def test_a_url_off_the_space_is_refused_without_a_request() -> None:
    seen: list[str] = []
    async with serve_app(trap_app(seen)) as trap, client_for(
        f"http://127.0.0.1:{closed_port()}"
    ) as client:
        with pytest.raises(ApiError):
            await client.list_page(f"{trap}{CONFERENCES}")
    assert seen == []


async def test_a_redirect_is_not_followed() -> None:
    seen: list[str] = []
    async with serve_app(trap_app(seen)) as trap:

        async def redirect(_request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{trap}{CONFERENCES}")

        async with serve_app(app_answering(redirect)) as url, client_for(url) as client:
            with pytest.raises(ApiError) as caught:
                await client.list_page(client.first_page_url(10))
            assert caught.value.status == 302
            assert not isinstance(caught.value, RetryableApiError)
    assert seen == []


# The server's own words


def test_error_messages_reads_the_422_shape() -> None:
    payload = {"errors": [
        {"type": "validation_error", "code": "invalid_parameter",
         "message": "is too long", "attribute": "display_name", "url": "u"},
        {"code": "missing", "attribute": None},
    ]}
    assert error_messages(payload) == ("display_name: is too long", "missing")


def test_error_messages_reads_the_single_error_shape() -> None:
    assert error_messages({"error": "Unauthorized"}) == ("Unauthorized",)


@pytest.mark.parametrize("payload", [None, [], "text", {"errors": "x"}, {"error": 3},
                                     {"errors": [3, None]}])
def test_error_messages_of_anything_else_is_empty(payload: object) -> None:
    assert error_messages(payload) == ()


# Text whose every backslash starts a whole escape, as `unicode_escape` and JSON write
# them: \xNN, \uNNNN, \UNNNNNNNN, or a backslash and one character (\\, \n, \").
_WHOLE_ESCAPES = re.compile(r'(?:\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[^xuU])|[^\\])*')


@pytest.mark.parametrize("tail", [
    "\x1b[2J" * 40,  # \x1b
    "\u202e\U0001f600\\" * 40,  # \u202e, and \U0001f600 and \\ once a control is escaped
])
def test_an_error_snippet_is_cut_before_an_escape_never_inside(tail: str) -> None:
    """Wherever the cut falls: the snippet of an answer (raw or JSON) and a request's
    path hold whole escapes only, and read back as the start of what the server sent
    (half of `\\x1b` reads as garbage, and its backslash escapes the `...`)."""
    cuts = set()
    for pad in range(SNIPPET_CHARS - 12, SNIPPET_CHARS):
        text = "x" * pad + tail
        shown = snippet(text.encode(), None).removeprefix("answer: ").removesuffix("...")
        assert _WHOLE_ESCAPES.fullmatch(shown), shown[-20:]
        assert text.startswith(shown.encode("ascii").decode("unicode_escape")), shown[-20:]
        cuts.add(len(shown))
        payload = {"error": text}
        shown = snippet(orjson.dumps(payload), payload).removeprefix("answer: ")
        assert _WHOLE_ESCAPES.fullmatch(shown.removesuffix("...")), shown[-20:]
        path = request_path("https://example.signalwire.com/" + text[SNIPPET_CHARS - 120:])
        assert _WHOLE_ESCAPES.fullmatch(path.removesuffix("...")), path[-20:]
    assert len(cuts) > 3  # the cut fell in several places, some inside an escape
