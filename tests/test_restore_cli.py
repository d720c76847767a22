"""`rebrand restore` as an operator runs it: which Space it may talk to, and the exit code
it earns. A real process against a sandbox Space, judged by what the Space saw."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support import (
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    rebrand,
    sandbox_env,
    serve_app,
    settings_for,
    trap_app,
    write_config,
)
from worker.errors import ConfigError
from worker.run.job import run_job
from worker.space import NamedSpace, parse_space, restore_space

pytestmark = pytest.mark.anyio


def _retarget(journal: Path, space: str) -> Path:
    """A copy of the journal whose header names another Space, as an edited file would."""
    lines = journal.read_bytes().splitlines()
    header = orjson.loads(lines[0])
    header["space"] = space
    edited = journal.with_name("edited.jsonl")
    edited.write_bytes(b"\n".join([orjson.dumps(header), *lines[1:]]) + b"\n")
    return edited


async def _journal(url: str, tmp_path: Path) -> Path:
    run = await run_job(settings_for(url, backup_dir=tmp_path / "run"), SANDBOX_CREDENTIALS)
    assert run.journal is not None and run.summary.updated > 0
    return run.journal


def test_a_restore_with_no_space_named_says_which_space_and_how_to_name_it() -> None:
    with pytest.raises(ConfigError) as raised:
        restore_space(None, "https://acme.signalwire.com", "j.jsonl")
    message = str(raised.value)
    assert "https://acme.signalwire.com" in message
    assert "SIGNALWIRE_SPACE=acme.signalwire.com rebrand restore j.jsonl" in message
    assert "--space acme.signalwire.com" in message


def test_a_journal_of_another_space_is_refused_naming_both() -> None:
    named = NamedSpace(parse_space("ours.signalwire.com"), "SIGNALWIRE_SPACE")
    with pytest.raises(ConfigError) as raised:
        restore_space(named, "https://theirs.example.com", "j.jsonl")
    message = str(raised.value)
    assert "https://theirs.example.com" in message and "https://ours.signalwire.com" in message
    assert "SIGNALWIRE_SPACE names" in message and "--space theirs.example.com" in message


def test_the_named_space_is_used_when_the_header_agrees_in_any_spelling() -> None:
    named = NamedSpace(parse_space("https://ACME.signalwire.com:443/"), "--space")
    assert restore_space(named, "https://acme.signalwire.com", "j") == named.space
    with pytest.raises(ConfigError, match="names no usable Space"):
        restore_space(named, None, "j")


async def test_restore_never_sends_credentials_where_only_the_journal_points(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    trapped: list[str] = []
    async with serve_app(trap_app(trapped)) as trap, sandbox_factory(count=10) as sb:
        edited = _retarget(await _journal(sb.url, tmp_path), trap)
        before = sb.space.put_count + sb.space.get_count
        # Nothing named: the header alone must not be enough.
        unnamed = await rebrand("restore", edited, "--backup-dir", tmp_path / "r",
                                env=sandbox_env())
        # Named, but the header points elsewhere.
        other = await rebrand("restore", edited, "--backup-dir", tmp_path / "r",
                              env=sandbox_env(SIGNALWIRE_SPACE=sb.url))
        flagged = await rebrand("restore", edited, "--space", sb.url,
                                "--backup-dir", tmp_path / "r", env=sandbox_env())
        seen = sb.space.put_count + sb.space.get_count
    assert trapped == []
    assert seen == before
    assert unnamed.code == 2, unnamed.err
    assert trap in unnamed.err and "SIGNALWIRE_SPACE=" in unnamed.err
    for ran, source in ((other, "SIGNALWIRE_SPACE"), (flagged, "--space")):
        assert ran.code == 2, ran.err
        assert trap in ran.err and sb.url in ran.err and f"{source} names" in ran.err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("how", ["env", "flag", "config"])
async def test_restore_runs_against_the_space_the_operator_named(
    sandbox_factory: SandboxFactory, tmp_path: Path, how: str
) -> None:
    async with sandbox_factory(count=10) as sb:
        journal = await _journal(sb.url, tmp_path)
        args: list[str | Path] = ["restore", journal, "--backup-dir", tmp_path / "r",
                                  "--log-format", "json"]
        env = sandbox_env()
        if how == "env":
            env = sandbox_env(SIGNALWIRE_SPACE=sb.url)
        elif how == "flag":
            args += ["--space", sb.url]
        else:
            args += ["--config", write_config(tmp_path, sb.url)]
        ran = await rebrand(*args, env=env)
    assert ran.code == 0, ran.err
    assert ran.summary()["updated"] > 0


def _edit_pre_image(journal: Path, field: str, value: object) -> str:
    """Put `value` into the first pre-image's `field`; returns that conference's id."""
    lines = journal.read_bytes().splitlines()
    for index, line in enumerate(lines):
        record = orjson.loads(line)
        if record.get("type") == "pre_image":
            record["conference"][field] = value
            lines[index] = orjson.dumps(record)
            journal.write_bytes(b"\n".join(lines) + b"\n")
            return str(record["conference"]["id"])
    raise AssertionError("no pre-image in the journal")


async def test_a_restore_that_leaves_a_conflict_exits_1_unless_forced(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=10) as sb:
        journal = await _journal(sb.url, tmp_path)
        victim = next(iter(sb.space.conferences))
        sb.space.conferences[victim]["description"] = "edited by a human"
        sb.space.conferences[victim]["updated_at"] = "2099-01-01T00:00:00.000001Z"
        common = ("--space", sb.url, "--log-format", "json", "--backup-dir", tmp_path / "r")
        conflicted = await rebrand("restore", journal, *common, env=sandbox_env())
        forced = await rebrand("restore", journal, "--force", *common, env=sandbox_env())
        again = await rebrand("restore", journal, *common, env=sandbox_env())
    assert (conflicted.code, conflicted.summary()["conflict"]) == (1, 1), conflicted.out
    assert conflicted.summary()["updated"] == 9
    assert (forced.code, forced.summary()["updated"], forced.summary()["conflict"]) == (0, 1, 0)
    assert (again.code, again.summary()["unchanged"]) == (0, 10)


async def test_a_restore_that_leaves_a_failure_exits_1(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=10) as sb:
        journal = await _journal(sb.url, tmp_path)
        # A pre-image the Space refuses to take back (422): that conference stays themed.
        _edit_pre_image(journal, "quality", "8k")
        ran = await rebrand("restore", journal, "--space", sb.url, "--log-format", "json",
                            "--backup-dir", tmp_path / "r", env=sandbox_env())
    assert ran.code == 1, ran.out
    assert (ran.summary()["failed"], ran.summary()["updated"]) == (1, 9)


async def test_a_torn_journal_tail_is_read_and_counted(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=10) as sb:
        journal = await _journal(sb.url, tmp_path)
        with journal.open("ab") as handle:
            handle.write(b'{"type":"pre_image","conference":{"id":"cut-o')
        ran = await rebrand("restore", journal, "--space", sb.url, "--log-format", "json",
                            "--backup-dir", tmp_path / "r", env=sandbox_env())
    assert ran.code == 0, ran.err
    torn = [e for e in ran.events() if e["event"] == "journal.torn_tail"]
    assert len(torn) == 1 and torn[0]["level"] == "warning"
    assert torn[0]["dropped_records"] == 1 and torn[0]["line"] == 22  # header, 10 pre-images, 10 written
    assert ran.summary()["journal_dropped"] == 1
    assert ran.summary()["updated"] == 10


@pytest.mark.parametrize(("key", "value"), [("theme", {"light": {"primary": "blue"}}),
                                            ("rules", {"sales": {"dark": []}})])
async def test_a_journal_header_with_a_bad_theme_is_the_journals_fault_not_the_configs(
    sandbox_factory: SandboxFactory, tmp_path: Path, key: str, value: object
) -> None:
    async with sandbox_factory(count=5) as sb:
        journal = await _journal(sb.url, tmp_path)
        lines = journal.read_bytes().splitlines()
        header = orjson.loads(lines[0])
        header[key] = value
        journal.write_bytes(b"\n".join([orjson.dumps(header), *lines[1:]]) + b"\n")
        seen = len(sb.space.requests)
        ran = await rebrand("restore", journal, "--space", sb.url, "--backup-dir",
                            tmp_path / "r", env=sandbox_env())
        assert sb.space.requests[seen:] == []
    assert ran.code == 2, ran.err
    assert f"journal {journal}: the header's `{key}` is not a theme rebrand writes" in ran.err
    assert "Traceback" not in ran.err
