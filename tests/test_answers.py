"""Every answer is checked before it is used: a GET or PUT answer must be the conference
asked for, whole; a listing page must be a list of conferences with ids.

Pure checks first, then small aiohttp Spaces that misbehave in exactly one way each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.support import (
    FAST_RETRY,
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    serve_app,
    settings_for,
    whole_conference,
)
from worker.answers import AnswerRules, allowed_fields, split_extra, unknown_property_message
from worker.errors import ConfigError, ExitCode
from worker.openapi import conference_shape, schemas
from worker.run.job import run_job
from worker.run.journal import read_journal
from worker.sandbox import FaultConfig

pytestmark = pytest.mark.anyio

CID = "0b6c2f5e-0000-4000-8000-000000000001"
OTHER = "0b6c2f5e-0000-4000-8000-000000000002"
RULES = AnswerRules.from_spec()


# The rules, as pure functions


def test_the_rules_are_the_specs_video_conference_schema() -> None:
    conference = schemas()["Video.Conference"]
    assert RULES.known == set(conference["properties"])
    assert RULES.required == set(conference["required"])
    assert "active_session" in RULES.known - RULES.required  # present only on request


def test_a_whole_answer_for_the_conference_asked_for_has_no_problem() -> None:
    assert RULES.problems(whole_conference(CID), CID) == ()


def test_null_is_a_value_a_missing_key_is_not() -> None:
    nulls = whole_conference(CID, description=None, display_name=None, meta=None)
    assert RULES.problems(nulls, CID) == ()
    half = whole_conference(CID)
    del half["description"], half["light_primary"]
    assert RULES.problems(half, CID) == (
        "the answer lacks required properties: description, light_primary",)


@pytest.mark.parametrize(("answer_id", "said"), [
    (OTHER, f"is for {OTHER}"), (None, "has no id"), (5, "is for 5")])
def test_an_answer_for_another_conference_is_an_id_mismatch(answer_id: Any, said: str) -> None:
    answer = whole_conference(CID, id=answer_id)
    assert RULES.problems(answer, CID) == (f"id mismatch: asked for {CID}, the answer {said}",)


def test_an_id_that_is_not_text_is_shown_short_and_cut_before_an_escape() -> None:
    """A Space answering a huge id that is not text (a list of control characters) gets
    a bounded message, never a repr cut inside one of its escapes."""
    for count in range(1, 40):
        answer = whole_conference(CID, id=["\x1b" * count] * 50)
        (message,) = RULES.problems(answer, CID)
        shown = message.split("the answer is for ", 1)[1]
        assert len(shown) <= 80
        body = shown.removesuffix("…")
        assert repr(answer["id"]).startswith(body)
        # Whole escapes only: the cut text ends after one, not within it.
        assert not re.search(r"\\(?:x[0-9a-f]?)?$", body), body


def test_properties_beyond_the_spec_are_found_and_split_by_what_is_allowed() -> None:
    plain = whole_conference(CID)
    assert RULES.beyond_spec(plain) == frozenset()
    newer = {**plain, "b_new": 1, "a_new": None}
    assert RULES.beyond_spec(newer) == {"a_new", "b_new"}
    assert split_extra(RULES.beyond_spec(newer), frozenset({"b_new"})) == (("a_new",), ("b_new",))


def test_the_message_names_the_property_and_conference_and_says_why_and_how() -> None:
    message = unknown_property_message(("enable_live_captions",), CID, "room-1")
    assert f"conference {CID} (room-1)" in message
    assert "enable_live_captions" in message
    assert "would reset it" in message
    assert "--allow-field enable_live_captions" in message
    assert "REBRAND_ALLOW_FIELDS=enable_live_captions" in message
    assert "upgrade rebrand" in message


def test_a_flood_of_unknown_properties_is_named_in_a_bounded_message() -> None:
    names = tuple(f"p{i:04d}" for i in range(5000))
    message = unknown_property_message(names, CID, "")
    assert "p0000" in message and "and 4990 more" in message
    assert len(message) < 2000


def test_allowed_fields_come_from_flags_and_the_environment() -> None:
    assert allowed_fields(["a", "b"], " c , d,") == {"a", "b", "c", "d"}
    assert allowed_fields(None, None) == frozenset()
    assert allowed_fields(None, "") == frozenset()
    with pytest.raises(ConfigError, match="not a property name"):
        allowed_fields(["a,b"], None)
    with pytest.raises(ConfigError, match="REBRAND_ALLOW_FIELDS"):
        allowed_fields(None, "x\ty")


def test_the_shape_is_read_from_the_spec_not_kept_by_hand() -> None:
    shape = conference_shape()
    assert shape is conference_shape()  # read once
    assert {"id", "name", "light_primary", "meta", "updated_at"} <= shape.required


# Spaces that misbehave in one way each


def misbehaving_space(*, get: Callable[[dict[str, Any]], Any] = lambda c: c,
                      put: Callable[[dict[str, Any]], Any] = lambda c: c,
                      puts: list[dict[str, Any]] | None = None,
                      count: int = 1, put_status: int = 200,
                      row: Callable[[dict[str, Any]], Any] = lambda c: c) -> web.Application:
    """A Space of `count` conferences whose GET and PUT answers pass through `get` and
    `put` (given the stored or updated conference) on their way out."""
    ids = [f"0b6c2f5e-0000-4000-8000-{i:012d}" for i in range(1, count + 1)]
    store = {cid: whole_conference(cid, name=f"room-{i}") for i, cid in enumerate(ids)}
    sent = puts if puts is not None else []

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"links": {"self": str(request.url), "first": "x"},
                                  "data": [row(dict(c)) for c in store.values()]})

    async def one(request: web.Request) -> web.Response:
        return web.json_response(get(dict(store[request.match_info["id"]])))

    async def write(request: web.Request) -> web.Response:
        body = await request.json()
        sent.append(body)
        updated = {**store[request.match_info["id"]], **body,
                   "updated_at": "2026-11-30T00:00:00.000001Z"}
        store[updated["id"]] = updated
        if put_status == 204:
            return web.Response(status=204)
        return web.json_response(put(dict(updated)), status=put_status)

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    app.router.add_get("/api/video/conferences/{id}", one)
    app.router.add_put("/api/video/conferences/{id}", write)
    return app


async def run_against(app: web.Application, tmp_path: Path, *, dry_run: bool = False) -> Any:
    async with serve_app(app) as url:
        return await run_job(settings_for(url, backup_dir=tmp_path, dry_run=dry_run),
                             SANDBOX_CREDENTIALS)


def failures(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [e for e in map(orjson.loads, capsys.readouterr().out.splitlines())
            if e["event"] == "conference.failed"]


async def test_a_get_answering_with_another_conference_fails_it_and_sends_no_put(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    puts: list[dict[str, Any]] = []
    result = await run_against(misbehaving_space(get=lambda c: {**c, "id": OTHER}, puts=puts),
                               tmp_path)
    assert puts == []
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    assert failed["errors"][0].startswith("id mismatch: asked for ")
    assert OTHER in failed["errors"][0]


async def test_a_get_answering_with_half_the_fields_fails_it_and_sends_no_put(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def halve(conference: dict[str, Any]) -> dict[str, Any]:
        return {k: v for i, (k, v) in enumerate(conference.items()) if i % 2 == 0}

    puts: list[dict[str, Any]] = []
    result = await run_against(misbehaving_space(get=halve, puts=puts), tmp_path)
    assert puts == []
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    missing = sorted(set(whole_conference(CID)) - set(halve(whole_conference(CID))))
    [error] = failed["errors"]
    assert error.startswith(f"the answer lacks required properties: {', '.join(missing)}; "
                            "no PUT was sent for it: run again"), error


@pytest.mark.parametrize("answer", [[], "conference", 5, None], ids=["list", "str", "int", "null"])
async def test_a_get_answering_with_no_object_fails_it_and_sends_no_put(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: Any
) -> None:
    puts: list[dict[str, Any]] = []
    result = await run_against(misbehaving_space(get=lambda _c: answer, puts=puts), tmp_path)
    assert puts == []
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    [error] = failed["errors"]
    assert error.startswith("answer was not a JSON object; nothing was written from it"), error


async def test_a_get_answering_with_json_that_does_not_decode_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A lone surrogate escape (`"\\ud800"`) is not valid JSON text: saying "not a JSON
    # object" would send the operator looking for the wrong shape.
    puts: list[dict[str, Any]] = []
    result = await run_against(
        misbehaving_space(get=lambda c: {**c, "description": "\ud800"}, puts=puts), tmp_path)
    assert puts == []
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    [error] = failed["errors"]
    assert error.startswith("answer is not valid JSON (") and "surrogate" in error, error


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_a_put_answered_with_another_2xx_says_it_may_have_landed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    # Not the spec's answer, but a success: the write may well have landed. The message
    # must say so, and what to do, rather than show the body or a bare status.
    puts: list[dict[str, Any]] = []
    result = await run_against(misbehaving_space(puts=puts, put_status=status), tmp_path)
    assert len(puts) == 1
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    [error] = failed["errors"]
    assert f"HTTP {status}" in error and "may have landed" in error, error
    assert "rebrand restore" in error and "Weekly" not in error


async def test_a_put_answering_with_another_conference_fails_it_and_journals_no_updated_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    puts: list[dict[str, Any]] = []
    result = await run_against(misbehaving_space(put=lambda c: {**c, "id": OTHER}, puts=puts),
                               tmp_path)
    assert len(puts) == 1
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    assert failed["errors"][0].startswith("the PUT was sent, but its answer cannot be checked: "
                                          "id mismatch")
    # The answer's updated_at is not ours to trust: a restore will compare contents.
    assert result.journal is not None
    assert set(read_journal(result.journal).written_at.values()) == {None}


async def test_a_put_answering_with_half_the_fields_fails_it_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_against(
        misbehaving_space(put=lambda c: {k: v for k, v in c.items() if k != "created_at"}),
        tmp_path)
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    [error] = failed["errors"]
    assert error.startswith("the PUT was sent, but its answer cannot be checked: the answer "
                            "lacks required properties: created_at; the write may have "
                            "landed"), error


async def test_a_put_answer_whose_colors_differ_names_what_was_sent_and_what_came_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_against(misbehaving_space(put=lambda c: {**c, "dark_primary": None}),
                               tmp_path)
    assert result.exit_code == ExitCode.FAILURES
    [failed] = failures(capsys)
    [error] = failed["errors"]
    assert error.startswith('did not take: dark_primary: sent "#0A84FF", the answer has null; ')
    # And what to do about it: retry, undo, or look at the room.
    assert "running the same command again retries it" in error
    assert "`rebrand restore` with this run's journal" in error


@pytest.mark.parametrize(("page", "named"), [
    ({"links": {}, "data": {"id": CID}}, "no `data` list"),
    ({"links": {}}, "no `data` list"),
    ({"links": {}, "data": [{"name": "no id"}]}, "data[0] is not a conference with a string id"),
    ({"links": {}, "data": [whole_conference(CID), {"id": None}]}, "data[1]"),
], ids=["data-object", "no-data", "item-without-id", "second-item-null-id"])
async def test_a_listing_page_of_the_wrong_shape_stops_the_run_with_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], page: dict[str, Any], named: str
) -> None:
    puts: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        return web.json_response(page)

    async def put(request: web.Request) -> web.Response:
        puts.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    app.router.add_put("/api/video/conferences/{id}", put)
    result = await run_against(app, tmp_path)
    assert result.exit_code == ExitCode.ABORTED
    assert named in str(result.error)
    assert puts == []


async def test_a_plan_reads_a_listing_row_that_is_not_whole_and_plans_as_the_run_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rows without display_name (a Space that lists a slimmer shape than it answers a
    # GET with): deciding from them would fail what the run, reading each, updates.
    slim = misbehaving_space(count=3, row=lambda c: {k: v for k, v in c.items()
                                                     if k != "display_name"})
    plan = await run_against(slim, tmp_path, dry_run=True)
    assert (plan.summary.planned, plan.summary.failed) == (3, 0)
    assert plan.exit_code == ExitCode.CHANGES_PENDING
    puts: list[dict[str, Any]] = []
    run = await run_against(misbehaving_space(count=3, puts=puts, row=lambda c: {
        k: v for k, v in c.items() if k != "display_name"}), tmp_path)
    assert (run.summary.updated, len(puts)) == (3, 3)
    assert failures(capsys) == []


async def test_a_put_whose_answer_never_came_on_any_attempt_says_it_may_have_landed(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The Space applies each PUT, then drops the connection unanswered, every time. The
    # writes landed; "connection closed" alone read as "nothing happened", and the
    # operator had no word that a re-run or `rebrand restore` settles them.
    async with sandbox_factory(count=3, on_theme_fraction=0.0,
                               faults=FaultConfig(drop_after_apply=1.0)) as sb:
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path,
                                            retry={**FAST_RETRY, "max_attempts": 2}),
                               SANDBOX_CREDENTIALS)
        landed = [c["light_primary"] for c in sb.space.conferences.values()]
    assert landed == ["#0A84FF"] * 3
    assert result.exit_code == ExitCode.FAILURES
    failed = failures(capsys)
    assert len(failed) == 3
    for event in failed:
        [error] = event["errors"]
        assert error.startswith("connection closed by the server before it answered"), error
        assert "may have landed" in error and "rebrand restore" in error, error
