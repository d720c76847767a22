"""`restore`: every journalled conference back to its pre-image, conflicts left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    not_back,
    restore_settings,
    serve_app,
    settings_for,
    whole_conference,
)
from worker.run.job import JobResult, restore_job, run_job
from worker.run.journal import pre_images, read_journal
from worker.theme import COLOR_FIELDS

pytestmark = pytest.mark.anyio


async def _themed(url: str, tmp_path: Path) -> JobResult:
    """A run that themes the Space, journalling into tmp_path/run: what restore undoes."""
    return await run_job(settings_for(url, backup_dir=tmp_path / "run"), SANDBOX_CREDENTIALS)


def _assert_back(space_conferences: dict[str, dict[str, Any]],
                 before: dict[str, dict[str, Any]]) -> None:
    assert not_back(before, space_conferences) == []


async def test_restore_puts_every_conference_back_and_a_second_restore_changes_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=50) as sb:
        before = sb.space.seed_snapshot()
        run = await _themed(sb.url, tmp_path)
        assert run.summary.updated > 0
        assert run.journal is not None
        first = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "restore"),
                              SANDBOX_CREDENTIALS, read_journal(run.journal))
        assert first.exit_code == 0
        assert first.summary.updated == run.summary.updated
        _assert_back(sb.space.conferences, before)

        puts = sb.space.put_count
        second = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "restore"),
                              SANDBOX_CREDENTIALS, read_journal(run.journal))
        assert second.exit_code == 0
        assert second.summary.unchanged == run.summary.updated
        assert sb.space.put_count == puts


async def test_a_restore_writes_its_own_journal_so_it_can_be_undone(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=30) as sb:
        run = await _themed(sb.url, tmp_path)
        themed = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        assert run.journal is not None
        restore = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "restore"),
                              SANDBOX_CREDENTIALS, read_journal(run.journal))
        assert restore.journal is not None
        assert read_journal(restore.journal).header["command"] == "restore"
        # Undo the restore: back to the themed state.
        undo = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "undo"),
                              SANDBOX_CREDENTIALS, read_journal(restore.journal))
        assert undo.summary.updated == restore.summary.updated
        _assert_back(sb.space.conferences, themed)


async def test_a_conference_edited_since_our_write_is_a_conflict_unless_forced(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with sandbox_factory(count=30) as sb:
        before = sb.space.seed_snapshot()
        run = await _themed(sb.url, tmp_path)
        assert run.journal is not None
        victim = next(iter(c["id"] for c in pre_images(run.journal)))
        # Someone else edits it after our run (the sandbox stamps a new updated_at).
        sb.space.conferences[victim]["description"] = "edited by a human"
        sb.space.conferences[victim]["updated_at"] = "2099-01-01T00:00:00.000001Z"
        capsys.readouterr()

        result = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "r"),
                              SANDBOX_CREDENTIALS, read_journal(run.journal))
        out = capsys.readouterr().out
        assert result.summary.conflict == 1
        assert sb.space.conferences[victim]["description"] == "edited by a human"
        assert '"event":"conference.conflict"' in out and victim in out

        forced = await restore_job(restore_settings(sb.url, force=True, backup_dir=tmp_path / "f"),
                              SANDBOX_CREDENTIALS, read_journal(run.journal))
        assert forced.summary.updated == 1
        _assert_back({victim: sb.space.conferences[victim]}, {victim: before[victim]})


async def test_restore_dry_run_sends_no_write(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=20) as sb:
        run = await _themed(sb.url, tmp_path)
        assert run.journal is not None
        puts = sb.space.put_count
        dry = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "r", dry_run=True),
                              SANDBOX_CREDENTIALS, read_journal(run.journal))
        assert sb.space.put_count == puts
        assert dry.summary.planned == run.summary.updated
        assert dry.exit_code == 10
        assert not (tmp_path / "r").exists()


async def test_a_hand_edited_pre_image_without_a_required_property_is_failed_not_put(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A PUT built from a pre-image that lacks `description` would leave it out, and a
    # full replacement resets what it leaves out: the restore would lose it.
    async with sandbox_factory(count=10) as sb:
        run = await _themed(sb.url, tmp_path)
        assert run.journal is not None and run.summary.updated > 0
        lines = run.journal.read_bytes().splitlines(keepends=True)
        edited = next(i for i, line in enumerate(lines) if b'"pre_image"' in line)
        record = orjson.loads(lines[edited])
        victim = record["conference"]["id"]
        del record["conference"]["description"]
        lines[edited] = orjson.dumps(record) + b"\n"
        run.journal.write_bytes(b"".join(lines))
        themed = dict(sb.space.conferences[victim])
        seen = len(sb.space.requests)
        capsys.readouterr()

        result = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "r"),
                                   SANDBOX_CREDENTIALS, read_journal(run.journal))
        events = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert result.summary.failed == 1
        assert result.summary.updated == run.summary.updated - 1
        assert ("PUT", f"/api/video/conferences/{victim}") not in sb.space.requests[seen:]
        assert sb.space.conferences[victim] == themed
        failed = next(e for e in events if e.get("conference_id") == victim)
        assert failed["event"] == "conference.failed"
        assert "the journal's pre-image lacks required properties: description" in str(failed)
        # What to do: the journal, not the Space, is at fault.
        assert "an undamaged copy of the journal" in str(failed)


@pytest.mark.parametrize("mode", ["keep", "defaults", "nulls"])
async def test_a_null_theme_color_a_space_keeps_is_failed_with_why_and_never_a_conflict(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    # A PUT cannot send null: on a Space that keeps what a PUT leaves out, the theme's
    # color stays where the room had none. Saying "updated" would call it undone, and
    # the next restore took our own write for someone else's edit.
    async with sandbox_factory(count=6, reset=mode, on_theme_fraction=0.0) as sb:
        for conference in sb.space.conferences.values():
            for color in COLOR_FIELDS:
                conference[color] = conference[color] or "#101010"
        victim = next(iter(sb.space.conferences))
        sb.space.conferences[victim]["dark_primary"] = None
        run = await _themed(sb.url, tmp_path)
        assert run.journal is not None and sb.space.conferences[victim]["dark_primary"]
        for attempt in ("first", "second"):
            result = await restore_job(
                restore_settings(sb.url, backup_dir=tmp_path / attempt),
                SANDBOX_CREDENTIALS, read_journal(run.journal))
            kept = sb.space.conferences[victim]["dark_primary"] is not None
            assert kept == (mode == "keep") or mode == "defaults"
            assert result.summary.conflict == 0, attempt
            assert result.summary.failed == int(kept), attempt
            assert result.exit_code == (1 if kept else 0), attempt


def _precision_space(get_stamp: str, put_stamp: str, store: dict[str, dict[str, Any]],
                     puts: list[dict[str, Any]]) -> web.Application:
    """A Space that stamps each write at one instant but writes `updated_at` at
    `put_stamp`'s precision in a PUT's answer and at `get_stamp`'s in a GET's (the spec
    says only `format: date-time`). It keeps what a PUT leaves out."""
    shown: dict[str, str] = {}

    async def listing(request: web.Request) -> web.Response:
        return web.json_response({"links": {"self": str(request.url), "first": "x"},
                                  "data": [{**c, "updated_at": shown.get(cid, c["updated_at"])}
                                           for cid, c in store.items()]})

    async def one(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        return web.json_response({**store[cid], "updated_at": shown.get(cid,
                                                                       store[cid]["updated_at"])})

    async def write(request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        body = await request.json()
        puts.append(body)
        store[cid] = {**store[cid], **body}
        shown[cid] = get_stamp.format(n=len(puts))
        return web.json_response({**store[cid], "updated_at": put_stamp.format(n=len(puts))})

    app = web.Application()
    app.router.add_get("/api/video/conferences", listing)
    app.router.add_get("/api/video/conferences/{id}", one)
    app.router.add_put("/api/video/conferences/{id}", write)
    return app


@pytest.mark.parametrize(("get_stamp", "put_stamp"), [
    ("2026-12-01T00:00:0{n}Z", "2026-12-01T00:00:0{n}.123456Z"),
    ("2026-12-01T00:00:0{n}.123Z", "2026-12-01T00:00:0{n}.123456Z"),
    ("2026-12-01T00:00:0{n}.123456+00:00", "2026-12-01T00:00:0{n}Z"),
], ids=["get-seconds", "get-milliseconds", "put-seconds"])
async def test_a_space_writing_updated_at_at_another_precision_in_gets_is_restored_not_conflict(
    tmp_path: Path, get_stamp: str, put_stamp: str
) -> None:
    # One write, one instant: a GET that shows it to the second (or millisecond) and a
    # PUT's answer to the microsecond name the same write. Taken for someone else's
    # edit, every conference was a conflict and the restore put nothing back.
    ids = [f"0b6c2f5e-0000-4000-8000-{i:012d}" for i in (1, 2)]
    store = {cid: whole_conference(cid, name=f"room-{i}", display_name=f"Room {i}",
                                   **dict.fromkeys(COLOR_FIELDS, "#101010"),
                                   updated_at="2026-01-01T00:00:00Z")
             for i, cid in enumerate(ids)}
    before = {cid: dict(c) for cid, c in store.items()}
    puts: list[dict[str, Any]] = []
    async with serve_app(_precision_space(get_stamp, put_stamp, store, puts)) as url:
        run = await run_job(settings_for(url, backup_dir=tmp_path / "run"), SANDBOX_CREDENTIALS)
        assert run.summary.updated == 2 and run.journal is not None
        restored = await restore_job(restore_settings(url, backup_dir=tmp_path / "restore"),
                                     SANDBOX_CREDENTIALS, read_journal(run.journal))
    assert (restored.summary.conflict, restored.summary.updated) == (0, 2)
    assert restored.exit_code == 0
    assert len(puts) == 4
    assert not_back(before, store) == []
