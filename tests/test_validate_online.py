"""`rebrand validate --online`: one listing page and one conference against the spec,
nothing written; exit 4 on drift, so a nightly job catches it before a run does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    rebrand,
    sandbox_env,
    serve_app,
    settings_for,
    whole_conference,
    write_config,
)
from worker.errors import UnreachableError
from worker.run.probe import probe
from worker.sandbox import FaultConfig

pytestmark = pytest.mark.anyio

NEW = "enable_live_captions"


def methods(sb: Any) -> list[str]:
    return [f"{method} {path.split('?')[0]}" for method, path in sb.space.requests]


async def test_a_space_that_matches_the_spec_passes_and_nothing_is_written(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=30) as sb:
        ran = await rebrand("validate", "--config", write_config(tmp_path, sb.url), "--online",
                            env=sandbox_env())
        seen = methods(sb)
    assert ran.code == 0, ran.out + ran.err
    # One page, one conference: two reads, no write.
    assert len(seen) == 2
    assert seen[0] == "GET /api/video/conferences"
    assert seen[1].startswith("GET /api/video/conferences/")
    assert "checked 1 listing page (30 conferences) and conference" in ran.out
    assert "nothing was written" in ran.out
    assert "SignalWire Video Conferences API" in ran.out  # names the spec it checked against


async def test_a_newer_space_fails_naming_the_property_where_it_was_met(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=5, extra_fields=((NEW, True),)) as sb:
        ran = await rebrand("validate", "--config", write_config(tmp_path, sb.url), "--online",
                            env=sandbox_env())
        assert sb.space.put_count == 0
        first = methods(sb)[1].rsplit("/", 1)[-1]
    assert ran.code == 4
    assert f"listing: data[0].{NEW}: not in the spec" in ran.out
    assert f"conference {first}: {NEW}: not in the spec" in ran.out
    assert "--allow-field" in ran.err and "Traceback" not in ran.err


async def test_an_allowed_property_passes_and_is_reported(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=5, extra_fields=((NEW, True),)) as sb:
        config = write_config(tmp_path, sb.url)
        flag = await rebrand("validate", "--config", config, "--online", "--allow-field", NEW,
                             env=sandbox_env())
        env = await rebrand("validate", "--config", config, "--online",
                            env=sandbox_env(REBRAND_ALLOW_FIELDS=NEW))
    for ran in (flag, env):
        assert ran.code == 0, ran.out + ran.err
        assert f"allowed properties beyond the spec met: {NEW}" in ran.out


async def test_missing_required_properties_and_wrong_types_are_named(tmp_path: Path) -> None:
    cid = "0b6c2f5e-0000-4000-8000-000000000001"
    conference = whole_conference(cid, enable_chat="yes", quality="8k")
    del conference["meta"]

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"links": {"self": str(request.url)}, "data": [conference]})

    async def one(request: web.Request) -> web.Response:
        return web.json_response({**conference, "id": "0b6c2f5e-0000-4000-8000-000000000002"})

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    app.router.add_get("/api/video/conferences/{id}", one)
    async with serve_app(app) as url:
        ran = await rebrand("validate", "--config", write_config(tmp_path, url), "--online",
                            env=sandbox_env())
    assert ran.code == 4
    for problem in ("listing: links.first: missing (the spec requires it)",
                    "listing: data[0].meta: missing (the spec requires it)",
                    "listing: data[0].enable_chat: 'yes' is not a boolean",
                    "listing: data[0].quality: '8k' is not one of",
                    f"conference {cid}: id mismatch: asked for {cid}",
                    f"conference {cid}: meta: missing (the spec requires it)"):
        assert problem in ran.out, ran.out


async def test_an_empty_space_checks_the_listing_alone(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=0) as sb:
        ran = await rebrand("validate", "--config", write_config(tmp_path, sb.url), "--online",
                            env=sandbox_env())
    assert ran.code == 0, ran.out + ran.err
    assert "(0 conferences) (no conference to read)" in ran.out


async def test_refused_credentials_are_exit_3(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=3) as sb:
        ran = await rebrand("validate", "--config", write_config(tmp_path, sb.url), "--online",
                            env=sandbox_env(SIGNALWIRE_API_TOKEN="wrong-token-123"))
    assert ran.code == 3
    assert "Traceback" not in ran.err


async def test_without_online_nothing_is_sent(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=3) as sb:
        ran = await rebrand("validate", "--config", write_config(tmp_path, sb.url),
                            env=sandbox_env())
        assert sb.space.requests == []
    assert ran.code == 0


async def test_the_probe_reports_problems_and_allowed_properties_in_process(
    sandbox_factory: SandboxFactory,
) -> None:
    """The same check awaited directly (what the CLI runs on its loop)."""
    extra = ((NEW, True), ("tier", "gold"))
    async with sandbox_factory(count=4, extra_fields=extra) as sb:
        result = await probe(settings_for(sb.url, allow_field=["tier"]), SANDBOX_CREDENTIALS)
        assert sb.space.put_count == 0
    assert result.listed == 4 and result.conference_id is not None
    assert result.allowed == ("tier",)
    assert f"listing: data[0].{NEW}: not in the spec" in result.problems
    assert f"conference {result.conference_id}: {NEW}: not in the spec" in result.problems
    assert not any("tier" in p for p in result.problems)


async def test_the_probe_says_the_listing_failed_when_it_cannot_read_it(
    sandbox_factory: SandboxFactory,
) -> None:
    async with sandbox_factory(count=2, faults=FaultConfig(get_500=1.0)) as sb:
        settings = settings_for(sb.url, retry={"max_attempts": 2, "backoff_base_s": 0.001,
                                               "backoff_cap_s": 0.001})
        with pytest.raises(UnreachableError, match="listing conferences failed"):
            await probe(settings, SANDBOX_CREDENTIALS)


@pytest.mark.parametrize("last", [None, ""], ids=["null", "empty"])
async def test_a_last_page_whose_next_is_null_or_empty_passes_as_the_run_reads_it(
    tmp_path: Path, last: str | None
) -> None:
    # Many APIs write the last page's `next` as null or "": a run reads either as the end
    # of the listing, so a check that called the Space drifted would cry wolf nightly.
    cid = "0b6c2f5e-0000-4000-8000-000000000001"
    seen: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.json_response({"links": {"self": str(request.url), "first": str(request.url),
                                            "next": last},
                                  "data": [whole_conference(cid)]})

    async def one(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.json_response(whole_conference(cid))

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    app.router.add_get("/api/video/conferences/{id}", one)
    async with serve_app(app) as url:
        ran = await rebrand("validate", "--config", write_config(tmp_path, url), "--online",
                            env=sandbox_env())
    assert ran.code == 0, ran.out + ran.err
    assert "links.next" not in ran.out + ran.err
    assert len(seen) == 2 and seen[1] == f"/api/video/conferences/{cid}"
