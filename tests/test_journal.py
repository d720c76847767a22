"""The backup journal: header, pre-images before writes, torn tails, no secrets."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import anyio
import orjson
import pytest

from tests.support import SANDBOX_CREDENTIALS, SandboxFactory, settings_for
from worker.errors import ConfigError
from worker.run.job import run_job
from worker.run.journal import Header, JournalWriter, pre_images, read_journal

pytestmark = pytest.mark.anyio


def _header() -> Header:
    return Header("run-1", "https://example.signalwire.com", "run",
                  {"light": {"primary": "#0A84FF"}}, "0.1.0", "2026-11-22T00:00:00Z")


async def test_concurrent_pre_images_are_all_on_disk_when_their_writers_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    writer = JournalWriter(path, _header())
    seen_on_disk: list[bool] = []

    async def one(i: int) -> None:
        await writer.before_write({"id": f"id-{i}", "name": f"n{i}"})
        # Read the file through a separate handle: what a crash right now would leave.
        ids = {c["id"] for c in pre_images(path)}
        seen_on_disk.append(f"id-{i}" in ids)

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(one, i)
    writer.close()
    assert seen_on_disk == [True] * 40
    assert read_journal(path).count == 40


async def test_writers_staged_before_a_sync_share_it_and_a_later_one_gets_its_own(
    tmp_path: Path,
) -> None:
    # The sync is observed: it blocks until released, so the test decides what is
    # staged while it runs.
    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def datasync(fd: int) -> None:
        calls.append(fd)
        started.set()
        release.wait(5)

    writer = JournalWriter(tmp_path / "j.jsonl", _header(), datasync=datasync)
    seqs = [writer.stage({"id": f"id-{i}"}) for i in range(10)]
    done: list[int] = []

    async def durable(seq: int) -> None:
        await writer.durable(seq)
        done.append(seq)

    async with anyio.create_task_group() as tg:
        for seq in seqs:
            tg.start_soon(durable, seq)
        assert await anyio.to_thread.run_sync(started.wait, 5)
        # Staged while the first sync runs: that sync does not cover it.
        late = writer.stage({"id": "late"})
        tg.start_soon(durable, late)
        await anyio.sleep(0.05)
        assert done == []  # nobody resumes before the sync has returned
        release.set()
    writer.close()
    # Ten writers, one sync; the late one, a second.
    assert len(calls) == 2
    assert sorted(done) == [*seqs, late]
    assert writer.syncs == 2


async def test_a_writer_already_covered_returns_without_a_sync(tmp_path: Path) -> None:
    calls: list[int] = []
    writer = JournalWriter(tmp_path / "j.jsonl", _header(), datasync=calls.append)
    first, second = writer.stage({"id": "a"}), writer.stage({"id": "b"})
    await writer.durable(second)
    await writer.durable(first)
    writer.close()
    assert len(calls) == 1


async def test_a_torn_last_line_is_tolerated_but_a_torn_middle_line_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    writer = JournalWriter(path, _header())
    await writer.before_write({"id": "a", "name": "a"})
    await writer.after_write("a", "2026-11-22T00:00:01.000001Z")
    await writer.before_write({"id": "b", "name": "b"})
    writer.close()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"type": "pre_image", "conference": {"id": "c"')
    contents = read_journal(path)
    assert contents.torn_tail
    assert contents.written_at == {"a": "2026-11-22T00:00:01.000001Z", "b": None}
    assert [c["id"] for c in pre_images(path)] == ["a", "b"]

    lines = whole.splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{broken\n" + b"".join(lines[1:]))
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        read_journal(path)


async def test_a_file_without_a_journal_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not-a-journal.jsonl"
    path.write_text('{"hello": "world"}\n')
    with pytest.raises(ConfigError, match="no rebrand journal header"):
        read_journal(path)


async def test_the_journal_never_overwrites_another_run(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    JournalWriter(path, _header()).close()
    with pytest.raises(ConfigError, match="--backup-dir"):
        JournalWriter(path, _header())


async def test_a_run_journals_full_pre_images_and_returned_updated_at_without_the_token(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=40) as sb:
        before = sb.space.seed_snapshot()
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path), SANDBOX_CREDENTIALS)
        assert result.journal is not None
        assert result.journal.parent == tmp_path
        raw = result.journal.read_bytes()
        assert SANDBOX_CREDENTIALS.api_token.encode() not in raw
        assert SANDBOX_CREDENTIALS.authorization().split()[1].encode() not in raw
        header = orjson.loads(raw.splitlines()[0])
        assert header["type"] == "header"
        assert header["format"] == 1
        assert header["space"] == sb.url
        assert header["theme"]["light"]["primary"] == "#0A84FF"
        assert {"run_id", "tool_version", "started_at"} <= header.keys()
        journalled = {c["id"]: c for c in pre_images(result.journal)}
        assert len(journalled) == result.summary.updated
        for cid, pre in journalled.items():
            assert pre == before[cid]  # the full GET body, untouched by the run
        contents = read_journal(result.journal)
        for cid in journalled:
            assert contents.written_at[cid] == sb.space.conferences[cid]["updated_at"]


def test_a_journal_whose_header_cannot_be_written_is_removed(tmp_path: Path) -> None:
    """A full disk, as the process sees it (RLIMIT_FSIZE below the header's size; Python
    ignores SIGXFSZ, so the write fails with EFBIG as it would with ENOSPC): the run is
    refused as bad input, and no empty journal is left to shadow the real ones."""
    path = tmp_path / "b" / "20261122T014309Z-3f9a1c.jsonl"
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from worker.errors import ConfigError\n"
        "from worker.run.journal import Header, JournalWriter\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))\n"
        "try:\n"
        f"    JournalWriter(Path({str(path)!r}), Header('r', 'https://x.signalwire.com',"
        " 'run', None, '0', 'now'))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(2)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False,
                          timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2, done.stderr.decode()
    assert f"cannot write the journal {path}" in done.stdout.decode()
    assert not path.exists(), "the header-less journal was left behind"
    assert list((tmp_path / "b").iterdir()) == []
