"""`restore`: every journalled conference back to its pre-image, conflicts left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    not_back,
    restore_settings,
    settings_for,
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
