"""The whole job end to end against real loopback Spaces: what the server ends up holding,
which requests it saw (and in what order), and the events the run reported."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from tests.support import (
    BRAND,
    PATIENT_RETRY,
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    json_events,
    serve_app,
    settings_for,
    trap_app,
)
from worker.body import WRITABLE_FIELDS
from worker.credentials import Credentials
from worker.errors import AbortError, AuthError, ExitCode, single_error
from worker.outcome import Kind, Outcome
from worker.run.job import JobResult, run_job
from worker.run.journal import pre_images
from worker.run.report import Reporter
from worker.sandbox import ON_THEME, FaultConfig, SandboxConfig, SpaceState, serve
from worker.theme import COLOR_FIELDS

pytestmark = pytest.mark.anyio

LIST = "/api/video/conferences"
CONFERENCE_EVENTS = ("conference.updated", "conference.unchanged", "conference.vanished",
                     "conference.failed")


def wears(conference: dict[str, Any], colors: dict[str, str]) -> bool:
    return all(str(conference[f]).upper() == v.upper() for f, v in colors.items())


def outcome_events(out: str) -> list[dict[str, Any]]:
    return [e for e in json_events(out) if e["event"].startswith("conference.")]


def summary_of(out: str) -> dict[str, Any]:
    summaries = [e for e in json_events(out) if e["event"] == "run.summary"]
    assert len(summaries) == 1
    return summaries[0]


def puts(space: SpaceState) -> list[str]:
    return [path.rsplit("/", 1)[-1] for method, path in space.requests if method == "PUT"]


async def run(url: str, tmp_path: Path, **settings: Any) -> JobResult:
    return await run_job(settings_for(url, **settings, backup_dir=tmp_path), SANDBOX_CREDENTIALS)


# Faults


async def test_a_run_under_every_fault_still_themes_everything_and_exits_0(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = FaultConfig(error_500=0.1, error_503=0.1, drop_after_apply=0.1, get_500=0.1)
    # The 429s (with Retry-After) come from the Space's own PUT rate limit, reliably once
    # the first 8 PUTs of a half second are in: 16/s is below what a run does even on a
    # loaded machine (at 25 a slow machine never reached the limit, and no 429 came).
    # Injected at random instead, a 429 among the very first PUTs makes the client's
    # adaptive limiter crawl at the few PUTs/s it had measured.
    async with sandbox_factory(count=60, latency_s=0.002, faults=faults, put_rate_limit=8,
                               rate_window_s=0.5) as sb:
        before = sb.space.seed_snapshot()
        result = await run(sb.url, tmp_path, page_size=20, retry=PATIENT_RETRY)
        after = sb.space.conferences
        statuses = Counter(sb.space.status_counts)
        dropped = sb.space.dropped_count
    assert result.exit_code == ExitCode.OK
    # Every kind of fault happened, and was survived.
    assert statuses[500] and statuses[503] and statuses[429] and dropped, (statuses, dropped)
    for cid, conference in after.items():
        assert wears(conference, ON_THEME), cid
        for field in WRITABLE_FIELDS:
            if field not in ON_THEME and before[cid][field] is not None:
                assert conference[field] == before[cid][field], (cid, field)
    summary = summary_of(capsys.readouterr().out)
    assert summary["failed"] == 0
    assert summary["listed"] == 60
    assert summary["updated"] + summary["unchanged"] == 60
    assert summary["retries"] >= statuses[500] + statuses[503] + statuses[429]


# Where the listing goes


async def test_a_foreign_next_link_is_refused_with_exit_4_and_the_trap_sees_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    async with serve_app(trap_app(seen)) as trap, sandbox_factory(
        count=20, links_base=trap
    ) as sb:
        result = await run(sb.url, tmp_path, page_size=5)
        list_requests = sb.space.list_count
    assert result.exit_code == ExitCode.ABORTED
    assert seen == []
    assert list_requests == 1
    out = capsys.readouterr().out
    assert summary_of(out)["stopped"] == "UnsafeLinkError"
    assert "refused to follow links.next" in str(result.error)
    assert trap.rsplit(":", 1)[-1] in str(result.error)  # names where it led


async def test_a_next_link_to_another_scheme_on_the_same_port_is_refused(
    tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = SandboxConfig(count=10, links_base=f"https://127.0.0.1:{port}")
    async with serve(config, port=port) as sb:
        result = await run(sb.url, tmp_path, page_size=4)
        assert result.exit_code == ExitCode.ABORTED
        assert "https://127.0.0.1" in str(result.error)
        assert sb.space.list_count == 1


async def test_relative_next_links_are_followed_to_the_end(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=30, next_form="relative", on_theme_fraction=0.0) as sb:
        result = await run(sb.url, tmp_path, page_size=7)
        assert result.exit_code == ExitCode.OK
        assert sb.space.list_count == 5
        assert all(wears(c, ON_THEME) for c in sb.space.conferences.values())
        assert sorted(puts(sb.space)) == sorted(sb.space.conferences)


@pytest.mark.parametrize("last_next", ["absent", "empty"])
@pytest.mark.parametrize("next_form", ["absolute", "relative", "query"])
async def test_every_form_of_next_lists_every_conference_once(
    sandbox_factory: SandboxFactory, tmp_path: Path, next_form: str, last_next: str
) -> None:
    # The spec says only that `next` is a link: a whole URL, a path, or a query alone are
    # all links, and so are both ways of saying there is no next page.
    async with sandbox_factory(count=23, next_form=next_form, last_next=last_next,
                               on_theme_fraction=0.0) as sb:
        result = await run(sb.url, tmp_path, page_size=5)
        assert result.exit_code == ExitCode.OK
        assert result.summary.listed == 23
        assert sb.space.list_count == 5
        assert all(wears(c, ON_THEME) for c in sb.space.conferences.values())
        assert sorted(puts(sb.space)) == sorted(sb.space.conferences)


async def test_429s_that_never_say_when_to_come_back_are_waited_out(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    # No Retry-After at all: the limiter and the backoff must find the pace themselves.
    async with sandbox_factory(count=40, put_rate_limit=8, rate_window_s=0.5,
                               retry_after=False, on_theme_fraction=0.0) as sb:
        result = await run(sb.url, tmp_path, page_size=20, retry=PATIENT_RETRY)
        statuses = Counter(sb.space.status_counts)
        assert statuses[429], statuses
        assert result.exit_code == ExitCode.OK
        assert result.summary.updated == 40
        assert all(wears(c, ON_THEME) for c in sb.space.conferences.values())
        # Each conference took exactly one PUT; the refused ones landed nothing.
        assert sb.space.puts_applied == 40


def mini_space(conferences: dict[str, dict[str, Any]], next_links: list[str | None],
               seen: list[str]) -> web.Application:
    """A tiny API whose list pages (all the conferences each time) carry the given
    `next` links in turn, for listings the sandbox will not produce."""

    async def list_page(request: web.Request) -> web.Response:
        seen.append(f"GET {request.path_qs}")
        number = sum(1 for s in seen if s.startswith(f"GET {LIST}?")) - 1
        link = next_links[min(number, len(next_links) - 1)]
        links = {"self": request.path_qs} | ({"next": link} if link is not None else {})
        return web.json_response({"links": links, "data": list(conferences.values())})

    async def get(request: web.Request) -> web.Response:
        seen.append(f"GET {request.path}")
        return web.json_response(conferences[request.match_info["id"]])

    async def put(request: web.Request) -> web.Response:
        seen.append(f"PUT {request.path}")
        cid = request.match_info["id"]
        conferences[cid] = {**conferences[cid], **await request.json()}
        return web.json_response(conferences[cid])

    app = web.Application()
    app.router.add_get(LIST, list_page)
    app.router.add_get(LIST + "/{id}", get)
    app.router.add_put(LIST + "/{id}", put)
    return app


@pytest.mark.parametrize(
    "links",
    [[f"{LIST}?page_size=5"],  # next is the page itself
     [f"{LIST}?page_token=b", f"{LIST}?page_size=5"],  # a cycle of two
     [f"{LIST}?page_token=b", f"{LIST}?page_token=b"]],  # next repeats
    ids=["self", "cycle", "repeat"],
)
async def test_a_next_link_that_repeats_fails_the_listing_with_exit_4(
    sandbox_factory: SandboxFactory, tmp_path: Path, links: list[str],
    capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=3, on_theme_fraction=0.0) as sb:
        conferences = dict(sb.space.conferences)
    seen: list[str] = []
    async with serve_app(mini_space(conferences, [*links], seen)) as url:
        result = await run(url, tmp_path, page_size=5)
    list_requests = [s for s in seen if s.startswith(f"GET {LIST}?")]
    assert result.exit_code == ExitCode.ABORTED
    assert len(list_requests) == len(set(list_requests)) <= 2
    failed = [e for e in json_events(capsys.readouterr().out) if e["event"] == "listing.failed"]
    assert failed[0]["path"].startswith(LIST + "?")
    assert "would not end" in failed[0]["reason"]
    assert str(result.error).startswith(f"listing conferences failed at GET {LIST}?")
    # What was listed before the loop showed is written at most once each.
    assert max(Counter(s for s in seen if s.startswith("PUT")).values(), default=1) == 1


async def test_ids_already_seen_on_an_earlier_page_are_dropped(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=12, on_theme_fraction=0.0) as sb:
        pages: list[list[str]] = []

        def move_to_the_end(space: SpaceState, page: list[dict[str, Any]]) -> None:
            # Re-dated after the first page went out, it is listed again on the last one.
            pages.append([c["id"] for c in page])
            if len(pages) == 1:
                first = page[0]
                space.remove(first["id"])
                space.add({**first, "created_at": "2099-01-01T00:00:00Z"})

        sb.space.after_list_page = move_to_the_end
        result = await run(sb.url, tmp_path, page_size=5)
        puts_by_id = Counter(puts(sb.space))
    moved = pages[0][0]
    assert result.exit_code == ExitCode.OK
    assert moved in pages[-1]  # the Space really did list it twice
    events = outcome_events(capsys.readouterr().out)
    ids = [e["conference_id"] for e in events]
    assert len(ids) == len(set(ids)) == 12
    assert puts_by_id[moved] == 1


async def test_a_conference_edited_after_listing_keeps_its_edit(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=10, on_theme_fraction=0.0) as sb:
        edited: list[str] = []

        def edit_one(space: SpaceState, page: list[dict[str, Any]]) -> None:
            if not edited:
                target = page[3]
                edited.append(target["id"])
                space.conferences[target["id"]] = {
                    **target, "description": "edited after listing", "enable_chat": False,
                    "display_name": "Renamed after listing", "layout": "2x2"}

        sb.space.after_list_page = edit_one
        result = await run(sb.url, tmp_path)
        stored = sb.space.conferences[edited[0]]
    assert result.exit_code == ExitCode.OK
    assert stored["description"] == "edited after listing"
    assert stored["display_name"] == "Renamed after listing"
    assert (stored["enable_chat"], stored["layout"]) == (False, "2x2")
    assert wears(stored, ON_THEME)


async def test_a_conference_deleted_after_listing_is_vanished(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=10, on_theme_fraction=0.0) as sb:
        deleted: list[str] = []

        def delete_one(space: SpaceState, page: list[dict[str, Any]]) -> None:
            if not deleted:
                deleted.append(page[2]["id"])
                space.remove(page[2]["id"])

        sb.space.after_list_page = delete_one
        result = await run(sb.url, tmp_path)
        assert deleted[0] not in puts(sb.space)
    assert result.exit_code == ExitCode.OK
    out = capsys.readouterr().out
    vanished = [e for e in outcome_events(out) if e["event"] == "conference.vanished"]
    assert [e["conference_id"] for e in vanished] == deleted
    assert vanished[0]["status"] == 404
    assert vanished[0]["attempts"] == 1  # a 404 is never retried
    assert summary_of(out)["vanished"] == 1
    assert summary_of(out)["updated"] == 9


async def test_a_conference_deleted_between_its_read_and_its_write_is_vanished(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=4, on_theme_fraction=0.0) as sb:
        victim = next(iter(sb.space.conferences))

        def delete_first(space: SpaceState, cid: str, _body: dict[str, Any]) -> None:
            if cid == victim:
                space.remove(cid)

        sb.space.before_put = delete_first
        result = await run(sb.url, tmp_path)
    assert result.exit_code == ExitCode.OK
    vanished = [e for e in outcome_events(capsys.readouterr().out)
                if e["event"] == "conference.vanished"]
    assert [e["conference_id"] for e in vanished] == [victim]


# What the write does and does not change


async def test_a_partial_theme_changes_only_the_colors_it_names(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    theme = {"light": {"primary": "#123456"}, "dark": {"negative": "#abcdef"}}
    async with sandbox_factory(count=40) as sb:
        before = sb.space.seed_snapshot()
        result = await run(sb.url, tmp_path, theme=theme)
        after = sb.space.conferences
    assert result.exit_code == ExitCode.OK
    others = [f for f in COLOR_FIELDS if f not in ("light_primary", "dark_negative")]
    nulls_kept = 0
    for cid, conference in after.items():
        assert conference["light_primary"].upper() == "#123456"
        assert conference["dark_negative"].upper() == "#ABCDEF"
        for field in others:
            assert conference[field] == before[cid][field], (cid, field)
            nulls_kept += before[cid][field] is None
    assert nulls_kept > 0  # the data had null colors to keep


async def test_display_name_falls_back_to_name_on_the_space(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=60, on_theme_fraction=0.0) as sb:
        unnamed = [cid for cid, c in sb.space.conferences.items() if c["display_name"] is None]
        assert unnamed
        result = await run(sb.url, tmp_path)
        assert result.exit_code == ExitCode.OK
        for cid in unnamed:
            stored = sb.space.conferences[cid]
            assert stored["display_name"] == stored["name"]


async def test_a_second_run_sends_no_put_and_reports_all_unchanged(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=30) as sb:
        first = await run(sb.url, tmp_path / "first")
        assert first.exit_code == ExitCode.OK
        capsys.readouterr()
        puts_before, gets_before = sb.space.put_count, sb.space.get_count
        assert puts_before > 0
        second = await run(sb.url, tmp_path / "second")
        assert second.exit_code == ExitCode.OK
        assert sb.space.put_count == puts_before
        assert sb.space.get_count == gets_before
    out = capsys.readouterr().out
    assert {e["event"] for e in outcome_events(out)} == {"conference.unchanged"}
    summary = summary_of(out)
    assert (summary["unchanged"], summary["updated"], summary["listed"]) == (30, 0, 30)


async def test_conferences_already_on_theme_get_no_request_at_all(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=60, on_theme_fraction=0.3) as sb:
        seeded = sb.space.seed_snapshot()
        on_theme = {cid for cid, c in seeded.items() if wears(c, ON_THEME)}
        lower = {cid for cid in on_theme if seeded[cid]["light_primary"] == "#0a84ff"}
        assert on_theme and lower
        result = await run(sb.url, tmp_path)
        touched = {path.split("?")[0].rsplit("/", 1)[-1] for _, path in sb.space.requests}
    assert result.exit_code == ExitCode.OK
    assert not on_theme & touched
    assert len(touched - {"conferences"}) == 60 - len(on_theme)


async def test_a_color_that_did_not_take_fails_the_conference(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=3, on_theme_fraction=0.0) as sb:
        victim = next(iter(sb.space.conferences))

        def keep_the_old_primary(space: SpaceState, cid: str, body: dict[str, Any]) -> None:
            if cid == victim:
                body["light_primary"] = "#000000"
                body["description"] = "rewritten by the server"

        sb.space.before_put = keep_the_old_primary
        result = await run(sb.url, tmp_path)
    assert result.exit_code == ExitCode.FAILURES
    failed = [e for e in outcome_events(capsys.readouterr().out)
              if e["event"] == "conference.failed"]
    assert [e["conference_id"] for e in failed] == [victim]
    # It names what differs: the field, what was sent, what came back.
    [error] = failed[0]["errors"]
    assert error.startswith(
        'did not take: light_primary: sent "#0A84FF", the answer has "#000000"; ')
    assert "description" in failed[0]["mismatched_fields"]


async def test_a_field_that_came_back_different_is_reported_on_the_event(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=3, on_theme_fraction=0.0) as sb:
        victim = next(iter(sb.space.conferences))

        def rewrite(space: SpaceState, cid: str, body: dict[str, Any]) -> None:
            if cid == victim:
                body["display_name"] = "rewritten by the server"

        sb.space.before_put = rewrite
        result = await run(sb.url, tmp_path)
    assert result.exit_code == ExitCode.OK
    updated = {e["conference_id"]: e for e in outcome_events(capsys.readouterr().out)}
    assert updated[victim]["event"] == "conference.updated"
    assert updated[victim]["level"] == "warning"
    assert updated[victim]["mismatched_fields"] == ["display_name"]
    assert all("mismatched_fields" not in e for cid, e in updated.items() if cid != victim)


# The report


async def test_summary_agrees_with_the_events_and_every_event_names_its_conference(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = FaultConfig(error_500=0.1, get_500=0.05)
    async with sandbox_factory(count=50, seed=4, faults=faults, on_theme_fraction=0.2) as sb:
        ids = list(sb.space.conferences)
        too_long = ids[:2]
        for cid in too_long:
            sb.space.conferences[cid]["display_name"] = "x" * 201
        deleted: list[str] = []

        def delete_one(space: SpaceState, page: list[dict[str, Any]]) -> None:
            # One off-theme conference of the first page goes before its fresh read.
            if not deleted:
                victim = next(c["id"] for c in page
                              if not wears(c, ON_THEME) and c["id"] not in too_long)
                deleted.append(victim)
                space.remove(victim)

        sb.space.after_list_page = delete_one
        result = await run(sb.url, tmp_path, page_size=10)
        applied_ids = set(sb.space.puts_by_id)
        server_errors = sb.space.status_counts[500]
    assert result.exit_code == ExitCode.FAILURES
    out = capsys.readouterr().out
    events = outcome_events(out)
    summary = summary_of(out)
    kinds = Counter(e["event"] for e in events)
    for event in events:
        assert event["event"] in CONFERENCE_EVENTS
        assert isinstance(event["conference_id"], str) and event["conference_id"]
        assert isinstance(event["name"], str) and event["name"]
        assert isinstance(event["attempts"], int)
    assert summary["listed"] == len(events) == len({e["conference_id"] for e in events})
    assert summary["updated"] == kinds["conference.updated"] == len(applied_ids)
    assert summary["unchanged"] == kinds["conference.unchanged"] > 0
    assert summary["vanished"] == kinds["conference.vanished"] == 1
    assert summary["failed"] == kinds["conference.failed"] == 2
    assert {e["conference_id"] for e in events if e["event"] == "conference.failed"} == set(
        too_long)
    assert summary["retries"] >= server_errors > 0
    # Events count write attempts; retries also count reads and list pages.
    assert summary["retries"] >= sum(max(0, e["attempts"] - 1) for e in events)
    assert summary["duration_s"] > 0
    assert summary["updates_per_s"] == pytest.approx(
        summary["updated"] / summary["duration_s"], rel=0.05, abs=0.2)
    unchanged = [e for e in events if e["event"] == "conference.unchanged"]
    assert all(e["attempts"] == 0 for e in unchanged)


async def test_secrets_never_reach_the_output_or_the_journal(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = FaultConfig(error_500=0.2, error_429=0.05, drop_after_apply=0.1)
    async with sandbox_factory(count=20, faults=faults, on_theme_fraction=0.0) as sb:
        sb.space.conferences[next(iter(sb.space.conferences))]["display_name"] = "y" * 300
        good = await run(sb.url, tmp_path / "good")
        wrong = Credentials(SANDBOX_CREDENTIALS.project_id, "wrong-token-4242")
        bad = await run_job(settings_for(sb.url, backup_dir=tmp_path / "bad"), wrong)
    assert (good.exit_code, bad.exit_code) == (ExitCode.FAILURES, ExitCode.AUTH)
    captured = capsys.readouterr()
    journals = [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()]
    assert journals
    for secret in (*SANDBOX_CREDENTIALS.secrets, "wrong-token-4242",
                   wrong.authorization().split()[1]):
        assert secret not in captured.out
        assert secret not in captured.err
        assert secret not in str(bad.error)
        for text in journals:
            assert secret not in text


# Streaming


async def test_consumers_start_before_the_listing_finishes(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=40, latency_s=0.01, on_theme_fraction=0.0) as sb:
        result = await run(sb.url, tmp_path, page_size=5, concurrency=4)
        methods = [(m, p) for m, p in sb.space.requests]
    assert result.exit_code == ExitCode.OK
    list_positions = [i for i, (m, p) in enumerate(methods) if m == "GET" and "?" in p]
    first_put = next(i for i, (m, _) in enumerate(methods) if m == "PUT")
    assert len(list_positions) == 8
    assert first_put < list_positions[-1]


async def test_the_stream_is_bounded_so_listing_waits_for_the_consumers(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    page, queue, consumers = 2, 4, 2
    async with sandbox_factory(count=40, latency_s=0.005, on_theme_fraction=0.0) as sb:
        result = await run(sb.url, tmp_path, page_size=page, queue_size=queue,
                           concurrency=consumers)
        requests = list(sb.space.requests)
    assert result.exit_code == ExitCode.OK
    reads = 0
    pages = 0
    for method, path in requests:
        if method == "GET" and "?" in path:
            # Page `pages` is asked for only once every conference listed before it is in
            # the stream (at most `queue`) or taken by a consumer (at most one each).
            assert reads >= pages * page - queue - consumers, (pages, reads)
            pages += 1
        elif method == "GET":
            reads += 1
    assert pages == 20
    # An unbounded stream would have let the listing run far ahead of the reads.
    first_half = requests[: len(requests) // 2]
    assert sum(1 for m, p in first_half if m == "GET" and "?" in p) < 15


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_exactly_concurrency_conferences_are_in_flight(
    sandbox_factory: SandboxFactory, tmp_path: Path, concurrency: int
) -> None:
    async with sandbox_factory(count=12, on_theme_fraction=0.0) as sb:
        conferences = dict(sb.space.conferences)
    in_flight = [0]
    most = [0]

    @web.middleware
    async def count_in_flight(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == LIST:
            return await handler(request)  # the producer is not a consumer
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            await anyio.sleep(0.01)
            return await handler(request)
        finally:
            in_flight[0] -= 1

    seen: list[str] = []
    app = mini_space(conferences, [None], seen)
    app.middlewares.append(count_in_flight)
    async with serve_app(app) as url:
        result = await run(url, tmp_path, concurrency=concurrency)
    assert result.exit_code == ExitCode.OK
    assert most[0] == concurrency
    assert sum(1 for s in seen if s.startswith("PUT")) == 12


async def test_auto_concurrency_stays_within_max_concurrency_and_reports_its_range(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=60, on_theme_fraction=0.0) as sb:
        conferences = dict(sb.space.conferences)
    in_flight = [0]
    most = [0]

    @web.middleware
    async def count_in_flight(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == LIST:
            return await handler(request)
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            await anyio.sleep(0.005)
            return await handler(request)
        finally:
            in_flight[0] -= 1

    app = mini_space(conferences, [None], [])
    app.middlewares.append(count_in_flight)
    async with serve_app(app) as url:
        result = await run(url, tmp_path, concurrency="auto", max_concurrency=3)
    assert result.exit_code == ExitCode.OK
    assert most[0] == 3
    summary = result.summary
    assert summary.concurrency_min is not None and summary.concurrency_max is not None
    assert 1 <= summary.concurrency_min <= summary.concurrency <= summary.concurrency_max <= 3


async def test_a_pinned_concurrency_is_its_own_range(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=20) as sb:
        result = await run(sb.url, tmp_path, concurrency=5)
    summary = result.summary
    assert (summary.concurrency, summary.concurrency_min, summary.concurrency_max) == (5, 5, 5)


async def test_the_brand_fixture_is_the_sandboxs_on_theme_colors() -> None:
    assert {f"{m}_{r}": v for m, roles in BRAND.items() for r, v in roles.items()} == ON_THEME


# The failure budget and exception groups, each handled in one place


def test_the_reporter_tells_the_run_once_when_the_failure_budget_is_spent() -> None:
    reporter = Reporter()
    spent: list[int] = []
    reporter.on_failures(2, lambda: spent.append(len(reporter.failures)))
    reporter.record(Outcome(Kind.UPDATED, "a", "a"))
    reporter.record(Outcome(Kind.FAILED, "b", "b", status=500))
    assert spent == []
    reporter.record(Outcome(Kind.FAILED, "c", "c", status=500))
    reporter.record(Outcome(Kind.FAILED, "d", "d", status=500))
    assert spent == [2]


def test_an_exception_group_leaves_as_the_error_of_ours_that_decides_the_exit() -> None:
    refused, aborted = AuthError(401), AbortError("listing failed")
    with pytest.raises(AuthError) as raised, single_error():
        raise ExceptionGroup("tasks", [aborted, ExceptionGroup("inner", [refused])])
    assert raised.value is refused
    bug = ValueError("a bug")
    with pytest.raises(ExceptionGroup) as whole, single_error():
        raise ExceptionGroup("tasks", [bug])
    assert whole.value.exceptions == (bug,)  # none of ours: seen whole, not hidden


# Durability before each write, however the run is paced


@pytest.mark.parametrize(("concurrency", "rate_limit"),
                         [(8, 100_000.0), (8, 150.0), ("auto", 150.0), ("auto", 100_000.0)])
async def test_no_put_is_sent_before_its_pre_images_sync_has_returned(
    sandbox_factory: SandboxFactory, tmp_path: Path, concurrency: object, rate_limit: float
) -> None:
    """The journal's sync is observed: it is slow (20 ms), and only when it returns are
    the pre-images it covered marked durable. The Space checks each PUT against that mark,
    paced (writers share syncs before their slots) or not."""
    durable: set[str] = set()
    early: list[str] = []
    syncs = [0]

    def observed_sync(fd: int) -> None:
        os.fsync(fd)
        journal = next(tmp_path.glob("*.jsonl"))
        covered = {c["id"] for c in pre_images(journal)}
        time.sleep(0.02)  # a slow disk: a PUT sent without waiting would overtake it
        syncs[0] += 1
        durable.update(covered)

    def check(_space: SpaceState, cid: str, _body: dict[str, Any]) -> None:
        if cid not in durable:
            early.append(cid)

    async with sandbox_factory(count=120, on_theme_fraction=0.0, validate=False) as sb:
        sb.space.before_put = check
        result = await run_job(
            settings_for(sb.url, concurrency=concurrency, rate_limit=rate_limit,
                         backup_dir=tmp_path),
            SANDBOX_CREDENTIALS, datasync=observed_sync)
        assert sb.space.puts_applied == 120
    assert result.exit_code == ExitCode.OK
    assert early == []
    # Shared: far fewer syncs than pre-images.
    assert syncs[0] < 60
