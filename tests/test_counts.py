"""Counts that match the journal, however a run ends: a write the Space answered with a
2xx is `updated`, a write whose answer never came is `unknown` (never `not_started`), the
summary's counts add up to the conferences listed, and `updated` equals the journal's
applied `written` records. A journal that cannot be written stops the run before its next
write (exit 4, naming it)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    json_events,
    not_back,
    sandbox_env,
    serve_app,
    settings_for,
    write_config,
)
from tests.test_hostile_server import conference, ids, space_app
from worker.cli.human import event_line
from worker.cli.style import Palette
from worker.errors import ExitCode
from worker.outcome import Kind, Outcome
from worker.run.job import run_job
from worker.run.report import Reporter

pytestmark = pytest.mark.anyio

COUNTS = ("updated", "unchanged", "vanished", "failed", "planned", "conflict", "excluded",
          "not_started", "unknown")


def journal_records(directory: Path) -> list[dict[str, Any]]:
    """Every whole record (a torn last line, from a failed write, is left out)."""
    records = []
    for path in directory.glob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return records


def check_counts(summary: dict[str, Any], events: list[dict[str, Any]], backups: Path,
                 applied_on_space: set[str]) -> None:
    """The invariants of item 3, whatever ended the run."""
    assert sum(summary[k] for k in COUNTS) == summary["listed"], summary
    written = [r for r in journal_records(backups) if r["type"] == "written"]
    updated = {e["conference_id"] for e in events if e["event"] == "conference.updated"}
    unknown = {e["conference_id"] for e in events if e["event"] == "conference.unknown"}
    assert summary["updated"] == len(updated) == sum(1 for r in written if r["applied"])
    assert summary["unknown"] == len(unknown)
    # Every write the Space applied is reported as updated, or as unknown when its answer
    # never came; none hides among the not_started.
    assert applied_on_space <= updated | unknown


def test_a_put_sent_without_an_outcome_is_unknown_not_not_started() -> None:
    reporter = Reporter()
    for _ in ("a", "b", "c"):
        reporter.listed_one()
    reporter.sending("a", "room a")
    reporter.record(Outcome(Kind.UPDATED, "a", "a"))
    reporter.sending("b", "room b")  # cut off: the run ended before its answer
    reporter.unanswered()
    summary = reporter.summary()
    assert (summary.updated, summary.unknown, summary.not_started) == (1, 1, 1)


def hanging_space(count: int, applied: set[str]) -> web.Application:
    """A Space that applies every PUT at once, but answers only every other one: the rest
    hang, as a write does when the network or the Space stalls after applying it."""
    listed = [conference(cid, n) for n, cid in enumerate(ids(count))]
    slow = {c["id"] for c in listed[1::2]}

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": listed}

    async def put(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        applied.add(cid)
        if cid in slow:
            await anyio.sleep(60)
        body = await request.json()
        return web.json_response({**next(c for c in listed if c["id"] == cid), **body})

    return space_app(pages, [], put=put)


@pytest.mark.parametrize(
    ("ending", "settings", "expected"),
    [("deadline, then the grace period runs out", {"deadline_s": 0.5, "grace_s": 0.05},
      ExitCode.DEADLINE)],
)
async def test_a_write_cut_off_in_flight_is_unknown_and_counts_match_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ending: str,
    settings: dict[str, Any], expected: ExitCode
) -> None:
    applied: set[str] = set()
    async with serve_app(hanging_space(40, applied)) as url:
        result = await run_job(settings_for(url, backup_dir=tmp_path, **settings),
                               SANDBOX_CREDENTIALS)
    assert result.exit_code == expected, ending
    events = json_events(capsys.readouterr().out)
    summary = events[-1]
    check_counts(summary, events, tmp_path, applied)
    # Concurrency 8: four slow writes hang at any moment, then the grace runs out.
    assert summary["unknown"] >= 4, summary
    assert all("may have landed" in e["errors"][0] for e in events
               if e["event"] == "conference.unknown")


async def test_a_write_cut_off_in_flight_is_shown_by_its_name_as_other_lines_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run learns a write is unknown only when it ends; its event still carries the
    name the Space listed, so the terminal's line reads like the other conferences'."""
    applied: set[str] = set()
    names = {cid: f"room-{n}" for n, cid in enumerate(ids(40))}
    async with serve_app(hanging_space(40, applied)) as url:
        await run_job(settings_for(url, backup_dir=tmp_path, deadline_s=0.5, grace_s=0.05),
                      SANDBOX_CREDENTIALS)
    unknown = [e for e in json_events(capsys.readouterr().out)
               if e["event"] == "conference.unknown"]
    assert unknown
    for event in unknown:
        assert event["name"] == names[event["conference_id"]]
        line = event_line(event, Palette())
        assert line.split()[:2] == ["unknown", names[event["conference_id"]]], line
        assert event["conference_id"] not in line


@pytest.mark.parametrize(
    ("ending", "settings", "expected"),
    [("normal end", {}, ExitCode.OK),
     ("deadline within the grace period", {"deadline_s": 0.4, "grace_s": 5},
      ExitCode.DEADLINE),
     ("max failures", {"max_failures": 3, "grace_s": 0.05}, ExitCode.ABORTED),
     ("credentials revoked mid-run", {"revoke": 20}, ExitCode.AUTH)],
)
async def test_counts_match_the_journal_however_the_run_ends(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    ending: str, settings: dict[str, Any], expected: ExitCode
) -> None:
    revoke = settings.pop("revoke", None)
    async with sandbox_factory(count=120, latency_s=0.02, on_theme_fraction=0.0,
                               revoke_after_puts=revoke) as sb:
        if ending == "max failures":
            for conference_ in list(sb.space.conferences.values())[::3]:
                conference_["display_name"] = None
                conference_["name"] = "n" * 250  # no display name can be written for it
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path, **settings),
                               SANDBOX_CREDENTIALS)
        applied = {cid for cid, n in sb.space.puts_by_id.items() if n}
    assert result.exit_code == expected, ending
    events = json_events(capsys.readouterr().out)
    summary = events[-1]
    assert summary["event"] == "run.summary"
    check_counts(summary, events, tmp_path, applied)


def refusing_space(count: int, puts: list[str], status: int) -> web.Application:
    """A Space that refuses every PUT with `status` and a long Retry-After: nothing lands."""
    listed = [conference(cid, n) for n, cid in enumerate(ids(count))]

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": listed}

    async def put(request: web.Request) -> web.Response:
        puts.append(request.match_info["id"])
        return web.json_response({"error": "Too Many Requests"}, status=status,
                                 headers={"Retry-After": "30"})

    return space_app(pages, [], put=put)


@pytest.mark.parametrize(("status", "unknown"), [(429, 0), (503, 0), (504, 3)])
async def test_a_write_refused_then_waiting_to_retry_when_the_run_ends_is_not_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int, unknown: int
) -> None:
    # The Space answered each PUT (429/503, come back in 30 s) and the run ended during
    # the wait. Nothing landed: "unknown: sent, but the answer never came (each may have
    # landed)" sent the operator to settle writes that never happened. A gateway's 504 is
    # not the Space's answer: behind it the write may land, so that one stays unknown.
    puts: list[str] = []
    async with serve_app(refusing_space(3, puts, status)) as url:
        result = await run_job(
            settings_for(url, backup_dir=tmp_path, deadline_s=0.5, grace_s=0.05,
                         retry={"retry_after_cap_s": 30, "max_attempts": 3}),
            SANDBOX_CREDENTIALS)
    assert result.exit_code == ExitCode.DEADLINE
    assert len(puts) == 3
    events = json_events(capsys.readouterr().out)
    summary = events[-1]
    assert (summary["unknown"], summary["not_started"]) == (unknown, 3 - unknown), summary
    check_counts(summary, events, tmp_path, set())


async def test_sigterm_with_writes_in_flight_counts_them_unknown(tmp_path: Path) -> None:
    applied: set[str] = set()
    async with serve_app(hanging_space(40, applied)) as url:
        config = write_config(tmp_path, url, concurrency=8)
        command = [sys.executable, "-m", "worker", "run", "--config", str(config),
                   "--grace-seconds", "0.2", "--backup-dir", str(tmp_path / "b")]
        async with await anyio.open_process(command, env=sandbox_env(),
                                            cwd=tmp_path) as proc:
            assert proc.stdout is not None
            buffer = b""
            with anyio.fail_after(30):
                while buffer.count(b"conference.updated") < 4:
                    buffer += await proc.stdout.receive()
            proc.send_signal(signal.SIGTERM)
            async for chunk in proc.stdout:
                buffer += chunk
            code = await proc.wait()
    assert code == 143
    events = [orjson.loads(line) for line in buffer.splitlines() if line.strip()]
    summary = events[-1]
    assert summary["event"] == "run.summary"
    # The stop ends pacing waits, so a writer whose slot had not come sends nothing and
    # is not_started; the slow PUTs already sent hang, and are unknown (how many were
    # sent by the signal depends on the pacing ticks, but the first tick sends some).
    assert summary["unknown"] >= 1, summary
    check_counts(summary, events, tmp_path / "b", applied)


async def test_a_journal_that_cannot_be_written_stops_the_run_before_its_next_write(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A full disk, as the process sees it: writes past 24 KiB fail (RLIMIT_FSIZE; Python
    ignores SIGXFSZ, so write() returns EFBIG as it would ENOSPC)."""

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (24 << 10, 24 << 10))

    async with sandbox_factory(count=200, on_theme_fraction=0.0) as sb:
        config = write_config(tmp_path, sb.url, concurrency=4)
        backups = tmp_path / "b"
        command = [sys.executable, "-m", "worker", "run", "--config", str(config),
                   "--backup-dir", str(backups), "--report", str(tmp_path / "report.json")]
        # In a thread: the sandbox serves on this loop while the child runs.
        done = await anyio.to_thread.run_sync(lambda: subprocess.run(
            command, env=sandbox_env(), cwd=tmp_path, check=False, capture_output=True,
            preexec_fn=small_disk, timeout=60))
        puts = Counter(path.rsplit("/", 1)[-1] for method, path in sb.space.requests
                       if method == "PUT")
    err = done.stderr.decode()
    assert done.returncode == ExitCode.ABORTED, err
    assert "Traceback" not in err
    journal = next(backups.glob("*.jsonl"))
    events = json_events(done.stdout.decode())
    aborted = [e for e in events if e["event"] == "run.aborted"]
    assert f"journal {journal}: cannot be written" in aborted[0]["error"]
    assert "stopped before its next write" in aborted[0]["error"]
    # No PUT went out without its pre-image on disk.
    kept = {r["conference"]["id"] for r in journal_records(backups)
            if r.get("type") == "pre_image"}
    assert set(puts) <= kept
    assert len(puts) < 200


@pytest.mark.parametrize(("limit", "concurrency"), [(24 << 10, 1), (24 << 10, 4), (50_000, 4)])
async def test_a_full_disk_keeps_updated_equal_to_the_journals_applied_records(
    sandbox_factory: SandboxFactory, tmp_path: Path, limit: int, concurrency: int
) -> None:
    """The disk fills as a `written` record is appended after its PUT was answered: that
    conference cannot count as `updated` with no applied record behind it. It is `unknown`
    (its pre-image is kept, and a restore tells by its contents), and the restore of what
    the journal holds puts every conference back."""

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    async with sandbox_factory(count=200, on_theme_fraction=0.0) as sb:
        before = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        config = write_config(tmp_path, sb.url, concurrency=concurrency)
        backups = tmp_path / "b"
        command = [sys.executable, "-m", "worker", "run", "--config", str(config),
                   "--backup-dir", str(backups)]
        done = await anyio.to_thread.run_sync(lambda: subprocess.run(
            command, env=sandbox_env(), cwd=tmp_path, check=False, capture_output=True,
            preexec_fn=small_disk, timeout=60))
        applied = {cid for cid, n in sb.space.puts_by_id.items() if n}
        assert done.returncode == ExitCode.ABORTED, done.stderr.decode()
        events = json_events(done.stdout.decode())
        assert events[-1]["event"] == "run.summary"
        check_counts(events[-1], events, backups, applied)
        journal = next(backups.glob("*.jsonl"))
        restore = [sys.executable, "-m", "worker", "restore", str(journal), "--space", sb.url,
                   "--backup-dir", str(tmp_path / "r")]
        undone = await anyio.to_thread.run_sync(lambda: subprocess.run(
            restore, env=sandbox_env(), cwd=tmp_path, check=False, capture_output=True,
            timeout=60))
        assert undone.returncode == 0, undone.stdout.decode()[-2000:]
        assert not_back(before, sb.space.conferences) == []
