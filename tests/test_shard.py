"""Sharding: a stable slice by conference id, resolved from the flag and the Indexed Job's
environment, and four shards at once writing every conference exactly once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from tests.support import (
    SANDBOX_CREDENTIALS,
    SANDBOX_ENV,
    SandboxFactory,
    rebrand,
    sandbox_env,
    sandbox_in_thread,
    settings_for,
    write_config,
)
from worker.cli.main import main
from worker.errors import ConfigError
from worker.run.job import JobResult, run_job
from worker.sandbox import ON_THEME
from worker.shard import Shard, resolve_shard, shard_of


def test_shard_of_is_pinned_to_blake2b_not_the_salted_builtin_hash() -> None:
    # Fixed expectations: a change of hash would silently reshuffle running shards.
    assert [shard_of(x, 4) for x in ("a", "b", "c")] == [3, 1, 3]
    assert shard_of("00000000-0000-4000-8000-000000000000", 4) == 0
    assert shard_of("room", 1000) == 436


def test_shard_of_is_the_same_in_another_process() -> None:
    code = "from worker.shard import shard_of; print(shard_of('conference-42', 7))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"})
    assert int(out.stdout) == shard_of("conference-42", 7)


def test_shards_partition_ids_evenly() -> None:
    counts = Counter(shard_of(f"id-{i}", 4) for i in range(20_000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(4_500 < n < 5_500 for n in counts.values())


def test_each_shard_gets_its_share_of_the_rate_limit() -> None:
    assert Shard(1, 4).rate_limit(1380.0) == 345.0


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        (None, {}, None),
        ("2/4", {}, Shard(2, 4)),
        ("2/4", {"JOB_COMPLETION_INDEX": "1", "REBRAND_SHARD_COUNT": "8"}, Shard(2, 4)),
        (None, {"JOB_COMPLETION_INDEX": "3", "REBRAND_SHARD_COUNT": "4"}, Shard(3, 4)),
        ("/4", {"JOB_COMPLETION_INDEX": "1"}, Shard(1, 4)),
        ("1/", {"REBRAND_SHARD_COUNT": "2"}, Shard(1, 2)),
        ("0/1", {}, Shard(0, 1)),
    ],
)
def test_resolve_shard_from_flag_and_environment(
    flag: str | None, env: dict[str, str], expected: Shard | None
) -> None:
    assert resolve_shard(flag, env) == expected


@pytest.mark.parametrize(
    ("flag", "env", "message"),
    [
        ("4/4", {}, "INDEX must be below COUNT"),
        ("1/0", {}, "COUNT.* must be at least 1"),
        ("x/4", {}, "'x' is not a whole number"),
        ("-1/4", {}, "must be at least 0"),
        ("-0/4", {}, "-0 must be at least 0"),
        ("1/" + "9" * 5000, {}, "more digits than any shard count"),
        ("-" + "9" * 5000 + "/4", {}, "more digits than any shard count"),
        ("3", {}, "write INDEX/COUNT"),
        ("/4", {}, r"INDEX \(or JOB_COMPLETION_INDEX\): missing"),
        (None, {"JOB_COMPLETION_INDEX": "0"}, "set REBRAND_SHARD_COUNT"),
        (None, {"JOB_COMPLETION_INDEX": "5", "REBRAND_SHARD_COUNT": "4"}, "below COUNT"),
    ],
)
def test_bad_shards_are_refused(flag: str | None, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_shard(flag, env)


# What int() reads as a number but Kubernetes never writes: it writes plain ASCII digits.
NOT_PLAIN_DIGITS = [" 3 ", "3\n", "1_0", "+3", "\u0663", "\uff13", "3.0", "0x3", ""]


@pytest.mark.parametrize("text", [t for t in NOT_PLAIN_DIGITS if t])
@pytest.mark.parametrize("variable", ["JOB_COMPLETION_INDEX", "REBRAND_SHARD_COUNT"])
def test_a_shard_variable_other_than_plain_ascii_digits_is_refused(
        variable: str, text: str) -> None:
    env = {"JOB_COMPLETION_INDEX": "1", "REBRAND_SHARD_COUNT": "4", variable: text}
    with pytest.raises(ConfigError) as refused:
        resolve_shard(None, env)
    message = str(refused.value)
    assert message.startswith(f"{variable}: ")
    assert ascii(text) in message  # quoted as code points: "\u0663" is not mistaken for 3
    assert message.isascii() and message.isprintable()
    assert "digits 0-9" in message


@pytest.mark.parametrize("text", [t for t in NOT_PLAIN_DIGITS if t.strip()])
@pytest.mark.parametrize("side", ["index", "count"])
def test_a_shard_flag_other_than_plain_ascii_digits_is_refused(side: str, text: str) -> None:
    flag = f"{text}/4" if side == "index" else f"1/{text}"
    with pytest.raises(ConfigError) as refused:
        resolve_shard(flag, {})
    message = str(refused.value)
    assert message.startswith(f"--shard {side.upper()}: ")
    assert ascii(text) in message
    assert "digits 0-9" in message


@pytest.mark.parametrize(("flag", "env"), [
    ("0/4", {}), (None, {"JOB_COMPLETION_INDEX": "0", "REBRAND_SHARD_COUNT": "4"}),
    ("007/0010", {}), (None, {"JOB_COMPLETION_INDEX": "07", "REBRAND_SHARD_COUNT": "010"}),
])
def test_plain_ascii_digits_with_leading_zeros_are_read_as_decimal(
        flag: str | None, env: dict[str, str]) -> None:
    assert resolve_shard(flag, env) in (Shard(0, 4), Shard(7, 10))


def test_a_shard_environment_in_other_digits_exits_2_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_in_thread(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        env = {**SANDBOX_ENV, "JOB_COMPLETION_INDEX": "\u0661", "REBRAND_SHARD_COUNT": " 4 "}
        code = main(["run", "--config", str(config), "--backup-dir", str(tmp_path / "b")], env)
        assert sb.space.requests == []
    assert code == 2
    err = capsys.readouterr().err
    assert "REBRAND_SHARD_COUNT: ' 4 '" in err


@pytest.mark.parametrize(
    ("flag", "env", "named", "not_named"),
    [
        (None, {"JOB_COMPLETION_INDEX": "5", "REBRAND_SHARD_COUNT": "4"},
         ("JOB_COMPLETION_INDEX=5", "REBRAND_SHARD_COUNT=4"), "--shard"),
        ("/4", {"JOB_COMPLETION_INDEX": "5"}, ("JOB_COMPLETION_INDEX=5", "--shard /4"), None),
        ("5/4", {}, ("--shard 5/4",), "JOB_COMPLETION_INDEX"),
    ],
)
def test_an_index_not_below_the_count_names_where_each_came_from(
        flag: str | None, env: dict[str, str], named: tuple[str, ...],
        not_named: str | None) -> None:
    """An Indexed Job's pod sets no --shard: the message names the variables to change."""
    with pytest.raises(ConfigError) as refused:
        resolve_shard(flag, env)
    for words in named:
        assert words in str(refused.value)
    assert not_named is None or not_named not in str(refused.value)


def test_a_bad_shard_exits_2_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_in_thread(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        code = main(["run", "--config", str(config), "--shard", "4/4"], SANDBOX_ENV)
        assert sb.space.requests == []
    assert code == 2
    assert "INDEX must be below COUNT" in capsys.readouterr().err


BAD_SHARD_ENVIRONMENTS = {
    # name: (environment, what stderr says)
    "an index without a count": ({"JOB_COMPLETION_INDEX": "3"}, "set REBRAND_SHARD_COUNT"),
    "an index not below the count": ({"JOB_COMPLETION_INDEX": "5", "REBRAND_SHARD_COUNT": "4"},
                                     "INDEX must be below COUNT"),
    "a count that is not a number": ({"REBRAND_SHARD_COUNT": "four"}, "'four' is not a whole"),
    "a huge count": ({"REBRAND_SHARD_COUNT": "x" * 100_000}, "is not a whole number"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("fleet", [False, True])
@pytest.mark.parametrize("case", list(BAD_SHARD_ENVIRONMENTS))
async def test_validate_refuses_a_bad_shard_environment_as_run_does(
    sandbox_factory: SandboxFactory, tmp_path: Path, case: str, fleet: bool
) -> None:
    shard_env, said = BAD_SHARD_ENVIRONMENTS[case]
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        if fleet:
            config = write_config(tmp_path, sb.url, targets=[{
                "name": "one", "space": sb.url, "project_id_env": "SIGNALWIRE_PROJECT_ID",
                "token_env": "SIGNALWIRE_API_TOKEN"}])
            text = config.read_text(encoding="utf-8").replace(f"space: {sb.url}\n", "", 1)
            config.write_text(text, encoding="utf-8")
        env = sandbox_env(**shard_env)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b", env=env)
        checked = [await rebrand("validate", "--config", config, *online, env=env)
                   for online in ((), ("--online",))]
        seen = list(sb.space.requests)
    assert seen == []
    assert ran.code == 2, ran.err
    assert said in ran.err
    assert len(ran.err) < 1000
    for validated in checked:
        assert (validated.code, validated.err) == (ran.code, ran.err)


@pytest.mark.anyio
async def test_four_shards_at_once_write_every_conference_exactly_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=600, latency_s=0.002) as sb:
        before = sb.space.seed_snapshot()
        off_theme = {cid for cid, c in before.items()
                     if any(str(c[f]).upper() != v.upper() for f, v in ON_THEME.items())}
        results: dict[int, JobResult] = {}
        settings = settings_for(sb.url)

        async def shard_run(index: int) -> None:
            shard = Shard(index, 4)
            # Each at the whole Space's rate, as before: the test is about the slices.
            results[index] = await run_job(
                replace(settings, shard=shard, backup_dir=tmp_path / str(index)),
                SANDBOX_CREDENTIALS)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for index in range(4):
                tg.start_soon(shard_run, index)
        elapsed = time.monotonic() - started
        puts = sb.space.puts_by_id
        assert set(puts) == off_theme
        assert all(n == 1 for n in puts.values())
    assert all(r.exit_code == 0 for r in results.values())
    assert all(r.summary.listed == 600 for r in results.values())
    assert sum(r.summary.updated for r in results.values()) == len(off_theme)
    assert sum(r.summary.excluded for r in results.values()) == 3 * 600
    for index, result in results.items():
        owned = {cid for cid in before if shard_of(cid, 4) == index}
        assert result.summary.excluded == 600 - len(owned)
        assert result.summary.updated == len(owned & off_theme)
    print(f"4 shards, 600 conferences, {len(off_theme)} off theme: PUTs per shard "
          f"{[results[i].summary.updated for i in range(4)]}, {elapsed:.2f} s")


def test_four_shard_processes_from_indexed_job_environment_write_each_once(
    tmp_path: Path,
) -> None:
    """As Kubernetes runs them: four processes, each told only JOB_COMPLETION_INDEX and
    REBRAND_SHARD_COUNT."""
    with sandbox_in_thread(count=300) as sb:
        config = write_config(tmp_path, sb.url)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "worker", "run", "--config", str(config),
                 "--backup-dir", str(tmp_path / f"b{i}")],
                env={**SANDBOX_ENV, "JOB_COMPLETION_INDEX": str(i), "REBRAND_SHARD_COUNT": "4",
                     "PATH": "/usr/bin:/bin"},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            for i in range(4)
        ]
        codes = [p.wait(timeout=60) for p in procs]
        puts = dict(sb.space.puts_by_id)
        expected = sb.space.put_count
    assert codes == [0, 0, 0, 0], [p.stderr.read() for p in procs if p.stderr]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    assert puts
    assert len(puts) == expected
    assert set(puts.values()) == {1}
