"""Servers that misbehave on purpose: listings that never end, answers too large to hold,
ids that are paths, error bodies in shapes we do not know, and echoes of our credentials.
Each gets a clear, bounded answer, and no credential reaches anything rebrand writes."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from tests.support import SANDBOX_CREDENTIALS, json_events, serve_app, settings_for
from tests.test_cli import rebrand, sandbox_env, write_config
from worker.errors import ExitCode, ListingError, UnreachableError
from worker.run.api import SNIPPET_CHARS
from worker.run.job import JobResult, run_job
from worker.run.report import Reporter
from worker.sandbox.data import seed_conferences

pytestmark = pytest.mark.anyio

LIST = "/api/video/conferences"


_SEEDED = list(seed_conferences(40, 7, 0.0).values())


def conference(cid: str, n: int = 0) -> dict[str, Any]:
    """A whole conference as the spec describes it (off theme), under the id `cid`."""
    return {**_SEEDED[n % len(_SEEDED)], "id": cid, "name": f"room-{n}",
            "display_name": f"Room {n}", "light_primary": "#000000"}


def ids(count: int, start: int = 0) -> list[str]:
    return [str(uuid.UUID(int=start + i + 1)) for i in range(count)]


class Ran:
    """A job's result with the reporter that saw it: the failures' own words."""

    def __init__(self, result: JobResult, reporter: Reporter) -> None:
        self.result, self.reporter = result, reporter
        self.exit_code, self.error, self.summary = result.exit_code, result.error, result.summary


async def run(url: str, tmp_path: Path, **settings: Any) -> Ran:
    reporter = Reporter()
    result = await run_job(settings_for(url, **settings, backup_dir=tmp_path),
                           SANDBOX_CREDENTIALS, reporter=reporter)
    return Ran(result, reporter)


def space_app(pages: Any, seen: list[str], *, get: Any = None, put: Any = None
              ) -> web.Application:
    """A Space whose list page N is `pages(N, request)`, and whose GET and PUT echo the
    conference (or call `get` / `put`)."""
    store: dict[str, dict[str, Any]] = {}

    async def list_page(request: web.Request) -> web.StreamResponse:
        seen.append(f"GET {request.path_qs}")
        number = sum(1 for s in seen if s.startswith(f"GET {LIST}?")) - 1
        answer = pages(number, request)
        if isinstance(answer, web.StreamResponse):
            return answer
        for item in answer["data"]:
            store[item["id"]] = item
        return web.json_response(answer)

    async def get_one(request: web.Request) -> web.StreamResponse:
        seen.append(f"GET {request.path}")
        if get is not None:
            return await get(request)  # type: ignore[no-any-return]
        return web.json_response(store[request.match_info["id"]])

    async def put_one(request: web.Request) -> web.StreamResponse:
        seen.append(f"PUT {request.path}")
        if put is not None:
            return await put(request)  # type: ignore[no-any-return]
        cid = request.match_info["id"]
        store[cid] = {**store[cid], **await request.json()}
        return web.json_response(store[cid])

    app = web.Application()
    app.router.add_get(LIST, list_page)
    app.router.add_get(LIST + "/{id:.*}", get_one)
    app.router.add_put(LIST + "/{id:.*}", put_one)
    return app


# 18.2 Listings end


async def test_a_fresh_cursor_on_every_page_with_the_same_items_fails_after_two_pages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = [conference(cid, n) for n, cid in enumerate(ids(3))]
    seen: list[str] = []

    def pages(number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {"next": f"{LIST}?page_token=fresh-{number}"}, "data": same}

    async with serve_app(space_app(pages, seen)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.ABORTED
    assert isinstance(result.error, ListingError)
    assert len([s for s in seen if s.startswith(f"GET {LIST}?")]) == 2
    failed = [e for e in json_events(capsys.readouterr().out) if e["event"] == "listing.failed"]
    assert failed[0]["path"] == f"{LIST}?page_token=fresh-0"
    assert "no conference not already listed" in failed[0]["reason"]


async def test_a_next_back_to_an_earlier_page_fails_the_listing(tmp_path: Path) -> None:
    seen: list[str] = []
    first, second = ids(2), ids(2, start=10)

    def pages(number: int, _request: web.Request) -> dict[str, Any]:
        batch = first if number % 2 == 0 else second
        link = f"{LIST}?page_token=b" if number % 2 == 0 else f"{LIST}?page_size=1000"
        return {"links": {"next": link}, "data": [conference(c) for c in batch]}

    async with serve_app(space_app(pages, seen)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.ABORTED
    assert "leads back to a page already read" in str(result.error)
    assert len([s for s in seen if s.startswith(f"GET {LIST}?")]) == 2


@pytest.mark.parametrize("bad", [1, True, {"href": "/api/video/conferences?page=2"},
                                 ["/api/video/conferences?page=2"]])
async def test_a_next_that_is_not_a_string_fails_the_listing_rather_than_ending_it(
    tmp_path: Path, bad: object
) -> None:
    seen: list[str] = []

    def pages(number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {"next": bad}, "data": [conference(c) for c in ids(2)]}

    async with serve_app(space_app(pages, seen)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.ABORTED
    assert f"links.next is {json.dumps(bad, separators=(',', ':'))}, not a link" in str(
        result.error)
    assert len([s for s in seen if s.startswith(f"GET {LIST}?")]) == 1


@pytest.mark.parametrize("last", [None, ""])
async def test_a_null_or_empty_next_is_the_last_page(tmp_path: Path, last: object) -> None:
    seen: list[str] = []

    def pages(number: int, _request: web.Request) -> dict[str, Any]:
        if number == 0:
            return {"links": {"next": f"{LIST}?page_token=2"},
                    "data": [conference(c) for c in ids(2)]}
        return {"links": {"next": last}, "data": [conference(c) for c in ids(2, start=5)]}

    async with serve_app(space_app(pages, seen)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.OK
    assert result.summary.listed == 4 and result.summary.updated == 4


async def test_a_listing_past_the_page_limit_fails(tmp_path: Path) -> None:
    seen: list[str] = []

    def pages(number: int, _request: web.Request) -> dict[str, Any]:
        # Every page new conferences and a new cursor: only the limit can stop it.
        return {"links": {"next": f"{LIST}?page_token={number + 1}"},
                "data": [conference(c) for c in ids(2, start=2 * number)]}

    async with serve_app(space_app(pages, seen)) as url:
        result = await run(url, tmp_path, max_pages=5, dry_run=True)
    assert result.exit_code == ExitCode.ABORTED
    assert "more than 5 pages (--max-pages)" in str(result.error)
    assert len([s for s in seen if s.startswith(f"GET {LIST}?")]) == 5
    assert result.summary.listed == 10


async def test_listing_errors_name_the_path_and_the_status(tmp_path: Path) -> None:
    def pages(_number: int, _request: web.Request) -> web.Response:
        return web.json_response({"errors": [{"message": "no such thing"}]}, status=404)

    async with serve_app(space_app(pages, [])) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.ABORTED
    assert isinstance(result.error, UnreachableError)
    assert str(result.error) == (f"listing conferences failed at GET {LIST}?page_size=1000: "
                                 "HTTP 404: no such thing")


# 13.5 Bounded reads, ids as one segment, unknown error bodies


async def test_an_answer_over_the_size_limit_is_refused_naming_path_and_limit(
    tmp_path: Path
) -> None:
    big = ids(1)[0]

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(big)]}

    async def huge(_request: web.Request) -> web.StreamResponse:
        # 40 MB of JSON, streamed without a Content-Length.
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(_request)
        await response.write(b'{"id": "' + big.encode() + b'", "description": "')
        for _ in range(40):
            await response.write(b"x" * (1 << 20))
        await response.write(b'"}')
        return response

    async with serve_app(space_app(pages, [], get=huge)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.FAILURES
    (failure,) = result_failures(result)
    assert f"GET {LIST}/{big} is larger than 32 MiB" in failure
    # What it means, and what to do: nothing was written from it; check what answered.
    assert "nothing was written from it" in failure
    assert "check that `space` names the Space itself" in failure


async def test_a_gzip_bomb_is_bounded_after_decompression(tmp_path: Path) -> None:
    bomb = gzip.compress(b'{"links": {}, "data": [' + b" " * (48 << 20) + b"]}", 9)
    assert len(bomb) < 100_000

    def pages(_number: int, _request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "application/json"})

    async with serve_app(space_app(pages, [])) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.ABORTED
    assert f"GET {LIST}?page_size=1000 is larger than 32 MiB" in str(result.error)


@pytest.mark.parametrize("bad_id", ["../../api/relay/rest/phone_numbers", "x?y=1", "a/b",
                                    "..", "%2e%2e", "", "0" * 36])
async def test_an_id_that_is_not_a_uuid_is_failed_without_a_request(
    tmp_path: Path, bad_id: str
) -> None:
    good = ids(1)[0]
    seen: list[str] = []

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(bad_id), conference(good, 1)]}

    async with serve_app(space_app(pages, seen)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.FAILURES
    requested = [s for s in seen if not s.startswith(f"GET {LIST}?")]
    assert requested == [f"GET {LIST}/{good}", f"PUT {LIST}/{good}"]
    (failure,) = result_failures(result)
    assert "is not a UUID" in failure and "no request was sent" in failure


async def test_an_error_body_of_unknown_shape_is_shown_as_a_short_snippet(
    tmp_path: Path
) -> None:
    cid = ids(1)[0]

    async def html(_request: web.Request) -> web.Response:
        page = "<html><body>\n<h1>Bad gateway\x1b[31m</h1>" + "padding " * 500 + "</body>"
        return web.Response(text=page, status=400, content_type="text/html")

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid)]}

    async with serve_app(space_app(pages, [], put=html)) as url:
        result = await run(url, tmp_path)
    (failure,) = result_failures(result)
    # The page's words, not its markup, with the escape shown, never sent.
    assert failure.startswith("answer: an HTML page: Bad gateway\\x1b[31m padding padding")
    assert "<" not in failure
    assert len(failure) < 250
    assert "\x1b" not in failure


async def test_a_gateways_html_error_page_is_shown_by_its_title(tmp_path: Path) -> None:
    cid = ids(1)[0]

    async def gateway(_request: web.Request) -> web.Response:
        page = ("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>"
                "<style>body{font:12px}</style></head><body><center><h1>502 Bad Gateway"
                "</h1></center><hr><center>nginx</center></body></html>")
        return web.Response(text=page, status=400, content_type="text/html")

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid)]}

    async with serve_app(space_app(pages, [], put=gateway)) as url:
        result = await run(url, tmp_path)
    assert result_failures(result) == ["answer: an HTML page: 502 Bad Gateway"]


def result_failures(ran: Ran) -> list[str]:
    return [error for outcome in ran.reporter.failures for error in outcome.errors]


# 18.4 No credential in any form


TOKEN = "PT-hostile/token+value=="  # a test credential with base64 symbols in it


def _echoes(header: str) -> dict[str, str]:
    """The Authorization header as careless servers quote it back."""
    value = header.split(" ", 1)[1]
    return {
        "padded": header,
        "unpadded": value.rstrip("="),
        "url-encoded": quote(value, safe=""),
        "url-encoded lower": quote(value, safe="").lower(),
        "json slash-escaped": value.replace("/", "\\/"),
        "token": TOKEN,
        "project and token": f"{SANDBOX_CREDENTIALS.project_id}:{TOKEN}",
        "token url-encoded": quote(TOKEN, safe=""),
    }


def _echo_app(cid: str) -> web.Application:
    """Echoes every request header back in its error bodies: JSON errors, a JSON shape we
    do not know (with \\u escapes), and plain text."""
    calls = [0]

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid)]}

    async def put(request: web.Request) -> web.Response:
        calls[0] += 1
        forms = _echoes(request.headers["Authorization"])
        if calls[0] == 1:
            return web.json_response({"errors": [{"message": f"{k}: {v}"}
                                                 for k, v in forms.items()]}, status=422)
        raise AssertionError  # pragma: no cover - 422 is never retried

    async def get(request: web.Request) -> web.Response:
        forms = _echoes(request.headers["Authorization"])
        escaped = "".join(f"\\u{ord(c):04x}" for c in forms["padded"])
        body = '{"detail": {"headers": "' + escaped + '", "raw": ' + json.dumps(
            dict(request.headers)) + "}}"
        return web.Response(text=body, status=400, content_type="application/json")

    return space_app(pages, [], get=get, put=put)


async def test_no_form_of_the_credential_reaches_anything_written(tmp_path: Path) -> None:
    cid, other = ids(2)
    env = sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN)
    header = "Basic " + base64.b64encode(
        f"{SANDBOX_CREDENTIALS.project_id}:{TOKEN}".encode()).decode()
    async with serve_app(_echo_app(cid)) as url:
        config = write_config(tmp_path, url)
        outputs = [tmp_path / "report.json", tmp_path / "plan.md", tmp_path / "metrics.prom"]
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            "--report", outputs[0], "--summary-md", outputs[1],
                            "--metrics-file", outputs[2], env=env)
        planned = await rebrand("plan", "--config", config, "--summary-md", outputs[1],
                                "--log-format", "console", env=env)
    assert ran.code == 1, ran.err
    assert "[REDACTED]" in outputs[0].read_text()
    written = [ran.out, ran.err, planned.out, planned.err,
               *(p.read_text() for p in outputs),
               *(p.read_text() for p in (tmp_path / "b").glob("*.jsonl"))]
    everything = "\n".join(written)
    value = header.split(" ", 1)[1]
    for name, form in {**_echoes(header),
                       "urlsafe": base64.urlsafe_b64encode(base64.b64decode(value)).decode(),
                       "no padding, any slash": value.rstrip("=").replace("/", "")}.items():
        assert form not in everything, name
    del other


def _unicode_escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


# How an echo of the credential may be written in a 200 answer. Each must be caught
# however it is written: the decoded value is what would be journalled and PUT back.
_ANSWER_ECHOES: dict[str, Any] = {
    "header as sent": lambda header: header,
    "token \\u-escaped": lambda _header: _unicode_escaped(SANDBOX_CREDENTIALS.api_token),
    "header \\u-escaped": _unicode_escaped,
    "token percent-encoded byte by byte": lambda _header: "".join(
        f"%{b:02X}" for b in SANDBOX_CREDENTIALS.api_token.encode()),
    "header value percent-encoded byte by byte, lower case": lambda header: "".join(
        f"%{b:02x}" for b in header.split(" ", 1)[1].encode()),
    # An HTML page's way of writing text, kept as such in a JSON string by a server that
    # escapes what it echoes for a browser: decoded, it is the token.
    "token as HTML decimal references": lambda _header: "".join(
        f"&#{ord(c)};" for c in SANDBOX_CREDENTIALS.api_token),
    "header value as HTML hex references": lambda header: "".join(
        f"&#x{ord(c):x};" for c in header.split(" ", 1)[1]),
}


@pytest.mark.parametrize("form", list(_ANSWER_ECHOES))
async def test_a_get_that_echoes_the_credential_is_neither_used_nor_journalled(
    tmp_path: Path, form: str
) -> None:
    cid = ids(1)[0]
    seen: list[str] = []

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid)]}

    async def get(request: web.Request) -> web.Response:
        echo = _ANSWER_ECHOES[form](request.headers["Authorization"])
        # Written by hand: json.dumps would undo the \\u escapes this form is about.
        body = json.dumps({**conference(cid), "description": "@"}).replace(
            '"@"', '"' + echo + '"')
        return web.Response(text=body, content_type="application/json")

    async with serve_app(space_app(pages, seen, get=get)) as url:
        result = await run(url, tmp_path)
    assert result.exit_code == ExitCode.FAILURES
    (failure,) = result_failures(result)
    assert "carries this run's credentials" in failure
    assert not any(s.startswith("PUT") for s in seen)
    journal = next(tmp_path.glob("*.jsonl")).read_text()
    assert SANDBOX_CREDENTIALS.authorization().split()[1].rstrip("=") not in journal


@pytest.mark.parametrize("status", [400, 401])
async def test_an_error_answer_never_shows_part_or_an_encoding_of_the_token(
    tmp_path: Path, status: int
) -> None:
    # A token \\u-escaped across the snippet's cut, and one percent-encoded byte by byte:
    # the first must be hidden before the cut, the second decoded to be found at all.
    cid = ids(1)[0]
    token = "Zq7sEcretVALUE93xk"  # a test credential, found by its pieces
    encoded = "".join(f"%{b:02X}" for b in token.encode())

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid)]}

    async def get(_request: web.Request) -> web.Response:
        # Decoded, the snippet is {"odd":"xxx...<token>",...}: the cut falls mid-token.
        filler = "x" * (SNIPPET_CHARS - len('{"odd":"') - len(token) // 2)
        body = ('{"odd": "' + filler + _unicode_escaped(token) + '", "also": "'
                + encoded + '"}')
        return web.Response(text=body, status=status, content_type="application/json")

    async def put(_request: web.Request) -> web.Response:
        return web.json_response({"error": f"bad credential {encoded}"}, status=status)

    async with serve_app(space_app(pages, [], get=get, put=put)) as url:
        config = write_config(tmp_path, url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            "--report", tmp_path / "report.json",
                            env=sandbox_env(SIGNALWIRE_API_TOKEN=token))
    assert ran.code == (ExitCode.AUTH if status == 401 else ExitCode.FAILURES), ran.err
    everything = "\n".join([ran.out, ran.err, (tmp_path / "report.json").read_text()])
    assert "xxxx" in everything  # the snippet is there, so the check below means something
    assert encoded not in everything and encoded.lower() not in everything
    for piece in (token[:6], token[-6:]):
        assert piece not in everything, piece
