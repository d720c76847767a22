"""Bad inputs and hostile answers found by the acceptance audit: each ends in a clear
error with the documented exit code, never a traceback, and never leaks the token."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest
import yaml
from aiohttp import web

from tests.support import (
    BRAND,
    REPO,
    SandboxFactory,
    clean_env,
    rebrand,
    sandbox_env,
    serve_app,
    whole_conference,
    write_config,
)
from worker.credentials import Credentials
from worker.sandbox import ON_THEME
from worker.theme import COLOR_FIELDS, parse_theme

pytestmark = pytest.mark.anyio

ODD_TOKEN = 'PT-odd"tok\\en-0123456789'


def _echoing_app(conference_id: str) -> web.Application:
    """A Space whose 422 quotes the Authorization header it was sent, as a careless API
    might: the token must still never reach an event, a report or an error."""

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"links": {"self": str(request.url), "first": "x"},
                                  "data": [{"id": conference_id, "name": "room",
                                            "light_primary": "#000000"}]})

    async def get(request: web.Request) -> web.Response:
        return web.json_response(whole_conference(conference_id, name="room",
                                                  display_name="Room",
                                                  light_primary="#000000"))

    async def put(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        token = ODD_TOKEN
        return web.json_response({"errors": [{
            "type": "validation_error", "code": "invalid_parameter",
            "message": f"refused {header} for token {token}", "attribute": None,
            "url": "https://example.com"}]}, status=422)

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    app.router.add_get("/api/video/conferences/{id}", get)
    app.router.add_put("/api/video/conferences/{id}", put)
    return app


async def test_a_token_quoted_back_by_the_server_reaches_no_output(tmp_path: Path) -> None:
    cid = "0b6c2f5e-0000-4000-8000-000000000001"
    async with serve_app(_echoing_app(cid)) as url:
        config = write_config(tmp_path, url)
        report = tmp_path / "report.json"
        ran = await rebrand("run", "--config", config, "--report", report, "--backup-dir",
                            tmp_path / "b", env=sandbox_env(SIGNALWIRE_API_TOKEN=ODD_TOKEN))
    assert ran.code == 1, ran.err
    failed = [e for e in ran.events() if e["event"] == "conference.failed"]
    assert failed[0]["status"] == 422
    assert "[REDACTED]" in failed[0]["errors"][0]
    everything = ran.out + ran.err + report.read_text() + "".join(
        p.read_text() for p in (tmp_path / "b").glob("*.jsonl"))
    basic = Credentials("sandbox-project", ODD_TOKEN).authorization().split()[1]
    for form in (ODD_TOKEN, json.dumps(ODD_TOKEN)[1:-1], basic):
        assert form not in everything
    assert "refused Basic [REDACTED] for token [REDACTED]" in report.read_text()


async def test_a_malformed_list_page_aborts_with_exit_4_and_a_summary(tmp_path: Path) -> None:
    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"links": {"self": "x", "first": "x"},
                                  "data": [1, "x", None, {"id": 5}]})

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    async with serve_app(app) as url:
        ran = await rebrand("run", "--config", write_config(tmp_path, url), "--backup-dir",
                            tmp_path / "b", env=sandbox_env())
    assert ran.code == 4, ran.err
    assert "Traceback" not in ran.err
    aborted = [e for e in ran.events() if e["event"] == "run.aborted"]
    assert "data[0] is not a conference" in aborted[0]["error"]
    assert ran.events()[-1]["event"] == "run.summary"


@pytest.mark.parametrize(
    ("extra", "named"),
    [({"concurrency": 10**20}, "concurrency"),
     ({"queue_size": 10**9}, "queue_size"),
     ({"rate_limit": float("nan")}, "rate_limit"),
     ({"request_timeout_s": float("inf")}, "request_timeout_s")],
)
async def test_numbers_out_of_any_sane_range_are_bad_input(
    sandbox_factory: SandboxFactory, tmp_path: Path, extra: dict[str, float], named: str
) -> None:
    async with sandbox_factory(count=5) as sb:
        ran = await rebrand("run", "--config", write_config(tmp_path, sb.url, **extra),
                            env=sandbox_env())
        assert sb.space.requests == []
    assert ran.code == 2
    assert named in ran.err
    assert "Traceback" not in ran.err


@pytest.mark.parametrize(
    "flags",
    [["--deadline", "nan"], ["--grace-seconds", "inf"], ["--concurrency", "1000000"]],
)
async def test_flags_out_of_range_are_usage_errors(tmp_path: Path, flags: list[str]) -> None:
    ran = await rebrand("run", "--config", write_config(tmp_path, "http://127.0.0.1:9"),
                        *flags, env=sandbox_env())
    assert ran.code == 2
    assert flags[0] in ran.err
    assert "Traceback" not in ran.err


async def test_outputs_that_cannot_be_written_are_refused_before_anything_is_sent(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        cases = [("--report", tmp_path, "is a directory"),
                 ("--summary-md", blocker / "plan.md", "cannot create"),
                 ("--backup-dir", blocker / "sub", "--backup-dir")]
        for flag, path, said in cases:
            ran = await rebrand("run", "--config", config, flag, path, env=sandbox_env())
            assert ran.code == 2, (flag, ran.err)
            assert said in ran.err
            assert "Traceback" not in ran.err
        assert not any(method == "PUT" for method, _ in sb.space.requests)


async def test_a_config_that_is_not_utf8_or_repeats_a_key_is_bad_input(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("space: caf\xe9.signalwire.com\n".encode("latin-1"))
    twice = tmp_path / "twice.yaml"
    twice.write_text(yaml.safe_dump({"space": "example.signalwire.com", "theme": BRAND})
                     + "theme:\n  light: {primary: '#000000'}\n")
    for path, said in ((latin, "not UTF-8"), (twice, "theme: given twice")):
        ran = await rebrand("validate", "--config", path, env=sandbox_env())
        assert ran.code == 2, ran.err
        assert said in ran.err


async def test_a_token_too_short_to_be_real_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://example.signalwire.com")
    ran = await rebrand("validate", "--config", config,
                        env=clean_env(SIGNALWIRE_PROJECT_ID="p", SIGNALWIRE_API_TOKEN="t0"))
    assert ran.code == 2
    assert "SIGNALWIRE_API_TOKEN: only 2 characters" in ran.err


@pytest.mark.parametrize(
    ("args", "said"),
    [(["sandbox", "--host", "0.0.0.0"], "loopback only"),  # noqa: S104 - the point of the test
     (["sandbox", "--count", "-5", "--port", "0"], "count"),
     (["demo", "--latency", "-1"], "--latency")],
)
async def test_sandbox_and_demo_knobs_out_of_range_are_bad_input(
    args: list[str], said: str
) -> None:
    ran = await rebrand(*args, env=clean_env())
    assert ran.code == 2, ran.err
    assert said in ran.err
    assert "Traceback" not in ran.err


async def test_the_demo_runs_from_any_directory(tmp_path: Path) -> None:
    process = await anyio.run_process(
        [sys.executable, "-m", "worker", "demo", "--count", "20", "--no-faults",
         "--log-format", "json", "--backup-dir", str(tmp_path / "b")],
        env=clean_env(), cwd=tmp_path, check=False)
    assert process.returncode == 0, process.stderr.decode()
    summary = json.loads(process.stdout.splitlines()[-1])
    assert summary["event"] == "run.summary"
    assert summary["failed"] == 0


def test_the_built_in_demo_brand_is_config_example_yaml_s_theme() -> None:
    example = yaml.safe_load((REPO / "config.example.yaml").read_text())
    assert dict(parse_theme(example["theme"]).colors) == {f: ON_THEME[f] for f in COLOR_FIELDS}
