"""Clean stops, seen from outside: signals, deadline, failure budget, SIGKILL + restore.

The worker runs as a real subprocess against an in-process sandbox, as a CronJob or a
person at a terminal would run it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from anyio.abc import Process

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    not_back,
    sandbox_env,
    write_config,
)
from worker.decide import same_writable_state
from worker.run.journal import pre_images

pytestmark = pytest.mark.anyio

THEME = {"light": {"primary": "#0A84FF", "background": "#FFFFFF"},
         "dark": {"primary": "#0A84FF"}}


@asynccontextmanager
async def rebrand(url: str, tmp_path: Path, *args: str) -> AsyncIterator[Process]:
    config = write_config(tmp_path, url, theme=THEME, concurrency=4)
    command = [sys.executable, "-m", "worker", *args]
    if args[0] in ("run", "plan"):
        command += ["--config", str(config)]
    env = sandbox_env(SIGNALWIRE_SPACE=url)
    async with await anyio.open_process(command, env=env, cwd=tmp_path) as proc:
        yield proc


async def _lines_until(proc: Process, event: str, count: int) -> list[dict[str, Any]]:
    """Read JSON lines from the worker until `count` events named `event` were seen."""
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    buffer = b""
    with anyio.fail_after(30):
        while sum(1 for e in seen if e["event"] == event) < count:
            buffer += await proc.stdout.receive()
            *lines, buffer = buffer.split(b"\n")
            seen += [orjson.loads(line) for line in lines if line]
    return seen


async def _rest(proc: Process) -> list[dict[str, Any]]:
    assert proc.stdout is not None
    chunks = []
    async for chunk in proc.stdout:
        chunks.append(chunk)
    return [orjson.loads(line) for line in b"".join(chunks).splitlines() if line]


async def test_sigterm_drains_in_flight_writes_writes_the_summary_and_exits_143(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=300, latency_s=0.05, on_theme_fraction=0.0) as sb:
        async with rebrand(sb.url, tmp_path, "run") as proc:
            early = await _lines_until(proc, "conference.updated", 5)
            proc.send_signal(signal.SIGTERM)
            events = early + await _rest(proc)
            code = await proc.wait()
        assert code == 143
        summary = events[-1]
        assert summary["event"] == "run.summary"
        assert summary["stopped"] == "terminated (SIGTERM)"
        assert summary["not_started"] > 0
        updated = {e["conference_id"] for e in events if e["event"] == "conference.updated"}
        applied = {cid for cid, n in sb.space.puts_by_id.items() if n}
        # Every write the Space applied was seen through and reported: none was cut off.
        assert applied == updated
        assert summary["updated"] == len(updated) < 300


async def test_a_second_signal_exits_at_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=200, latency_s=0.3, on_theme_fraction=0.0) as sb:
        async with rebrand(sb.url, tmp_path, "run", "--grace-seconds", "30") as proc:
            await _lines_until(proc, "conference.updated", 1)
            proc.send_signal(signal.SIGINT)
            await anyio.sleep(0.05)
            started = anyio.current_time()
            proc.send_signal(signal.SIGINT)
            code = await proc.wait()
            # Well inside the 30 s grace the first signal granted.
            assert anyio.current_time() - started < 5
        assert code == 130


async def test_deadline_stops_cleanly_with_exit_5(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=400, latency_s=0.05, on_theme_fraction=0.0) as sb:
        async with rebrand(sb.url, tmp_path, "run", "--deadline", "1") as proc:
            events = await _rest(proc)
            code = await proc.wait()
        assert code == 5  # not 4: progress is kept and the next run resumes
        assert events[-1]["event"] == "run.summary"
        assert events[-1]["stopped"] == "deadline reached"
        assert 0 < events[-1]["updated"] < 400


async def test_max_failures_aborts_with_exit_4_and_the_report_lists_them(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=200, on_theme_fraction=0.0) as sb:
        # Every display name too long for the API: each fails before its PUT is sent.
        for conference in sb.space.conferences.values():
            conference["display_name"] = "x" * 201
        report = tmp_path / "report.json"
        async with rebrand(sb.url, tmp_path, "run", "--max-failures", "5",
                           "--report", str(report)) as proc:
            events = await _rest(proc)
            code = await proc.wait()
        assert code == 4
        failed = [e for e in events if e["event"] == "conference.failed"]
        assert 5 <= len(failed) < 200
        assert all("display_name: is 201 characters long" in e["errors"][0] for e in failed)
        assert not any(method == "PUT" for method, _ in sb.space.requests)
        assert events[-1]["stopped"] == "too many failures"
        document = orjson.loads(report.read_bytes())
        assert document["exit_code"] == 4
        assert document["summary"]["failed"] == len(failed)
        assert {f["conference_id"] for f in document["failures"]} == {
            e["conference_id"] for e in failed}
        assert document["journal"] and Path(document["journal"]).exists()
        assert SANDBOX_CREDENTIALS.api_token not in report.read_text()


async def test_sigkill_midway_then_restore_puts_every_conference_back(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    faults = {"error_500": 0.03, "error_503": 0.03, "error_429": 0.02,
              "drop_after_apply": 0.02, "retry_after_s": 1.0}
    from worker.sandbox import FaultConfig

    async with sandbox_factory(count=600, latency_s=0.01, faults=FaultConfig(**faults)) as sb:
        before = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        async with rebrand(sb.url, tmp_path, "run") as proc:
            await _lines_until(proc, "conference.updated", 60)
            proc.kill()
            assert await proc.wait() == -signal.SIGKILL
        changed = [cid for cid, c in sb.space.conferences.items()
                   if not same_writable_state(c, before[cid])]
        assert 60 <= len(changed) < 600
        journals = list((tmp_path / "rebrand-backups").glob("*.jsonl"))
        assert len(journals) == 1
        journalled = {c["id"] for c in pre_images(journals[0])}
        assert set(changed) <= journalled  # nothing was written without its pre-image

        async with rebrand(sb.url, tmp_path, "restore", str(journals[0])) as proc:
            events = await _rest(proc)
            assert await proc.wait() == 0
        assert events[-1]["event"] == "run.summary"
        assert not_back(before, sb.space.conferences) == []
