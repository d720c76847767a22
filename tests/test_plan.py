"""`plan`: what run would change, old and new colors, no write, terraform-style exits."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import orjson
import pytest

from tests.support import REPO, SANDBOX_CREDENTIALS, SandboxFactory, sandbox_env, settings_for
from worker.run.job import run_job
from worker.sandbox import ON_THEME

pytestmark = pytest.mark.anyio


async def test_plan_sends_no_write_reports_old_and_new_colors_and_exits_10(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=40) as sb:
        before = sb.space.seed_snapshot()
        capsys.readouterr()
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path, dry_run=True), SANDBOX_CREDENTIALS)
        assert sb.space.put_count == 0
        # Only list pages: a plan decides from the listing, with no GET per conference.
        assert all(method == "GET" and path.startswith("/api/video/conferences?")
                   for method, path in sb.space.requests)
        assert result.exit_code == 10
        assert result.journal is None
        events = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        planned = [e for e in events if e["event"] == "conference.planned"]
        assert len(planned) == result.summary.planned > 0
        for event in planned:
            old = before[event["conference_id"]]
            for field, change in event["changes"].items():
                assert change["old"] == old[field]
                assert change["new"] == ON_THEME[field]
        assert events[-1]["event"] == "run.summary"


async def test_plan_exits_0_when_nothing_would_change(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=20) as sb:
        await run_job(settings_for(sb.url, backup_dir=tmp_path), SANDBOX_CREDENTIALS)
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path, dry_run=True), SANDBOX_CREDENTIALS)
        assert result.exit_code == 0
        assert result.summary.planned == 0


async def test_plan_prints_a_readable_table_on_a_console(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("theme:\n  light:\n    primary: '#0A84FF'\n")
    async with sandbox_factory(count=10, on_theme_fraction=0.0) as sb:
        env = sandbox_env(SIGNALWIRE_SPACE=sb.url)
        proc = await anyio.run_process(
            [sys.executable, "-m", "worker", "plan", "--config", str(config),
             "--log-format", "console"], env=env, cwd=REPO, check=False)
        out = proc.stdout.decode()
        assert proc.returncode == 10, proc.stderr.decode()
        assert "light_primary" in out and "#0A84FF" in out
        assert "10 of 10 conferences would change; nothing was sent." in out
        assert sb.space.put_count == 0


async def test_a_listing_row_without_a_required_property_fails_in_plan_as_in_run(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plan decides from the listing's rows; a run refuses a GET answer without
    # `display_name` rather than PUT a body that resets it. A row that is not whole is
    # read by the plan too, so the plan says the same.
    async with sandbox_factory(count=10, on_theme_fraction=0.0) as sb:
        victim = next(iter(sb.space.conferences))
        del sb.space.conferences[victim]["display_name"]
        capsys.readouterr()
        plan = await run_job(settings_for(sb.url, backup_dir=tmp_path, dry_run=True),
                             SANDBOX_CREDENTIALS)
        planned = {e["conference_id"]: e for e in map(orjson.loads, capsys.readouterr().out.splitlines())
                   if "conference_id" in e}
        assert planned[victim]["event"] == "conference.failed"
        assert "the answer lacks required properties: display_name" in str(planned[victim])
        assert sb.space.put_count == 0
        assert plan.summary.failed == 1 and plan.summary.planned == 9

        run = await run_job(settings_for(sb.url, backup_dir=tmp_path), SANDBOX_CREDENTIALS)
        assert run.summary.failed == 1 and run.summary.updated == 9
        assert ("PUT", f"/api/video/conferences/{victim}") not in sb.space.requests
