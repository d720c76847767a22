"""Day 2 on the backup directory: which journals retention lets go (pure), compressed
journals that restore reads, `restore --latest`, and the whole loop through the CLI."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.support import Ran, SandboxFactory
from tests.test_cli import rebrand, sandbox_env, write_config
from worker.cli.housekeeping import latest_run_journal, restoring, tidy
from worker.errors import ConfigError
from worker.retention import Retention, prunable
from worker.run.journal import compress, read_journal

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _name(days_ago: float, tag: str = "aaaaaa", suffix: str = ".jsonl") -> Path:
    when = NOW - timedelta(days=days_ago)
    return Path(f"{when.strftime('%Y%m%dT%H%M%SZ')}-{tag}{suffix}")


def _names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_without_a_limit_nothing_is_pruned() -> None:
    assert prunable([_name(400), _name(1)], Retention(), now=NOW) == []


def test_older_than_keep_days_goes_and_the_newest_never_does() -> None:
    old, older, new = _name(10), _name(40), _name(0.5)
    assert _names(prunable([new, old, older], Retention(keep_days=30), now=NOW)) == \
        [older.name]
    # Every journal older than the limit: the newest still stays.
    assert _names(prunable([old, older], Retention(keep_days=1), now=NOW)) == [older.name]


def test_beyond_the_newest_k_goes_compressed_or_not() -> None:
    paths = [_name(d, suffix=".jsonl.gz" if d > 2 else ".jsonl") for d in (5, 4, 3, 2, 1)]
    assert _names(prunable(paths, Retention(keep_last=2), now=NOW)) == \
        _names(paths[:3])


def test_either_limit_prunes() -> None:
    paths = [_name(d) for d in (50, 3, 2, 1)]
    assert _names(prunable(paths, Retention(keep_days=30, keep_last=3), now=NOW)) == \
        [paths[0].name]
    assert _names(prunable(paths, Retention(keep_days=30, keep_last=2), now=NOW)) == \
        _names(paths[:2])


def test_a_journal_a_restore_has_not_finished_with_stays() -> None:
    old = _name(90)
    mark = old.with_name(old.name + ".restoring")
    assert prunable([old, mark, _name(1)], Retention(keep_last=1), now=NOW) == []


def test_the_runs_own_journal_and_anything_not_a_journal_stay() -> None:
    own = _name(100)
    others = [Path("last-report.json"), Path("notes.jsonl"), Path("x.jsonl.gz.partial")]
    assert prunable([own, *others, _name(1)], Retention(keep_last=1), now=NOW,
                    keep=[own]) == []


def _journal(directory: Path, days_ago: float, command: str = "run", pre_images: int = 3,
             tag: str = "aaaaaa") -> Path:
    path = directory / _name(days_ago, tag).name
    header = {"type": "header", "format": 1, "run_id": path.stem, "space": "http://127.0.0.1",
              "command": command, "theme": None, "tool_version": "0", "started_at": "x"}
    lines = [header] + [{"type": "pre_image", "conference": {"id": f"c{i}", "name": f"n{i}"}}
                        for i in range(pre_images)]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def test_a_compressed_journal_reads_as_the_plain_one(tmp_path: Path) -> None:
    path = _journal(tmp_path, 1, pre_images=50)
    before = read_journal(path)
    plain = path.read_bytes()
    packed = compress(path)
    assert packed.name == path.name + ".gz" and not path.exists()
    assert gzip.decompress(packed.read_bytes()) == plain
    assert packed.stat().st_size < len(plain) / 3
    after = read_journal(packed)
    assert (after.header, after.written_at, after.count) == \
        (before.header, before.written_at, before.count)
    assert [c["id"] for c in after.pre_images()] == [f"c{i}" for i in range(50)]


def test_a_damaged_compressed_journal_is_bad_input(tmp_path: Path) -> None:
    packed = compress(_journal(tmp_path, 1, pre_images=500))
    packed.write_bytes(packed.read_bytes()[:200])
    with pytest.raises(ConfigError, match="compressed file is damaged"):
        read_journal(packed)


def test_latest_is_the_newest_run_journal_not_a_restores(tmp_path: Path) -> None:
    _journal(tmp_path, 3, tag="older0")
    wanted = compress(_journal(tmp_path, 2, tag="wanted"))
    _journal(tmp_path, 1, command="restore", tag="undo00")
    assert latest_run_journal(tmp_path) == wanted


def _headerless(directory: Path, days_ago: float, content: bytes, tag: str) -> Path:
    """What a run on a full disk could leave: a journal with no whole header line."""
    path = directory / _name(days_ago, tag).name
    path.write_bytes(content)
    return path


# Empty; a header torn mid-write; a first line that is not a header.
HEADERLESS = (b"", b'{"type": "header", "format": 1, "run_id": "2026', b'{"type": "pre_image"}\n')


def test_latest_passes_over_journals_without_a_readable_header_and_says_so(
        tmp_path: Path) -> None:
    wanted = _journal(tmp_path, 3, tag="wanted")
    broken = [_headerless(tmp_path, 2 - i * 0.5, content, f"brkn{i:02d}")
              for i, content in enumerate(HEADERLESS)]
    skipped: list[tuple[Path, str]] = []
    assert latest_run_journal(tmp_path, skipped=lambda p, why: skipped.append((p, why))) \
        == wanted
    assert sorted(p for p, _ in skipped) == sorted(broken)
    whys = dict(skipped)
    assert "empty" in whys[broken[0]]
    assert "torn" in whys[broken[1]]
    assert "not a rebrand journal header" in whys[broken[2]]


def test_latest_with_only_headerless_journals_says_where_it_looked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _headerless(tmp_path, 1, b"", "empty0")
    with pytest.raises(ConfigError, match=f"no journal of a `rebrand run` in {tmp_path}"):
        latest_run_journal(tmp_path)
    assert f"skipped {tmp_path / _name(1, 'empty0').name}: it is empty" in \
        capsys.readouterr().err


async def _restore_latest_takes(real: Path, backups: Path, space: str) -> Ran:
    """`restore --latest` over `backups`: it restored the 5 conferences of the journal
    `real`, and said so (`restore.latest`)."""
    undo = await rebrand("restore", "--latest", "--backup-dir", backups, "--space", space,
                         "--log-format", "json", env=sandbox_env())
    assert undo.code == 0, undo.err
    assert undo.summary()["updated"] == 5
    [latest] = [e for e in undo.events() if e["event"] == "restore.latest"]
    assert latest["journal"] == str(real)
    return undo


@pytest.mark.anyio
async def test_restore_latest_undoes_the_newest_real_run_past_an_empty_journal(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Through the CLI: a run's journal, then newer header-less ones (a full disk);
    `restore --latest` takes the run's, names on stderr what it passed over and why."""
    backups = tmp_path / "b"
    async with sandbox_factory(count=5, on_theme_fraction=0.0) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--backup-dir", backups,
                            "--log-format", "json", env=sandbox_env())
        assert ran.code == 0, ran.err
        [real] = backups.glob("*.jsonl")
        empty = backups / "29991231T235959Z-ffffff.jsonl"
        empty.write_bytes(b"")
        undo = await _restore_latest_takes(real, backups, sb.url)
        assert f"skipped {empty}: it is empty" in undo.err


@pytest.mark.anyio
async def test_restore_latest_passes_over_the_journal_of_a_run_that_wrote_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A second run finds every conference on theme and sends no PUT: its journal holds a
    header alone. `restore --latest` still means the run that changed the Space, and says
    on stderr which journal it passed over and why."""
    backups = tmp_path / "b"
    async with sandbox_factory(count=5, on_theme_fraction=0.0) as sb:
        before = sb.space.seed_snapshot()
        config = write_config(tmp_path, sb.url)
        first = await rebrand("run", "--config", config, "--backup-dir", backups,
                              "--log-format", "json", env=sandbox_env())
        assert first.code == 0, first.err
        [real] = backups.glob("*.jsonl")
        puts = sb.space.put_count
        again = await rebrand("run", "--config", config, "--backup-dir", backups,
                              "--log-format", "json", env=sandbox_env())
        assert again.code == 0, again.err
        assert sb.space.put_count == puts  # the second run sent nothing
        [empty] = set(backups.glob("*.jsonl")) - {real}
        undo = await _restore_latest_takes(real, backups, sb.url)
        assert f"skipped {empty}: it holds no pre-image" in undo.err
        after = {cid: dict(c) for cid, c in sb.space.conferences.items()}
    assert {cid: c["light_primary"] for cid, c in after.items()} == \
        {cid: c["light_primary"] for cid, c in before.items()}


@pytest.mark.anyio
async def test_restore_latest_with_only_empty_journals_is_bad_input_naming_the_dir(
        tmp_path: Path) -> None:
    empty = tmp_path / "20261122T014309Z-3f9a1c.jsonl"
    empty.write_bytes(b"")
    ran = await rebrand("restore", "--latest", "--backup-dir", tmp_path, "--space",
                        "http://127.0.0.1:9", env=sandbox_env())
    assert ran.code == 2
    assert f"skipped {empty}: it is empty" in ran.err
    assert f"no journal of a `rebrand run` in {tmp_path}" in ran.err


def test_latest_in_a_directory_without_run_journals_says_where_it_looked(
        tmp_path: Path) -> None:
    _journal(tmp_path, 1, command="restore")
    with pytest.raises(ConfigError, match=f"no journal of a `rebrand run` in {tmp_path}"):
        latest_run_journal(tmp_path)


def test_a_restore_marks_its_journal_until_it_ends_well(tmp_path: Path) -> None:
    path = _journal(tmp_path, 1)
    mark = tmp_path / (path.name + ".restoring")
    def died() -> None:
        with restoring(path):
            assert mark.exists()
            raise RuntimeError("the restore died")

    with pytest.raises(RuntimeError):
        died()
    assert mark.exists()  # a restore that did not finish keeps the journal
    with restoring(path) as finished:
        assert mark.exists()
    assert mark.exists()  # a restore that ended, but not with exit 0
    finished()
    assert not mark.exists()


def test_tidy_compresses_the_closed_ones_and_prunes_what_the_policy_lets_go(
        tmp_path: Path) -> None:
    ancient = _journal(tmp_path, 60, tag="old000")
    held = _journal(tmp_path, 50, tag="held00")
    (tmp_path / (held.name + ".restoring")).touch()
    recent = _journal(tmp_path, 2, tag="recent")
    own = _journal(tmp_path, 0, tag="itself")
    done = tidy(tmp_path, own, Retention(keep_days=30), compress_closed=True,
                now=NOW)
    assert set(done.compressed) == {ancient.name, recent.name}  # not held, not its own
    assert done.pruned == (ancient.name + ".gz",)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [held.name, held.name + ".restoring", recent.name + ".gz", own.name])


@pytest.mark.anyio
async def test_retention_after_a_good_run_and_restore_latest_undoes_it(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Through the CLI: three runs (a theme change between each), the second and third
    keep the last two journals compressed; `restore --latest` undoes the last run."""
    backups = tmp_path / "b"
    async with sandbox_factory(count=12, on_theme_fraction=0.0) as sb:
        journals = []
        for primary in ("#111111", "#222222", "#333333"):
            config = write_config(tmp_path, sb.url,
                                  theme={"light": {"primary": primary}})
            ran = await rebrand("run", "--config", config, "--backup-dir", backups,
                                "--log-format", "json", "--keep-last", "2",
                                "--compress-journals", env=sandbox_env())
            assert ran.code == 0, ran.err
            journals.append(ran.summary())
        names = sorted(p.name for p in backups.iterdir())
        assert len(names) == 2, names
        # The last run's own journal stays plain; the one before it is compressed. (Names
        # alone do not say which is which: quick runs share their second.)
        plain = [n for n in names if n.endswith(".jsonl")]
        assert len(plain) == 1 and len([n for n in names if n.endswith(".jsonl.gz")]) == 1
        undo = await rebrand("restore", "--latest", "--backup-dir", backups, "--space",
                             sb.url, "--log-format", "json", env=sandbox_env())
        assert undo.code == 0, undo.err
        assert undo.summary()["updated"] == 12
        [latest] = [e for e in undo.events() if e["event"] == "restore.latest"]
        assert latest["journal"].endswith(plain[0])
        colors = {c["light_primary"].upper() for c in sb.space.conferences.values()}
        assert colors == {"#222222"}
        assert not list(backups.glob("*.restoring"))


@pytest.mark.anyio
async def test_restore_needs_a_journal_or_latest_but_not_both(tmp_path: Path) -> None:
    for args in ([], ["x.jsonl", "--latest"]):
        ran = await rebrand("restore", *args, "--space", "http://127.0.0.1:9",
                            env=sandbox_env())
        assert ran.code == 2
        assert "give the JOURNAL to undo, or --latest" in ran.err


def test_runs_started_in_the_same_second_are_ordered_by_their_last_write(
        tmp_path: Path) -> None:
    """Run ids carry the second only, and their random tails sort anyhow."""
    first, second = _name(1, "ffffff"), _name(1, "000000")
    mtimes = {first: 1_000, second: 2_000}
    assert prunable([first, second], Retention(keep_last=1), now=NOW, mtimes=mtimes) == \
        [first]
    plain = _journal(tmp_path, 1)
    before = plain.stat().st_mtime_ns
    assert compress(plain).stat().st_mtime_ns == before  # compression keeps the order


def test_a_fleet_directory_stands_for_each_targets_newest_journal_with_a_header(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`restore --config FLEET DIR`: as --latest, per target folder."""
    from worker.cli.fleet import _journal_paths

    acme = tmp_path / "acme"
    acme.mkdir()
    wanted = _journal(acme, 2, tag="wanted")
    empty = _headerless(acme, 1, b"", "empty0")
    assert _journal_paths([tmp_path]) == [wanted]
    assert f"skipped {empty}: it is empty" in capsys.readouterr().err
