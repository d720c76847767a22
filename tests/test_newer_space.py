"""A Space newer than rebrand: a property the bundled spec does not name is never reset.

The sandbox plays the newer Space (`--extra-field`): every conference carries
`enable_live_captions`, and a PUT whose body omits it resets it, as a full replacement
does. Without the guard every write would lose it; with it the run stops first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from tests.support import (
    REPO,
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    json_events,
    rebrand,
    restore_settings,
    sandbox_env,
    settings_for,
    write_config,
)
from worker.errors import ExitCode
from worker.run.job import restore_job, run_job
from worker.run.journal import pre_images, read_journal
from worker.sandbox import RunningSandbox

pytestmark = pytest.mark.anyio

NEW = "enable_live_captions"
CAPTIONS = ((NEW, True),)


def puts_with_bodies(sb: RunningSandbox) -> list[dict[str, Any]]:
    """Record every PUT body the sandbox is about to apply."""
    bodies: list[dict[str, Any]] = []
    sb.space.before_put = lambda _space, _cid, body: bodies.append(dict(body))
    return bodies


async def test_a_run_stops_before_writing_a_property_it_does_not_know(
    sandbox_factory: SandboxFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The guard: exit 4, no PUT, and every conference keeps the property. Remove the
    check in the consumer and this fails: the PUTs go out and reset it."""
    async with sandbox_factory(count=30, on_theme_fraction=0.0, extra_fields=CAPTIONS) as sb:
        capsys.readouterr()
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path), SANDBOX_CREDENTIALS)
        assert sb.space.put_count == 0
        assert all(c[NEW] is True for c in sb.space.conferences.values())
    assert result.exit_code == ExitCode.ABORTED
    assert result.summary.updated == 0
    assert result.summary.unknown_fields == (NEW,)
    assert result.summary.stopped is not None
    message = str(result.error)
    assert NEW in message
    assert "reset" in message  # why writing would lose it
    assert f"--allow-field {NEW}" in message and "upgrade rebrand" in message  # how to go on
    events = json_events(capsys.readouterr().out)
    failed = [e for e in events if e["event"] == "conference.failed"]
    assert failed and failed[0]["unknown_fields"] == [NEW]
    assert failed[0]["conference_id"] in message  # names the conference
    assert [e["event"] for e in events[-2:]] == ["run.aborted", "run.summary"]
    # The journal exists as for any stop, with nothing written.
    assert result.journal is not None and result.journal.exists()
    assert list(pre_images(result.journal)) == []


async def test_without_the_guard_the_same_run_resets_the_property_everywhere(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The loss the guard prevents: told to go on (`allow_fields`) against a Space whose
    PUT does reset the property, every written conference loses it."""
    async with sandbox_factory(count=30, on_theme_fraction=0.0, extra_fields=CAPTIONS) as sb:
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path, allow_field=[NEW]),
                               SANDBOX_CREDENTIALS)
        assert result.exit_code == ExitCode.OK
        assert result.summary.updated == 30
        assert all(c[NEW] is None for c in sb.space.conferences.values())


async def test_an_allowed_property_is_left_out_of_the_put_kept_in_the_journal_and_listed(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=25, on_theme_fraction=0.0, extra_fields=CAPTIONS,
                               extra_on_put="keep") as sb:
        bodies = puts_with_bodies(sb)
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path, allow_field=[NEW]),
                               SANDBOX_CREDENTIALS)
        assert all(c[NEW] is True for c in sb.space.conferences.values())
    assert result.exit_code == ExitCode.OK
    assert result.summary.updated == 25 == len(bodies)
    assert not any(NEW in body for body in bodies)
    assert result.summary.allowed_fields == (NEW,)
    assert result.journal is not None
    images = list(pre_images(result.journal))
    assert len(images) == 25 and all(image[NEW] is True for image in images)


async def test_writes_made_before_the_stop_stay_journaled_and_restorable(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Only a conference met later carries the property: the ones written before the stop
    are in the journal, and a restore puts them back."""
    async with sandbox_factory(count=12, on_theme_fraction=0.0) as sb:
        before = sb.space.seed_snapshot()
        order = sorted(sb.space.conferences.values(), key=lambda c: (c["created_at"], c["id"]))
        late = order[-1]["id"]
        sb.space.conferences[late][NEW] = False
        result = await run_job(settings_for(sb.url, concurrency=1, backup_dir=tmp_path / "run"),
                               SANDBOX_CREDENTIALS)
        assert result.exit_code == ExitCode.ABORTED
        assert result.summary.unknown_fields == (NEW,)
        assert sb.space.puts_by_id[late] == 0
        written = {cid for cid, n in sb.space.puts_by_id.items() if n}
        assert len(written) == result.summary.updated > 0
        assert result.journal is not None
        assert {c["id"] for c in pre_images(result.journal)} == written
        undo = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "undo"),
                                 SANDBOX_CREDENTIALS, read_journal(result.journal))
        assert undo.exit_code == ExitCode.OK
        for cid in written:
            for field in ("light_primary", "dark_background", "description"):
                assert sb.space.conferences[cid][field] == before[cid][field]


async def test_a_property_only_the_fresh_read_shows_stops_the_run_too(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The listing was clean; the property appeared between listing and GET."""
    async with sandbox_factory(count=5, on_theme_fraction=0.0) as sb:

        def appear(space: Any, items: list[dict[str, Any]]) -> None:
            for item in items:
                space.conferences[item["id"]][NEW] = True

        sb.space.after_list_page = appear
        result = await run_job(settings_for(sb.url, concurrency=1, backup_dir=tmp_path),
                               SANDBOX_CREDENTIALS)
        assert sb.space.put_count == 0
        assert sb.space.get_count >= 1
    assert result.exit_code == ExitCode.ABORTED
    assert NEW in str(result.error)


async def test_plan_exits_4_and_names_the_property_in_its_output_and_summary_md(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=20, on_theme_fraction=0.0, extra_fields=CAPTIONS) as sb:
        config = write_config(tmp_path, sb.url)
        markdown = tmp_path / "plan.md"
        ran = await rebrand("plan", "--config", config, "--summary-md", markdown,
                            env=sandbox_env())
        assert sb.space.put_count == 0
    assert ran.code == 4, ran.err
    assert NEW in ran.out
    assert ran.summary()["unknown_fields"] == [NEW]
    text = markdown.read_text()
    assert f"`{NEW}`" in text and "would reset" in text and "--allow-field" in text


async def test_plan_with_the_property_allowed_from_the_environment_lists_it(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=20, on_theme_fraction=0.0, extra_fields=CAPTIONS) as sb:
        config = write_config(tmp_path, sb.url)
        markdown = tmp_path / "plan.md"
        ran = await rebrand("plan", "--config", config, "--summary-md", markdown,
                            env=sandbox_env(REBRAND_ALLOW_FIELDS=f"{NEW},other_thing"))
    assert ran.code == 10, ran.err
    assert ran.summary()["allowed_fields"] == [NEW]
    assert f"Allowed properties beyond the spec, left out of every PUT and kept in the " \
           f"journal: `{NEW}`" in markdown.read_text()


async def test_run_with_allow_field_flags_goes_on_and_the_summary_lists_them(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    extra = ((NEW, True), ("tier", {"level": "gold"}))
    async with sandbox_factory(count=15, on_theme_fraction=0.0, extra_fields=extra,
                               extra_on_put="keep") as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            "--allow-field", NEW, "--allow-field", "tier", env=sandbox_env())
        assert all(c["tier"] == {"level": "gold"} for c in sb.space.conferences.values())
    assert ran.code == 0, ran.err
    summary = ran.summary()
    assert summary["allowed_fields"] == [NEW, "tier"]
    assert summary["updated"] == 15


async def test_one_property_allowed_and_another_not_still_stops(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    extra = ((NEW, True), ("tier", "gold"))
    async with sandbox_factory(count=5, extra_fields=extra) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            "--allow-field", NEW, env=sandbox_env())
        assert sb.space.put_count == 0
    assert ran.code == 4
    assert ran.summary()["unknown_fields"] == ["tier"]
    aborted = next(e for e in ran.events() if e["event"] == "run.aborted")
    assert "tier" in aborted["error"] and f"--allow-field {NEW}" not in aborted["error"]


@pytest.mark.parametrize(("flags", "env", "named"), [
    (["--allow-field", "two words"], {}, "--allow-field 'two words'"),
    (["--allow-field", ""], {}, "--allow-field ''"),
    ([], {"REBRAND_ALLOW_FIELDS": "a,b c"}, "REBRAND_ALLOW_FIELDS 'b c'"),
], ids=["space", "empty", "env"])
async def test_an_allow_field_that_cannot_be_a_property_is_bad_input(
    tmp_path: Path, flags: list[str], env: dict[str, str], named: str
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    ran = await rebrand("run", "--config", config, *flags, env=sandbox_env(**env))
    assert ran.code == 2
    assert named in ran.err and "Traceback" not in ran.err


async def test_allowing_a_property_the_spec_names_warns_and_goes_on(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=3) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("plan", "--config", config, "--allow-field", "description",
                            env=sandbox_env())
    assert ran.code in (0, 10), ran.err
    warning = next(e for e in ran.events() if e["event"] == "config.allow_field_known")
    assert warning["fields"] == ["description"]


async def test_restore_checks_the_fresh_read_too(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A property that appeared after the run would be reset by a restore's PUT as well."""
    async with sandbox_factory(count=6, on_theme_fraction=0.0) as sb:
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path / "run"),
                               SANDBOX_CREDENTIALS)
        assert result.exit_code == ExitCode.OK and result.journal is not None
        for conference in sb.space.conferences.values():
            conference[NEW] = True
        puts = sb.space.put_count
        undo = await restore_job(restore_settings(sb.url, backup_dir=tmp_path / "undo"),
                                 SANDBOX_CREDENTIALS, read_journal(result.journal))
        assert undo.exit_code == ExitCode.ABORTED
        assert sb.space.put_count == puts
        assert all(c[NEW] is True for c in sb.space.conferences.values())


async def test_the_sandbox_cli_plays_a_newer_space(tmp_path: Path) -> None:
    """`rebrand sandbox --extra-field` as a user would start it, checked over HTTP."""
    process = await anyio.open_process(
        [sys.executable, "-m", "worker", "sandbox", "--port", "0", "--count", "3",
         "--extra-field", f"{NEW}=true", "--extra-field", 'tier={"level": "gold"}'],
        cwd=REPO)
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await process.stdout.receive()
        ready = orjson.loads(line)
        config = write_config(tmp_path, ready["url"])
        ran = await rebrand("plan", "--config", config, env=sandbox_env())
        assert ran.code == 4
        assert ran.summary()["unknown_fields"] == [NEW, "tier"]
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize(("value", "message"), [
    ("enable_live_captions", "not NAME=JSON"),
    ("tier=gold", "is not JSON"),
    ("description=null", "the spec already names it"),
])
async def test_a_bad_extra_field_is_refused_with_a_message(value: str, message: str) -> None:
    process = await anyio.run_process(
        [sys.executable, "-m", "worker", "sandbox", "--port", "0", "--extra-field", value],
        check=False)
    assert process.returncode == 2
    assert message in process.stderr.decode()


async def test_restore_on_a_newer_space_goes_on_only_with_the_property_allowed(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """`rebrand restore` takes --allow-field and REBRAND_ALLOW_FIELDS as run does, and
    its pre-images keep the allowed property while its PUTs leave it out."""
    async with sandbox_factory(count=6, on_theme_fraction=0.0, extra_fields=CAPTIONS,
                               extra_on_put="keep") as sb:
        before = sb.space.seed_snapshot()
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "run",
                            "--allow-field", NEW, env=sandbox_env())
        assert ran.code == 0, ran.err
        [journal] = (tmp_path / "run").glob("*.jsonl")
        refused = await rebrand("restore", str(journal), "--backup-dir", tmp_path / "r1",
                                env=sandbox_env(SIGNALWIRE_SPACE=sb.url))
        puts = sb.space.put_count
        undone = await rebrand("restore", str(journal), "--backup-dir", tmp_path / "r2",
                               env=sandbox_env(SIGNALWIRE_SPACE=sb.url,
                                               REBRAND_ALLOW_FIELDS=NEW))
        assert sb.space.put_count > puts
        after = sb.space.conferences
    assert refused.code == 4 and NEW in refused.out
    assert undone.code == 0, undone.out + undone.err
    assert undone.summary()["allowed_fields"] == [NEW]
    for cid, conference in after.items():
        assert conference["light_primary"] == before[cid]["light_primary"]
        assert conference[NEW] is True
