"""The command line as a user runs it: a real process against a sandbox Space on loopback,
judged by its exit code, its output, and what the Space saw."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support import (
    FAST_RETRY,
    REPO,
    SANDBOX_CREDENTIALS,
    Ran,
    SandboxFactory,
    clean_env,
    rebrand,
    sandbox_env,
    serve_app,
    trap_app,
    write_config,
)

pytestmark = pytest.mark.anyio

SECRET = "PT-cli-secret-0f9e8d7c6b5a"


# Bad input: exit 2, nothing sent


BAD_INPUTS: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    # name: (config overrides, environment changes, what stderr must name)
    "unknown key": ({"colour": "blue"}, {}, "colour: unknown key"),
    "unknown retry key": ({"retry": {"tries": 3}}, {}, "retry.tries"),
    "bad color": ({"theme": {"light": {"primary": "#12345"}}}, {}, "theme.light.primary"),
    "credentials in file": ({"api_token": SECRET, "project_id": "p"}, {}, "credentials"),
    "numeric bound": ({"page_size": 5000}, {}, "page_size"),
    "a time past the calendar edge": ({"select": {"starts_after": "9999-12-31T23:59:59-01:00"}},
                                      {}, "select.starts_after: 9999-12-31T23:59:59-01:00 is "
                                          "outside the times UTC can hold"),
    "a host name that is not one": ({}, {"SIGNALWIRE_SPACE": "a..example.com",
                                         "REBRAND_ALLOW_SPACE_HOST": "a..example.com"},
                                    "REBRAND_ALLOW_SPACE_HOST: a..example.com"),
    "a Space label too long": ({}, {"SIGNALWIRE_SPACE": "a" * 64 + ".signalwire.com"},
                               "SIGNALWIRE_SPACE: "),
    "plain http elsewhere": ({}, {"SIGNALWIRE_SPACE": "http://example.com"}, "SIGNALWIRE_SPACE"),
    "missing credentials": ({}, {"SIGNALWIRE_API_TOKEN": ""}, "SIGNALWIRE_API_TOKEN"),
    "token and token file": ({}, {"SIGNALWIRE_API_TOKEN_FILE": "{tmp}/token"},
                             "SIGNALWIRE_API_TOKEN_FILE"),
    "unreadable token file": ({}, {"SIGNALWIRE_API_TOKEN": "",
                                   "SIGNALWIRE_API_TOKEN_FILE": "/nonexistent/token"},
                              "SIGNALWIRE_API_TOKEN_FILE"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_exits_2_names_the_key_and_sends_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path, case: str
) -> None:
    overrides, env_changes, named = BAD_INPUTS[case]
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url, **overrides)
        (tmp_path / "token").write_text("from-a-file", encoding="utf-8")
        env = {k: v.replace("{tmp}", str(tmp_path))
               for k, v in sandbox_env(**env_changes).items() if v != ""}
        ran = await rebrand("run", "--config", config, "--log-format", "json",
                            "--backup-dir", tmp_path / "backups", env=env)
        seen = list(sb.space.requests)
    assert ran.code == 2, ran.err
    assert named in ran.err
    assert ran.err.startswith("rebrand: error: ")
    assert seen == []
    assert SECRET not in ran.out + ran.err
    assert SANDBOX_CREDENTIALS.api_token not in ran.out + ran.err


# Credentials in errors: a distinctive token, of which no 6-character piece may be shown.
TOKEN = "PTq7Zk2Wm9Xv4Rb8Nc3Ld6Hf"
CREDENTIAL_INPUTS: dict[str, tuple[dict[str, str], bytes | None, str]] = {
    # name: (environment changes, the token file's bytes, what stderr must name)
    "token too long": ({"SIGNALWIRE_API_TOKEN": TOKEN * 5000}, None,
                       "SIGNALWIRE_API_TOKEN: 120,000 characters"),
    "token with a line break": ({"SIGNALWIRE_API_TOKEN": TOKEN + "\n" + TOKEN}, None,
                                "SIGNALWIRE_API_TOKEN: holds control characters"),
    "token too short": ({"SIGNALWIRE_API_TOKEN": TOKEN[:7]}, None, "only 7 characters"),
    "token of one character": ({"SIGNALWIRE_API_TOKEN": "x"}, None,
                               "SIGNALWIRE_API_TOKEN: only 1 character;"),
    # Named where it came from: the variable is not where to look.
    "token file with a short token": ({"SIGNALWIRE_API_TOKEN": "",
                                       "SIGNALWIRE_API_TOKEN_FILE": "{tmp}/token"},
                                      TOKEN[:5].encode(),
                                      "SIGNALWIRE_API_TOKEN_FILE {tmp}/token: only 5 characters"),
    "token and token file": ({"SIGNALWIRE_API_TOKEN": TOKEN,
                              "SIGNALWIRE_API_TOKEN_FILE": "{tmp}/token"}, TOKEN.encode(),
                             "are both set"),
    "the token pasted into the file variable": (
        {"SIGNALWIRE_API_TOKEN": "", "SIGNALWIRE_API_TOKEN_FILE": TOKEN}, None,
        "SIGNALWIRE_API_TOKEN_FILE: cannot read"),
    "token file with two lines": ({"SIGNALWIRE_API_TOKEN": "",
                                   "SIGNALWIRE_API_TOKEN_FILE": "{tmp}/token"},
                                  f"{TOKEN}\n{TOKEN}\n".encode(), "control characters"),
    "token file too long": ({"SIGNALWIRE_API_TOKEN": "",
                             "SIGNALWIRE_API_TOKEN_FILE": "{tmp}/token"},
                            TOKEN.encode() * 500, "more than 4096 bytes"),
    "token file not UTF-8": ({"SIGNALWIRE_API_TOKEN": "",
                              "SIGNALWIRE_API_TOKEN_FILE": "{tmp}/token"},
                             TOKEN.encode() + b"\xff", "not UTF-8"),
    "project id too long": ({"SIGNALWIRE_PROJECT_ID": "P" * 120_000,
                             "SIGNALWIRE_API_TOKEN": TOKEN}, None,
                            "SIGNALWIRE_PROJECT_ID: 120,000 characters"),
    "project id with a colon": ({"SIGNALWIRE_PROJECT_ID": "p:" + TOKEN,
                                 "SIGNALWIRE_API_TOKEN": TOKEN}, None,
                                "SIGNALWIRE_PROJECT_ID: holds ':'"),
    "project id with a line break": ({"SIGNALWIRE_PROJECT_ID": "p\nq",
                                      "SIGNALWIRE_API_TOKEN": TOKEN}, None,
                                     "SIGNALWIRE_PROJECT_ID: holds control characters"),
}


def _pieces(secret: str, width: int = 6) -> set[str]:
    return {secret[i:i + width] for i in range(len(secret) - width + 1)}


@pytest.mark.parametrize("case", list(CREDENTIAL_INPUTS))
async def test_a_bad_credential_is_exit_2_and_no_piece_of_the_token_is_shown(
    sandbox_factory: SandboxFactory, tmp_path: Path, case: str
) -> None:
    env_changes, token_file, named = CREDENTIAL_INPUTS[case]
    if token_file is not None:
        (tmp_path / "token").write_bytes(token_file)
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        env = {k: v.replace("{tmp}", str(tmp_path))
               for k, v in sandbox_env(**env_changes).items() if v != ""}
        runs = [await rebrand(*command, "--config", config, env=env)
                for command in (("validate",), ("run", "--backup-dir", tmp_path / "b"))]
        seen = list(sb.space.requests)
    assert seen == []
    for ran in runs:
        assert ran.code == 2, ran.err
        assert named.replace("{tmp}", str(tmp_path)) in ran.err
        assert "Traceback" not in ran.err
        assert len(ran.err) < 1000
        shown = ran.out + ran.err
        assert not [piece for piece in _pieces(TOKEN) if piece in shown]


async def test_an_unquoted_color_exits_2_before_anything_is_sent(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=5) as sb:
        config = tmp_path / "rebrand.yaml"
        config.write_text(f"space: {sb.url}\ntheme:\n  light:\n    primary: #0A84FF\n",
                          encoding="utf-8")
        ran = await rebrand("run", "--config", config, env=sandbox_env())
        seen = list(sb.space.requests)
    assert ran.code == 2
    assert "theme.light.primary" in ran.err and "quote it" in ran.err
    assert seen == []


async def test_a_usage_error_exits_2(tmp_path: Path) -> None:
    ran = await rebrand("run", "--no-such-flag", env=clean_env())
    assert ran.code == 2
    assert "rebrand: error:" in ran.err


async def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    ran = await rebrand("run", "--config", tmp_path / "absent.yaml", env=sandbox_env())
    assert ran.code == 2
    assert "--config" in ran.err


# Runs


async def test_json_log_format_is_json_lines_and_the_run_exits_0(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=25, on_theme_fraction=0.2) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--log-format", "json",
                            "--backup-dir", tmp_path / "backups", env=sandbox_env())
        applied = sb.space.puts_applied
    assert ran.code == 0, ran.err
    events = ran.events()  # every line parses
    assert all({"event", "level", "timestamp"} <= set(e) for e in events)
    per_conference = [e for e in events if e["event"].startswith("conference.")]
    assert len(per_conference) == 25
    summary = ran.summary()
    assert summary["listed"] == 25
    assert summary["updated"] == applied > 0
    assert list(Path(tmp_path / "backups").glob("*.jsonl"))


async def test_console_log_format_is_for_people(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--log-format", "console",
                            "--backup-dir", tmp_path / "backups", env=sandbox_env())
    assert ran.code == 0, ran.err
    assert "Re-themed" in ran.out and "rebrand restore --space" in ran.out
    assert not ran.out.lstrip().startswith("{")
    assert "\x1b[" not in ran.out  # stdout is not a terminal: no color


async def test_auto_log_format_is_json_when_stdout_is_not_a_terminal(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            env=sandbox_env())
    assert ran.code == 0, ran.err
    assert ran.summary()["listed"] == 5


async def test_flags_given_beside_the_same_config_keys_run(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """--concurrency beside the config's `concurrency` (how the benchmark runs it)."""
    async with sandbox_factory(count=5) as sb:
        config = write_config(tmp_path, sb.url, concurrency=8)
        ran = await rebrand("run", "--config", config, "--concurrency", "2", "--backup-dir",
                            tmp_path / "b", "--grace-seconds", "5", "--max-failures", "3",
                            env=sandbox_env())
    assert ran.code == 0, ran.err
    assert ran.summary()["listed"] == 5


async def test_some_failed_conferences_exit_1(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=10, on_theme_fraction=0.0) as sb:
        bad = next(iter(sb.space.conferences))
        # The API would refuse it (422): it fails before its PUT is sent.
        sb.space.conferences[bad]["display_name"] = "z" * 250
        config = write_config(tmp_path, sb.url)
        report = tmp_path / "report.json"
        ran = await rebrand("run", "--config", config, "--log-format", "json", "--report",
                            report, "--backup-dir", tmp_path / "b", env=sandbox_env())
    assert ran.code == 1, ran.err
    failed = [e for e in ran.events() if e["event"] == "conference.failed"]
    assert [e["conference_id"] for e in failed] == [bad]
    document = json.loads(report.read_text(encoding="utf-8"))
    assert document["exit_code"] == 1
    assert [f["conference_id"] for f in document["failures"]] == [bad]
    assert "display_name: is 250 characters long" in document["failures"][0]["errors"][0]
    assert document["summary"]["updated"] == 9


async def test_refused_credentials_exit_3_after_one_request(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=10) as sb:
        config = write_config(tmp_path, sb.url)
        ran = await rebrand("run", "--config", config, "--log-format", "json",
                            "--backup-dir", tmp_path / "b",
                            env=sandbox_env(SIGNALWIRE_API_TOKEN=SECRET))
        seen = list(sb.space.requests)
    assert ran.code == 3, ran.err
    assert len(seen) == 1
    assert sb.space.put_count == 0
    aborted = [e for e in ran.events() if e["event"] == "run.aborted"]
    assert aborted and aborted[0]["exit_code"] == 3
    assert SECRET not in ran.out + ran.err


async def test_a_foreign_next_link_exits_4_and_the_trap_sees_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    trapped: list[str] = []
    async with serve_app(trap_app(trapped)) as trap, sandbox_factory(
        count=12, links_base=trap
    ) as sb:
        config = write_config(tmp_path, sb.url, page_size=5)
        ran = await rebrand("run", "--config", config, "--log-format", "json",
                            "--backup-dir", tmp_path / "b", env=sandbox_env())
    assert ran.code == 4, ran.err
    assert trapped == []
    aborted = [e for e in ran.events() if e["event"] == "run.aborted"]
    assert aborted and "links.next" in aborted[0]["error"]


async def test_an_unreachable_space_exits_4(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = write_config(tmp_path, f"http://127.0.0.1:{port}",
                          retry={**FAST_RETRY, "max_attempts": 2})
    ran = await rebrand("run", "--config", config, "--log-format", "json",
                        "--backup-dir", tmp_path / "b", env=sandbox_env())
    assert ran.code == 4, ran.err


# Secrets


async def test_the_token_never_appears_in_any_output(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    from worker.sandbox import FaultConfig

    faults = FaultConfig(error_500=0.2, drop_after_apply=0.1)
    token_file = tmp_path / "token"
    token_file.write_text(SANDBOX_CREDENTIALS.api_token + "\n", encoding="utf-8")
    async with sandbox_factory(count=15, faults=faults, on_theme_fraction=0.0) as sb:
        sb.space.conferences[next(iter(sb.space.conferences))]["display_name"] = "q" * 201
        config = write_config(tmp_path, sb.url)
        good = await rebrand("run", "--config", config, "--log-format", "json",
                             "--report", tmp_path / "good.json", "--backup-dir", tmp_path / "b",
                             env=clean_env(SIGNALWIRE_PROJECT_ID=SANDBOX_CREDENTIALS.project_id,
                                           SIGNALWIRE_API_TOKEN_FILE=str(token_file)))
        refused = await rebrand("run", "--config", config, "--log-format", "console",
                                "--report", tmp_path / "refused.json",
                                "--backup-dir", tmp_path / "b",
                                env=sandbox_env(SIGNALWIRE_API_TOKEN=SECRET))
    assert (good.code, refused.code) == (1, 3)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != token_file]
    assert any(p.suffix == ".jsonl" for p in files)
    assert {p.name for p in files} >= {"good.json", "refused.json"}
    texts = [good.out, good.err, refused.out, refused.err,
             *(p.read_text(encoding="utf-8") for p in files)]
    from worker.credentials import Credentials

    refused_creds = Credentials(SANDBOX_CREDENTIALS.project_id, SECRET)
    for secret in (*SANDBOX_CREDENTIALS.secrets, *refused_creds.secrets):
        for text in texts:
            assert secret not in text


async def test_validate_checks_offline_and_does_not_print_the_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, "example.signalwire.com")
    ran = await rebrand("validate", "--config", config, env=sandbox_env(
        SIGNALWIRE_API_TOKEN=SECRET))
    assert ran.code == 0, ran.err
    assert "is valid" in ran.out
    assert SECRET not in ran.out + ran.err


# The demo and the entry points


async def test_demo_exits_0_with_a_summary_line(tmp_path: Path) -> None:
    ran = await rebrand("demo", "--count", "60", "--log-format", "json",
                        "--backup-dir", tmp_path / "b", env=clean_env())
    assert ran.code == 0, ran.err
    summary = ran.summary()
    assert summary["listed"] == 60
    assert summary["failed"] == 0
    assert summary["updated"] + summary["unchanged"] == 60


async def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "rebrand"
    if not script.exists():
        pytest.skip("no console script beside this interpreter")
    process = await anyio.run_process([str(script), "--version"], check=False)
    assert process.returncode == 0
    assert process.stdout.decode().startswith("rebrand ")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
async def test_a_signal_stops_the_run_cleanly_with_its_exit_code(
    sandbox_factory: SandboxFactory, tmp_path: Path, signum: int, code: int
) -> None:
    async with sandbox_factory(count=200, latency_s=0.02, on_theme_fraction=0.0) as sb:
        config = write_config(tmp_path, sb.url, concurrency=2, page_size=20)
        writing = anyio.Event()
        sb.space.before_put = lambda space, _cid, _body: (
            writing.set() if space.puts_applied >= 2 else None)
        process = await anyio.open_process(
            [sys.executable, "-m", "worker", "run", "--config", str(config), "--log-format",
             "json", "--backup-dir", str(tmp_path / "b"), "--grace-seconds", "5"],
            env=sandbox_env(), cwd=REPO)
        async with process:
            with anyio.fail_after(20):
                await writing.wait()
                process.send_signal(signum)
                out = b""
                assert process.stdout is not None
                async for chunk in process.stdout:
                    out += chunk
                await process.wait()
        puts_at_exit = sb.space.put_count
        await anyio.sleep(0.1)
        assert sb.space.put_count == puts_at_exit
    assert process.returncode == code
    ran = Ran(code, out.decode(), "")
    summary = ran.summary()
    assert summary["stopped"] is not None
    assert 0 < summary["updated"] < 200
    assert summary["updated"] == sb.space.puts_applied
