"""`restore` against a Space whose answers are not the conference: each such conference is
`failed` with what happened and what to do, no PUT is built from a read it could not use,
no write whose answer it could not use counts as restored, and the others go on.

Restore shares run's consumer, so the shapes run already survives (another id, missing
properties, a JSON array, undecodable JSON: tests/test_answers.py) are not repeated here;
these are the answers whose message was wrong, or silent, about what happened."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.support import (
    BRAND,
    SANDBOX_CREDENTIALS,
    restore_settings,
    serve_app,
    whole_conference,
)
from worker.errors import ExitCode
from worker.outcome import Kind
from worker.run.job import JobResult, restore_job
from worker.run.journal import Header, read_journal
from worker.run.report import Reporter
from worker.theme import COLOR_FIELDS

pytestmark = pytest.mark.anyio

LIST = "/api/video/conferences"
ODD, GOOD = (f"0b6c2f5e-0000-4000-8000-{i:012d}" for i in (1, 2))
# What the run wrote: the brand's colors, and the updated_at its PUTs returned.
WRITTEN_AT = "2026-02-02T00:00:00Z"
THEMED = {f"{mode}_{role}": color for mode, roles in BRAND.items()
          for role, color in roles.items()}
# An answer to ODD's request, given ODD as the Space holds it (and a PUT's body).
Answer = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


def _pre_image(cid: str, n: int) -> dict[str, Any]:
    return whole_conference(cid, name=f"room-{n}", display_name=f"Room {n}",
                            **dict.fromkeys(COLOR_FIELDS, "#101010"),
                            updated_at="2026-01-01T00:00:00Z")


def _journal(directory: Path, url: str, pre: list[dict[str, Any]]) -> Path:
    """A run's journal, as it writes one: each pre-image, then its PUT's answer."""
    path = directory / "run.jsonl"
    header = Header("20260202T000000Z-abcdef", url, "run", BRAND, "0",
                    "2026-02-02T00:00:00Z")
    records: list[dict[str, Any]] = [header.as_record()]
    for conference in pre:
        records += [{"type": "pre_image", "conference": conference},
                    {"type": "written", "id": conference["id"], "updated_at": WRITTEN_AT,
                     "applied": True}]
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


class Restored:
    def __init__(self, result: JobResult, reporter: Reporter, puts: list[str],
                 store: dict[str, dict[str, Any]]) -> None:
        self.result, self.puts, self.store = result, puts, store
        self.failed = {o.conference_id: o for o in reporter.failures}


async def _restore(tmp_path: Path, *, get: Answer | None = None,
                   put: Answer | None = None) -> Restored:
    """Restore a two-conference run's journal against a Space that answers ODD's GET
    (or PUT) with `get` (or `put`), and GOOD's as the spec says."""
    pre = [_pre_image(ODD, 0), _pre_image(GOOD, 1)]
    store = {c["id"]: {**c, **THEMED, "updated_at": WRITTEN_AT} for c in pre}
    puts: list[str] = []

    async def read(request: web.Request) -> web.StreamResponse:
        cid = request.match_info["id"]
        if get is not None and cid == ODD:
            return await get(request, store[cid])
        return web.json_response(store[cid])

    async def write(request: web.Request) -> web.StreamResponse:
        cid = request.match_info["id"]
        puts.append(cid)
        store[cid] = {**store[cid], **await request.json(), "updated_at": "2026-03-03T00:00:00Z"}
        if put is not None and cid == ODD:
            return await put(request, store[cid])
        return web.json_response(store[cid])

    app = web.Application()
    app.router.add_get(LIST + "/{id}", read)
    app.router.add_put(LIST + "/{id}", write)
    reporter = Reporter()
    async with serve_app(app) as url:
        journal = read_journal(_journal(tmp_path, url, pre))
        result = await restore_job(restore_settings(url, backup_dir=tmp_path / "restore"),
                                   SANDBOX_CREDENTIALS, journal, reporter=reporter)
    return Restored(result, reporter, puts, store)


async def _status(status: int, conference: dict[str, Any]) -> web.Response:
    if status == 204:
        return web.Response(status=204)
    return web.json_response(conference, status=status)


_GET_SUCCESSES: dict[str, Answer] = {
    "201": lambda _r, c: _status(201, c),
    "204": lambda _r, c: _status(204, c),
}


@pytest.mark.parametrize("answer", list(_GET_SUCCESSES))
async def test_a_restores_get_answered_with_another_success_says_nothing_was_written(
    tmp_path: Path, answer: str
) -> None:
    # A GET writes nothing: "a write may have landed" would send the operator looking
    # for a change that was never made, and to `rebrand restore` for a restore.
    restored = await _restore(tmp_path, get=_GET_SUCCESSES[answer])
    assert restored.puts == [GOOD]
    assert restored.result.exit_code == ExitCode.FAILURES
    assert restored.result.summary.updated == 1
    [error] = restored.failed[ODD].errors
    assert f"HTTP {answer}" in error and "may have landed" not in error, error
    assert "nothing was written" in error and "run again" in error, error


async def _html(_request: web.Request, _conference: dict[str, Any]) -> web.Response:
    return web.Response(text="<html><body>not json</body></html>", content_type="text/html")


def _json(shape: Callable[[web.Request, dict[str, Any]], Any]) -> Answer:
    """An answer that is `shape(request, conference)` as JSON, status 200."""
    async def answer(request: web.Request, conference: dict[str, Any]) -> web.Response:
        return web.json_response(shape(request, conference))
    return answer


_PUT_ANSWERS: dict[str, Answer] = {
    "not JSON": _html,
    "a JSON array": _json(lambda _request, conference: [conference]),
    "an echo of the credentials": _json(lambda request, conference: {
        **conference, "description": request.headers["Authorization"]}),
}


@pytest.mark.parametrize("answer", list(_PUT_ANSWERS))
async def test_a_restores_put_answered_200_with_no_usable_conference_says_it_may_have_landed(
    tmp_path: Path, answer: str
) -> None:
    # HTTP 200 to a PUT is the Space saying it took the write: an answer that cannot be
    # used must not read as though nothing happened, nor count the conference restored.
    restored = await _restore(tmp_path, put=_PUT_ANSWERS[answer])
    assert sorted(restored.puts) == sorted([ODD, GOOD])
    assert restored.result.exit_code == ExitCode.FAILURES
    assert restored.result.summary.updated == 1
    assert restored.failed[ODD].kind is Kind.FAILED
    [error] = restored.failed[ODD].errors
    assert "may have landed" in error and "rebrand restore" in error, error
    assert SANDBOX_CREDENTIALS.api_token not in error


async def _login_page(_request: web.Request, _conference: dict[str, Any]) -> web.Response:
    page = ("<!DOCTYPE html>\n<html><head><title>Sign in to the guest network</title>"
            "<script>var x = 1;</script></head><body><form>...</form></body></html>")
    return web.Response(text=page, content_type="text/html")


async def test_a_restores_get_answered_200_with_an_html_page_names_the_page(
    tmp_path: Path
) -> None:
    # A login page or a proxy's answers 200 in the Space's place: where its JSON parse
    # failed ("line 1 column 1") says nothing of what answered; its title does.
    restored = await _restore(tmp_path, get=_login_page)
    assert restored.puts == [GOOD]
    assert restored.result.exit_code == ExitCode.FAILURES
    [error] = restored.failed[ODD].errors
    assert error.startswith("answer is an HTML page (Sign in to the guest network), not "
                            "JSON; nothing was written from it"), error
    assert "<" not in error and "column" not in error, error


_NOT_THE_CONFERENCE: dict[str, Answer] = {
    "another id": _json(lambda _request, conference: {**conference, "id": GOOD}),
    "a property missing": _json(lambda _request, conference: {
        k: v for k, v in conference.items() if k != "description"}),
}


@pytest.mark.parametrize("answer", list(_NOT_THE_CONFERENCE))
async def test_a_restores_get_answered_with_not_this_conference_says_what_to_do(
    tmp_path: Path, answer: str
) -> None:
    restored = await _restore(tmp_path, get=_NOT_THE_CONFERENCE[answer])
    assert restored.puts == [GOOD]
    [error] = restored.failed[ODD].errors
    assert "no PUT was sent for it" in error and "run again" in error, error


@pytest.mark.parametrize("answer", list(_NOT_THE_CONFERENCE))
async def test_a_restores_put_answered_with_not_this_conference_says_it_may_have_landed(
    tmp_path: Path, answer: str
) -> None:
    restored = await _restore(tmp_path, put=_NOT_THE_CONFERENCE[answer])
    assert restored.result.summary.updated == 1
    [error] = restored.failed[ODD].errors
    assert error.startswith("the PUT was sent, but its answer cannot be checked: "), error
    assert "may have landed" in error and "rebrand restore" in error, error
