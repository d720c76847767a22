"""Fleets end to end: three sandbox Spaces, each with its own credentials and data, run from
one config through the real CLI. Credentials stay with their own Space, one target's
refusal stops that target alone, and a fleet's journals restore every target exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from anyio.from_thread import start_blocking_portal

from tests.support import BRAND, REPO, clean_env, json_events
from worker.body import WRITABLE_FIELDS
from worker.cli.main import main
from worker.errors import ExitCode
from worker.fleet import fleet_exit_code
from worker.sandbox import RunningSandbox, SandboxConfig
from worker.sandbox.server import serve_fleet

NAMES = ("acme", "globex", "initech")
SUPPORT = {"light": {"primary": "#117733", "background": "#FFFFFF"},
           "dark": {"primary": "#44AA99"}}
FAST_RETRY = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "retry_after_cap_s": 0.05}


def _credentials(name: str) -> tuple[str, str]:
    return f"{name}-project", f"{name}-secret-token-{len(name)}"


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name in NAMES:
        project, token = _credentials(name)
        env[f"{name.upper()}_PROJECT_ID"] = project
        env[f"{name.upper()}_API_TOKEN"] = token
    return env


@contextmanager
def fleet_in_thread(count: int = 150, **per_target: dict[str, Any]) -> Iterator[
        dict[str, RunningSandbox]]:
    """Three Spaces in one process (another thread's loop), each its own data and
    credentials."""
    configs = {}
    for i, name in enumerate(NAMES):
        project, token = _credentials(name)
        configs[name] = SandboxConfig(count=count, seed=i + 1, project_id=project,
                                      api_token=token, on_theme_fraction=0.0,
                                      **per_target.get(name, {}))
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(serve_fleet(configs)) as running:
        yield running


def _config(tmp_path: Path, fleet: dict[str, RunningSandbox], **extra: Any) -> Path:
    targets = [{"name": name, "space": fleet[name].url,
                "project_id_env": f"{name.upper()}_PROJECT_ID",
                "token_env": f"{name.upper()}_API_TOKEN"} for name in NAMES]
    raw = {"targets": targets, "theme": BRAND, "concurrency": 6, "retry": FAST_RETRY, **extra}
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def _flat(theme: dict[str, dict[str, str]]) -> dict[str, str]:
    return {f"{m}_{r}": v for m, roles in theme.items() for r, v in roles.items()}


def _wears(conference: dict[str, Any], theme: dict[str, dict[str, str]]) -> bool:
    return all(str(conference[f]).upper() == v.upper() for f, v in _flat(theme).items())


def _shown_foreign(fleet: dict[str, RunningSandbox]) -> dict[str, list[str]]:
    """For each Space, any Authorization it was shown that belongs to another target."""
    import base64

    own = {name: "Basic " + base64.b64encode(":".join(_credentials(name)).encode()).decode()
           for name in NAMES}
    return {name: [h for h in fleet[name].space.foreign_authorizations
                   if h in own.values() and h != own[name]] for name in NAMES}


def test_one_refused_target_exits_3_naming_it_and_the_others_finish_themed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with fleet_in_thread(globex={"revoke_after_puts": 20}) as fleet:
        code = main(["run", "--config", str(_config(tmp_path, fleet)), "--backup-dir",
                     str(tmp_path / "backups"), "--log-format", "json"], env=_env())
        themed = {name: sum(_wears(c, BRAND) for c in fleet[name].space.conferences.values())
                  for name in NAMES}
        sizes = {name: len(fleet[name].space.conferences) for name in NAMES}
        foreign = _shown_foreign(fleet)
    captured = capsys.readouterr()
    assert code == ExitCode.AUTH
    assert "target globex decided the exit code 3" in captured.err
    assert themed["acme"] == sizes["acme"] and themed["initech"] == sizes["initech"]
    assert themed["globex"] < sizes["globex"]
    # No Space was ever shown another target's credentials.
    assert foreign == {name: [] for name in NAMES}
    events = json_events(captured.out)
    summaries = [e for e in events if e["event"] == "run.summary"]
    assert sorted(e["target"] for e in summaries) == sorted(NAMES)
    conference_events = [e for e in events if e["event"].startswith("conference.")]
    assert conference_events and all(e["target"] in NAMES for e in conference_events)
    (fleet_summary,) = [e for e in events if e["event"] == "fleet.summary"]
    assert fleet_summary["exit_code"] == 3 and fleet_summary["cause"] == "globex"
    assert {n: t["exit_code"] for n, t in fleet_summary["targets"].items()} == {
        "acme": 0, "globex": 3, "initech": 0}
    assert fleet_summary["totals"]["updated"] == sum(
        t["updated"] for t in fleet_summary["targets"].values())
    assert events[-1]["event"] == "fleet.summary"
    # Each target's journal in its own folder.
    for name in NAMES:
        assert len(list((tmp_path / "backups" / name).glob("*.jsonl"))) == 1


def test_a_fleet_journal_set_restores_every_target_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with fleet_in_thread(count=120) as fleet:
        before = {name: {cid: dict(c) for cid, c in fleet[name].space.conferences.items()}
                  for name in NAMES}
        config = _config(tmp_path, fleet)
        backups = tmp_path / "backups"
        assert main(["run", "--config", str(config), "--backup-dir", str(backups),
                     "--log-format", "json"], env=_env()) == ExitCode.OK
        assert all(_wears(c, BRAND) for n in NAMES
                   for c in fleet[n].space.conferences.values())
        # The whole backup directory: each target's newest run journal, each to its Space.
        code = main(["restore", "--config", str(config), str(backups), "--backup-dir",
                     str(tmp_path / "undo"), "--log-format", "json"], env=_env())
        after = {name: {cid: dict(c) for cid, c in fleet[name].space.conferences.items()}
                 for name in NAMES}
        foreign = _shown_foreign(fleet)
    assert code == ExitCode.OK, capsys.readouterr().err
    for name in NAMES:
        for cid, old in before[name].items():
            new = after[name][cid]
            assert {f: new.get(f) for f in WRITABLE_FIELDS if f != "display_name"} == {
                f: old.get(f) for f in WRITABLE_FIELDS if f != "display_name"}
    assert foreign == {name: [] for name in NAMES}


def test_a_fleet_directory_restore_passes_over_a_run_that_wrote_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Two targets, run (writes), run again (every conference already themed: journals of
    a header alone): restoring the backup directory undoes the first run, as `restore
    --latest` would, and names each journal it passed over on stderr."""
    with fleet_in_thread(count=20) as fleet:
        before = {name: {cid: dict(c) for cid, c in fleet[name].space.conferences.items()}
                  for name in NAMES[:2]}
        config = _config(tmp_path, fleet)
        raw = yaml.safe_load(config.read_text())
        raw["targets"] = raw["targets"][:2]
        config.write_text(json.dumps(raw))
        backups = tmp_path / "backups"
        run = ["run", "--config", str(config), "--backup-dir", str(backups),
               "--log-format", "json"]
        assert main(run, env=_env()) == ExitCode.OK
        first = {name: next((backups / name).glob("*.jsonl")) for name in NAMES[:2]}
        assert main(run, env=_env()) == ExitCode.OK
        nothing = {name: next(p for p in (backups / name).glob("*.jsonl") if p != first[name])
                   for name in NAMES[:2]}
        capsys.readouterr()
        code = main(["restore", "--config", str(config), str(backups), "--backup-dir",
                     str(tmp_path / "undo"), "--log-format", "json"], env=_env())
        after = {name: {cid: dict(c) for cid, c in fleet[name].space.conferences.items()}
                 for name in NAMES[:2]}
    err = capsys.readouterr().err
    assert code == ExitCode.OK, err
    for name in NAMES[:2]:
        fields = [f for f in WRITABLE_FIELDS if f != "display_name"]
        assert {cid: {f: c.get(f) for f in fields} for cid, c in after[name].items()} == {
            cid: {f: c.get(f) for f in fields} for cid, c in before[name].items()}
        assert (f"rebrand: warning: skipped {nothing[name]}: it holds no pre-image "
                "(its run sent no write)") in err
        assert str(first[name]) not in err


def test_rules_and_a_target_of_its_own_theme_in_one_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with fleet_in_thread(count=80) as fleet:
        path = _config(tmp_path, fleet)
        raw = yaml.safe_load(path.read_text())
        del raw["theme"]
        raw["rules"] = [{"name": "support", "select": {"include": ["*-support"]},
                         "theme": SUPPORT},
                        {"name": "rest", "theme": BRAND}]
        raw["targets"][2]["theme"] = SUPPORT  # initech: one theme, no rules
        path.write_text(json.dumps(raw))
        code = main(["run", "--config", str(path), "--backup-dir", str(tmp_path / "b"),
                     "--log-format", "json", "--target", "acme", "--target", "initech"],
                    env=_env())
        spaces = {n: fleet[n].space.conferences for n in NAMES}
        globex_puts = fleet["globex"].space.put_count
    assert code == ExitCode.OK, capsys.readouterr().err
    assert globex_puts == 0  # --target left it out
    for conference in spaces["acme"].values():
        wanted = SUPPORT if conference["name"].endswith("-support") else BRAND
        assert _wears(conference, wanted), conference["name"]
    assert all(_wears(c, SUPPORT) for c in spaces["initech"].values())
    events = json_events(capsys.readouterr().out)
    acme = [e for e in events if e.get("target") == "acme"
            and e["event"].startswith("conference.")]
    assert {e["rule"] for e in acme} == {"support", "rest"}


@pytest.mark.parametrize(("raw_targets", "message"), [
    ([{"name": "extra", "space": "extra.signalwire.com", "project_id_env": "NOPE_ID",
       "token_env": "NOPE_TOKEN"}], "targets.extra: NOPE_ID and NOPE_TOKEN are not set"),
    ([{"name": "extra", "space": "extra.signalwire.com", "project_id_env": "ACME_PROJECT_ID",
       "token_env": "ACME_API_TOKEN", "theme": {"light": {"primary": "red"}}}],
     "targets.extra.theme.light.primary: 'red' is not a #RRGGBB color"),
])
def test_one_bad_target_stops_the_whole_run_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw_targets: list[dict[str, Any]],
    message: str,
) -> None:
    with fleet_in_thread(count=10) as fleet:
        path = _config(tmp_path, fleet)
        raw = yaml.safe_load(path.read_text())
        raw["targets"] += raw_targets
        path.write_text(json.dumps(raw))
        code = main(["run", "--config", str(path), "--backup-dir", str(tmp_path / "b")],
                    env=_env())
        seen = sum(len(fleet[n].space.requests) for n in NAMES)
    assert code == ExitCode.BAD_INPUT
    assert message in capsys.readouterr().err
    assert seen == 0


@pytest.mark.parametrize("command", ["plan", "run", "validate"])
def test_a_targets_unreadable_theme_is_refused_naming_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    # Every target shares the lines' wording; without the name, a fleet of ten leaves
    # the reader to guess whose theme to fix.
    with fleet_in_thread(count=10) as fleet:
        path = _config(tmp_path, fleet)
        raw = yaml.safe_load(path.read_text())
        raw["targets"][1]["theme"] = {"light": {"foreground": "#9CA3AF",
                                                "background": "#FFFFFF"}}
        path.write_text(json.dumps(raw))
        extra = [] if command == "validate" else ["--backup-dir", str(tmp_path / "b")]
        code = main([command, "--config", str(path), *extra], env=_env())
        seen = sum(len(fleet[n].space.requests) for n in NAMES)
    assert code == ExitCode.BAD_INPUT
    assert seen == 0
    err = capsys.readouterr().err
    assert ("target 'globex': light foreground #9CA3AF on background #FFFFFF: 2.54:1, "
            "below the minimum 4.5:1") in err


def test_space_and_targets_together_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"space": "x.signalwire.com", "theme": BRAND, "targets": [
        {"name": "a", "space": "a.signalwire.com", "project_id_env": "A",
         "token_env": "B"}]}))
    assert main(["plan", "--config", str(path)], env={}) == ExitCode.BAD_INPUT
    assert "space and targets: both given" in capsys.readouterr().err


@pytest.mark.parametrize(("codes", "expected"), [
    ({"a": 0, "b": 0}, (0, None)),
    ({"a": 1, "b": 3, "c": 4}, (3, "b")),
    ({"a": 1, "b": 4}, (4, "b")),
    ({"a": 0, "b": 143}, (4, "b")),
    ({"a": 1, "b": 5}, (5, "b")),
    ({"a": 5, "b": 4}, (4, "b")),
    ({"a": 5, "b": 3}, (3, "b")),
    ({"a": 1, "b": 0}, (1, "a")),
])
def test_the_fleet_exit_code_rule(codes: dict[str, int], expected: tuple[int, str | None]) -> None:
    assert fleet_exit_code(codes) == expected


def test_a_plan_with_changes_anywhere_is_10_and_a_signal_wins() -> None:
    assert fleet_exit_code({"a": 0, "b": 10}, dry_run=True) == (10, None)
    assert fleet_exit_code({"a": 3}, signalled=143) == (143, None)


def test_the_foreign_credential_record_bites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The check above would see a leak: a config that points acme at globex's variables
    sends globex's credentials to acme, which records them (and refuses them: exit 3)."""
    with fleet_in_thread(count=10) as fleet:
        path = _config(tmp_path, fleet)
        raw = yaml.safe_load(path.read_text())
        raw["targets"][0]["token_env"] = "GLOBEX_API_TOKEN"
        raw["targets"][0]["project_id_env"] = "GLOBEX_PROJECT_ID"
        raw["targets"] = raw["targets"][:1]
        path.write_text(json.dumps(raw))
        code = main(["run", "--config", str(path), "--backup-dir", str(tmp_path / "b"),
                     "--log-format", "json"], env=_env())
        foreign = _shown_foreign(fleet)
    assert code == ExitCode.AUTH
    assert foreign["acme"] and not foreign["globex"] and not foreign["initech"]
    del capsys


def test_demo_fleet_themes_three_spaces_by_two_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["demo", "--fleet", "--count", "60", "--no-faults", "--log-format", "json",
                 "--backup-dir", str(tmp_path / "b")])
    events = json_events(capsys.readouterr().out)
    assert code == ExitCode.OK
    (summary,) = [e for e in events if e["event"] == "fleet.summary"]
    assert set(summary["targets"]) == {"acme", "globex", "initech"}
    assert summary["totals"]["listed"] == 180
    assert summary["totals"]["updated"] + summary["totals"]["unchanged"] == 180
    rules = {e["rule"] for e in events if e["event"].startswith("conference.")}
    assert rules == {"sales", "everyone-else"}
    assert sorted(p.parent.name for p in (tmp_path / "b").rglob("*.jsonl")) == [
        "acme", "globex", "initech"]


def test_shards_take_their_slice_of_every_target_at_its_own_rate_over_the_count() -> None:
    from worker.fleet import parse_fleet, plan_runs

    raw = {"theme": BRAND, "rate_limit": 800, "targets": [
        {"name": name, "space": f"{name}.signalwire.com",
         "project_id_env": f"{name.upper()}_PROJECT_ID",
         "token_env": f"{name.upper()}_API_TOKEN",
         **({"rate_limit": 400} if name == "globex" else {})} for name in NAMES]}
    runs = plan_runs(parse_fleet(raw), _env(), {"shard": "1/4"})
    assert {r.name: (r.settings.shard.index if r.settings.shard else None,
                     r.settings.rate_limit) for r in runs} == {
        "acme": (1, 200.0), "globex": (1, 100.0), "initech": (1, 200.0)}
    assert {r.name: r.settings.backup_dir.name for r in runs} == {n: n for n in NAMES}


def test_rebrand_sandbox_serves_a_fleet_from_one_process(tmp_path: Path) -> None:
    """`rebrand sandbox --spaces 3`: three ready lines, three Spaces, each accepting only
    its own credentials."""
    import base64
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with subprocess.Popen(
        [sys.executable, "-m", "worker", "sandbox", "--spaces", "3", "--port", "0",
         "--count", "5", "--no-validate"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        cwd=tmp_path) as process:
        try:
            assert process.stdout is not None
            ready = [json.loads(process.stdout.readline()) for _ in range(3)]
            assert [r["space"] for r in ready] == ["space-1", "space-2", "space-3"]
            assert len({r["url"] for r in ready}) == 3
            assert len({r["api_token"] for r in ready}) == 3

            def status(url: str, project: str, token: str) -> int:
                header = base64.b64encode(f"{project}:{token}".encode()).decode()
                request = urllib.request.Request(f"{url}/api/video/conferences",  # noqa: S310
                                                 headers={"Authorization": f"Basic {header}"})
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                        return int(answer.status)
                except urllib.error.HTTPError as exc:
                    return exc.code

            for mine in ready:
                for theirs in ready:
                    expected = 200 if mine is theirs else 401
                    assert status(mine["url"], theirs["project_id"], theirs["api_token"]) == expected
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def test_another_targets_credentials_in_an_answer_are_used_for_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A Space whose data holds another target's token (pasted into a description, or a
    server playing games) is treated as one holding its own: nothing from that answer is
    journalled or sent back, and the token is in no output. The other targets finish."""
    globex_token = _credentials("globex")[1]
    with fleet_in_thread(count=20) as fleet:
        leaked = next(iter(fleet["acme"].space.conferences.values()))
        leaked["description"] = f"ask globex: {globex_token}"
        code = main(["run", "--config", str(_config(tmp_path, fleet)), "--backup-dir",
                     str(tmp_path / "backups"), "--log-format", "json"], env=_env())
        acme_puts = fleet["acme"].space.put_count
        globex_themed = all(_wears(c, BRAND) for c in fleet["globex"].space.conferences.values())
    captured = capsys.readouterr()
    (summary,) = [e for e in json_events(captured.out) if e["event"] == "fleet.summary"]
    assert summary["targets"]["acme"]["exit_code"] == ExitCode.ABORTED
    assert code == ExitCode.ABORTED and summary["cause"] == "acme"
    assert acme_puts == 0 and globex_themed
    assert summary["targets"]["globex"]["exit_code"] == ExitCode.OK
    for path in (tmp_path / "backups").rglob("*"):
        if path.is_file():
            assert globex_token not in path.read_text(encoding="utf-8"), path
    assert globex_token not in captured.out + captured.err


def test_two_targets_on_one_space_and_project_are_bad_input_whatever_their_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Two targets naming the same Space, their variables spelt differently but holding the
    same project: two pipelines would write (and journal) the same conferences. Refused
    before any request to any target, naming both."""
    with fleet_in_thread(count=10) as fleet:
        path = _config(tmp_path, fleet)
        raw = yaml.safe_load(path.read_text())
        raw["targets"][1]["space"] = fleet["acme"].url + "/"
        raw["targets"][1]["project_id_env"] = "ACME_AGAIN_PROJECT_ID"
        raw["targets"][1]["token_env"] = "ACME_AGAIN_API_TOKEN"
        path.write_text(json.dumps(raw))
        env = {**_env(), "ACME_AGAIN_PROJECT_ID": _credentials("acme")[0],
               "ACME_AGAIN_API_TOKEN": _credentials("acme")[1]}
        code = main(["run", "--config", str(path), "--backup-dir", str(tmp_path / "b")],
                    env=env)
        seen = sum(len(fleet[n].space.requests) for n in NAMES)
    err = capsys.readouterr().err
    assert code == ExitCode.BAD_INPUT
    assert "targets.globex" in err and "acme" in err and "same Space and project" in err
    assert seen == 0


def test_a_fleet_that_reaches_its_deadline_exits_5_as_its_cronjob_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The fleet CronJob fails the Job at once on exit 5 (a retry would have no time
    left); a fleet whose targets stopped at `--deadline` must say 5, not 4. Every target
    still ends with its summary and journal, and the progress made is kept."""
    slow = {name: {"latency_s": 0.05} for name in NAMES}
    with fleet_in_thread(count=40, **slow) as fleet:
        path = _config(tmp_path, fleet, max_parallel_targets=1, concurrency=2)
        code = main(["run", "--config", str(path), "--backup-dir", str(tmp_path / "b"),
                     "--log-format", "json", "--deadline", "1"], env=_env())
        puts = {name: fleet[name].space.put_count for name in NAMES}
    captured = capsys.readouterr()
    events = json_events(captured.out)
    (summary,) = [e for e in events if e["event"] == "fleet.summary"]
    assert code == ExitCode.DEADLINE, captured.err
    assert summary["exit_code"] == ExitCode.DEADLINE and summary["cause"] == "acme"
    assert {n: t["exit_code"] for n, t in summary["targets"].items()} == dict.fromkeys(
        NAMES, ExitCode.DEADLINE)
    assert 0 < puts["acme"] < 40
    assert sorted(e["target"] for e in events if e["event"] == "run.summary") == sorted(NAMES)
    for name in NAMES:
        assert len(list((tmp_path / "b" / name).glob("*.jsonl"))) == 1


def test_a_next_link_to_another_targets_space_is_refused_and_carries_nothing_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """acme's listing links on to globex's Space (same host, another port): acme stops
    (exit 4) before any request goes there; globex sees only its own credentials and
    finishes; the fleet exits 4 naming acme."""
    from contextlib import AsyncExitStack, asynccontextmanager

    from worker.sandbox.server import serve

    @asynccontextmanager
    async def linked() -> Any:
        async with AsyncExitStack() as stack:
            running = {}
            for i, name in enumerate(("globex", "initech", "acme")):
                project, token = _credentials(name)
                links = {"links_base": running["globex"].url} if name == "acme" else {}
                running[name] = await stack.enter_async_context(serve(SandboxConfig(
                    count=30, seed=i + 1, project_id=project, api_token=token,
                    on_theme_fraction=0.0, **links)))
            yield running

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
            linked()) as fleet:
        code = main(["run", "--config", str(_config(tmp_path, fleet, page_size=10)),
                     "--backup-dir", str(tmp_path / "b"), "--log-format", "json"], env=_env())
        acme_requests = list(fleet["acme"].space.requests)
        foreign = _shown_foreign(fleet)
    summary = next(e for e in json_events(capsys.readouterr().out)
                   if e["event"] == "fleet.summary")
    assert code == ExitCode.ABORTED and summary["cause"] == "acme"
    assert {n: t["exit_code"] for n, t in summary["targets"].items()} == {
        "acme": 4, "globex": 0, "initech": 0}
    assert [method for method, _ in acme_requests] == ["GET"]  # the first page only
    assert foreign == {name: [] for name in NAMES}


def test_an_unreachable_target_aborts_alone_and_the_fleet_restores_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """globex's Space is down (nothing listens on its port): globex exits 4 with its own
    summary and journal, the others are themed, the fleet exits 4 naming globex, and
    restoring the backup directory puts the others back with their own credentials."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with fleet_in_thread(count=30) as fleet:
        before = {n: {cid: dict(c) for cid, c in fleet[n].space.conferences.items()}
                  for n in NAMES}
        path = _config(tmp_path, fleet, retry={**FAST_RETRY, "max_attempts": 2})
        raw = yaml.safe_load(path.read_text())
        raw["targets"][1]["space"] = f"http://127.0.0.1:{closed}"
        path.write_text(json.dumps(raw))
        code = main(["run", "--config", str(path), "--backup-dir", str(tmp_path / "b"),
                     "--log-format", "json"], env=_env())
        themed = {n: all(_wears(c, BRAND) for c in fleet[n].space.conferences.values())
                  for n in ("acme", "initech")}
        events = json_events(capsys.readouterr().out)
        undone = main(["restore", "--config", str(path), str(tmp_path / "b"),
                       "--backup-dir", str(tmp_path / "u"), "--log-format", "json"],
                      env=_env())
        after = {n: fleet[n].space.conferences for n in NAMES}
        foreign = _shown_foreign(fleet)
    (summary,) = [e for e in events if e["event"] == "fleet.summary"]
    assert code == ExitCode.ABORTED and summary["cause"] == "globex"
    assert {n: t["exit_code"] for n, t in summary["targets"].items()} == {
        "acme": 0, "globex": 4, "initech": 0}
    assert sorted(e["target"] for e in events if e["event"] == "run.summary") == sorted(NAMES)
    assert themed == {"acme": True, "initech": True}
    assert all(len(list((tmp_path / "b" / n).glob("*.jsonl"))) == 1 for n in NAMES)
    assert undone == ExitCode.OK
    for name in ("acme", "initech"):
        for cid, old in before[name].items():
            assert after[name][cid]["light_primary"] == old["light_primary"]
    assert foreign == {name: [] for name in NAMES}


def test_a_signal_starts_no_target_that_was_waiting_for_its_turn(tmp_path: Path) -> None:
    """One target at a time; SIGTERM as the first target's Space applies its 3rd PUT. The
    first drains; the others, still waiting their turn, start nothing: no journal of theirs
    (it would be the newest, the one `restore --latest` takes), no request, each with a
    summary that says it was stopped."""
    pid: list[int] = []
    puts = [0]

    def signal_at_the_third(_space: Any, _cid: str, _body: Any) -> None:
        puts[0] += 1
        if puts[0] == 3:
            os.kill(pid[0], signal.SIGTERM)

    with fleet_in_thread(count=30) as fleet:
        fleet["acme"].space.before_put = signal_at_the_third
        config = _config(tmp_path, fleet, max_parallel_targets=1)
        with subprocess.Popen(
                [sys.executable, "-m", "worker", "run", "--config", str(config),
                 "--log-format", "json", "--backup-dir", str(tmp_path / "b")],
                env=clean_env(**_env()), cwd=REPO, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE) as proc:
            pid.append(proc.pid)
            out, _ = proc.communicate(timeout=60)
        fleet["acme"].space.before_put = None
        waited = {name: list(fleet[name].space.requests) for name in NAMES[1:]}
    assert proc.returncode == ExitCode.SIGTERM
    events = json_events(out.decode())
    summary = events[-1]
    assert summary["event"] == "fleet.summary"
    assert summary["targets"]["acme"]["updated"] >= 3
    assert waited == {name: [] for name in NAMES[1:]}
    for name in NAMES[1:]:
        assert not list((tmp_path / "b" / name).glob("*.jsonl")), name
        assert summary["targets"][name]["journal"] is None
        assert summary["targets"][name]["stopped"] == "terminated (SIGTERM)"
        assert summary["targets"][name]["exit_code"] == ExitCode.SIGTERM


def test_a_signal_that_leaves_no_target_anything_undone_stops_nothing(tmp_path: Path) -> None:
    """SIGTERM as the fleet's last PUT reaches its Space: every target has listed all its
    conferences and started them, and that write finishes within the grace. Nothing was
    left undone anywhere, so the signal stopped nothing, as for one Space: the targets'
    outcomes decide (0), and the report's exit code and cause say the same."""
    pid: list[int] = []
    puts = [0]

    def signal_at_the_last(_space: Any, _cid: str, _body: Any) -> None:
        puts[0] += 1
        if puts[0] == 2 * len(NAMES):
            os.kill(pid[0], signal.SIGTERM)
            time.sleep(0.5)  # the answer comes after the signal has been taken

    report = tmp_path / "report.json"
    with fleet_in_thread(count=2) as fleet:
        for name in NAMES:
            fleet[name].space.before_put = signal_at_the_last
        with subprocess.Popen(
                [sys.executable, "-m", "worker", "run", "--config", str(_config(tmp_path, fleet)),
                 "--log-format", "json", "--backup-dir", str(tmp_path / "b"),
                 "--report", str(report)],
                env=clean_env(**_env()), cwd=REPO, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            pid.append(proc.pid)
            out, err = proc.communicate(timeout=60)
        for name in NAMES:
            fleet[name].space.before_put = None
    assert puts[0] == 2 * len(NAMES)
    events = json_events(out.decode())
    summary = events[-1]
    assert summary["event"] == "fleet.summary"
    assert {n: (t["updated"], t["stopped"], t["exit_code"])
            for n, t in summary["targets"].items()} == dict.fromkeys(NAMES, (2, None, 0))
    assert (summary["exit_code"], summary["cause"]) == (0, None)
    document = json.loads(report.read_text(encoding="utf-8"))
    assert (document["exit_code"], document["cause"]) == (0, None)
    assert proc.returncode == 0, err.decode()


def test_a_target_run_alone_still_watches_for_the_other_targets_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`--target acme` runs acme only, but globex's token is still globex's: an acme
    answer holding it is used for nothing, as in a run of the whole fleet."""
    globex_token = _credentials("globex")[1]
    with fleet_in_thread(count=10) as fleet:
        leaked = next(iter(fleet["acme"].space.conferences.values()))
        leaked["description"] = f"ask globex: {globex_token}"
        code = main(["run", "--config", str(_config(tmp_path, fleet)), "--target", "acme",
                     "--backup-dir", str(tmp_path / "backups"), "--log-format", "json"],
                    env=_env())
        acme_puts = fleet["acme"].space.put_count
    captured = capsys.readouterr()
    assert code == ExitCode.ABORTED and acme_puts == 0
    for path in (tmp_path / "backups").rglob("*"):
        if path.is_file():
            assert globex_token not in path.read_text(encoding="utf-8"), path
    assert globex_token not in captured.out + captured.err
