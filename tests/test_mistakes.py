"""The five commonest mistakes, made through the real CLI at a terminal: each gets a
message of one or two lines that says what to change, and no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import BRAND, SANDBOX_ENV, sandbox_in_thread, write_config
from tests.terminal import rows, run_on_terminal, screen_lines

# Quick retries, so a Space that cannot be reached is given up on in a moment.
FAST = {"retry": {"max_attempts": 2, "backoff_base_s": 0.01, "backoff_cap_s": 0.02}}


def _said(output: str, start: str) -> str:
    """The one message that starts with `start`, checked to fit in two terminal rows."""
    lines = [line for line in screen_lines(output) if start in line]
    assert len(lines) == 1, output
    assert rows(lines) <= 2, lines[0]
    assert "Traceback" not in output, output
    return lines[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_missing_credentials_name_the_variables_to_set(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    run = run_on_terminal(["run", "--config", str(config)], {})
    assert run.code == 2
    message = _said(run.output, "rebrand: error:")
    assert "missing credentials" in message
    assert "SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN" in message


@pytest.mark.parametrize(("key", "meant"), [("concurency", "concurrency"),
                                            ("rate_limt", "rate_limit"),
                                            ("theme.light.primay", "primary"),
                                            ("select.exlude", "exclude")])
def test_a_typo_in_a_config_key_suggests_the_nearest_key(tmp_path: Path, key: str,
                                                          meant: str) -> None:
    extra: dict[str, object] = {key: 8}
    if key.startswith("theme."):
        light = {("primay" if role == "primary" else role): color
                 for role, color in BRAND["light"].items()}
        extra = {"theme": {"light": light}}
    elif key.startswith("select."):
        extra = {"select": {"exlude": ["*-legacy"]}}
    config = write_config(tmp_path, "http://127.0.0.1:9", **extra)
    run = run_on_terminal(["run", "--config", str(config)], SANDBOX_ENV)
    assert run.code == 2
    message = _said(run.output, "rebrand: error:")
    assert f"{key}: unknown" in message
    assert f"did you mean `{meant}`?" in message


@pytest.mark.parametrize(("value", "advice"), [
    ("#12345", 'write # and six hex digits, quoted in YAML, e.g. "#0A84FF"'),
    ("#fff", 'write all six digits, "#FFFFFF"'),
    ("0a84ff", 'it needs its #: write "#0A84FF"'),
    ("blue", "is not a #RRGGBB color"),
])
def test_a_color_not_in_rrggbb_says_how_to_write_it(tmp_path: Path, value: str,
                                                     advice: str) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9")
    config.write_text(config.read_text().replace("'#0A84FF'", repr(value), 1),
                      encoding="utf-8")
    run = run_on_terminal(["validate", "--config", str(config)], SANDBOX_ENV)
    assert run.code == 2
    message = _said(run.output, "rebrand: error:")
    assert message.startswith("rebrand: error: theme.dark.primary:") or \
        message.startswith("rebrand: error: theme.light.primary:"), message
    assert advice in message


def test_an_unreachable_space_names_the_host_and_says_dns_failed(tmp_path: Path) -> None:
    config = write_config(tmp_path, "https://rebrand-test.invalid", **FAST)
    # A name that can never resolve (RFC 6761), allowed as a Space host on purpose.
    run = run_on_terminal(["run", "--config", str(config)],
                          {**SANDBOX_ENV, "REBRAND_ALLOW_SPACE_HOST": "rebrand-test.invalid"})
    assert run.code == 4
    message = _said(run.output, "cannot reach the Space")
    assert "the DNS lookup of rebrand-test.invalid failed" in message


def test_an_unreachable_space_names_the_host_and_says_tcp_failed(tmp_path: Path) -> None:
    port = _free_port()
    config = write_config(tmp_path, f"http://127.0.0.1:{port}", **FAST)
    run = run_on_terminal(["run", "--config", str(config)], SANDBOX_ENV)
    assert run.code == 4
    message = _said(run.output, "cannot reach the Space")
    assert f"the TCP connection to 127.0.0.1:{port} failed (Connection refused)" in message


def test_an_unreachable_space_names_the_host_and_says_tls_failed(tmp_path: Path) -> None:
    with sandbox_in_thread(count=3) as sb:  # plain http: a TLS handshake with it fails
        port = sb.url.rsplit(":", 1)[1]
        config = write_config(tmp_path, f"https://127.0.0.1:{port}", **FAST)
        run = run_on_terminal(["run", "--config", str(config)], SANDBOX_ENV)
    assert run.code == 4
    message = _said(run.output, "cannot reach the Space")
    assert f"the TLS handshake with 127.0.0.1:{port} failed" in message


def test_refused_credentials_name_the_project_id_and_never_the_token(tmp_path: Path) -> None:
    token = "PT-not-the-sandbox-token-0123456789"
    with sandbox_in_thread(count=3) as sb:
        config = write_config(tmp_path, sb.url)
        run = run_on_terminal(["run", "--config", str(config)],
                              {"SIGNALWIRE_PROJECT_ID": "a1b2c3-project",
                               "SIGNALWIRE_API_TOKEN": token})
    assert run.code == 3
    message = _said(run.output, "refused")
    assert "project ID 'a1b2c3-project'" in message
    assert "127.0.0.1" in message
    assert token not in run.output
