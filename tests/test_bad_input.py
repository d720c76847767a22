"""Crafted input: every file, variable and flag a person (or a pull request) can hand
rebrand ends in exit 2 with a message naming the file and the problem, small and without a
traceback. The child processes' peak memory is measured (wait4), not their time: the
figures for time are printed by `python -m bench.bad_input`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import BRAND, REPO
from tests.test_cli import clean_env, sandbox_env
from worker.config import load_settings, parse_settings
from worker.credentials import load_credentials
from worker.errors import ConfigError
from worker.space import Space, parse_space

MEMORY_LIMIT_MB = 100
GOOD = yaml.safe_dump({"space": "example.signalwire.com", "theme": BRAND})


# A small parent between pytest and the child: Linux counts the parent's peak RSS at the
# fork in the child's ru_maxrss, and pytest's own is well above the limit being checked.
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_pid, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def validate(config: Path, env: dict[str, str], *flags: str) -> tuple[int, str, float]:
    """`rebrand validate` in a child: (exit code, stderr, peak RSS in MB)."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "worker",
                           "validate", "--config", str(config), *flags],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    code, peak_kb = done.stdout.split()
    return int(code), done.stderr, int(peak_kb) / 1024


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join(f'*a{i - 1}' for _ in range(9))}]" for i in range(1, 10)]
    return "\n".join(lines) + f"\n{GOOD}"


CONFIGS = {
    # name: (file text, what the message must say)
    "alias bomb": (_alias_bomb(), "aliases"),
    "one alias": ("space: &s example.signalwire.com\ntheme: {light: {primary: *s}}\n",
                  "aliases"),
    # YAML reads an unquoted glob that starts with `*` as an alias: say to quote it.
    "an unquoted glob": (GOOD + "select: {include: [*-sales]}\n",
                         'line 15, column 20: YAML aliases (*name) are not allowed in the '
                         'config, and *-sales reads as one: quote a glob that starts with '
                         '* ("*-sales")'),
    "an unquoted glob with a class": (GOOD + "select: {exclude: [[abc]-x]}\n",
                                      "quote a glob that starts with [ or {"),
    "deep nesting": ("x: " + "[" * 5000 + "]" * 5000 + "\n" + GOOD, "nested more than"),
    "deep mappings": ("x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n" + GOOD,
                      "nested more than"),
    "5,001-digit integer": (GOOD + "concurrency: " + "9" * 5001 + "\n", "5,001 characters"),
    "long float": (GOOD + "rate_limit: 1." + "5" * 5000 + "\n", "characters long"),
    "list as a key": ("? [a, b]\n: 1\n" + GOOD, "a key must be a plain word"),
    "mapping as a key": ("{? {a: 1} : 2}\n", "a key must be a plain word"),
    "NUL bytes": (GOOD + "\0\0\0", "NUL"),
    "a YAML tag for Python": (GOOD + "x: !!python/object/apply:os.system ['true']\n",
                              "line 15, column 4: the YAML tag !!python/object/apply:os.system "
                              "is not allowed"),
    "a list, not a mapping": ("- 1\n- 2\n", "must be a YAML mapping"),
    "binary where a color goes": (
        "space: example.signalwire.com\ntheme: {light: {primary: !!binary aGVsbG8=}}\n",
        "line 2, column 26: the YAML tag !!binary is not allowed"),
    "a date where a number goes": (GOOD + "concurrency: 2026-01-01\n", "concurrency"),
    # Scalars YAML cannot build: each is where the file says, with what to change.
    # A date is read as the text written: the key that takes it says what it must be.
    "a date that is not one": (GOOD + "queue_size: 2025-13-01\n",
                               "queue_size: '2025-13-01' is not a whole number"),
    "a timestamp out of range": (GOOD + "select: {starts_after: 2025-02-30 10:00:00Z}\n",
                                 "select.starts_after: '2025-02-30 10:00:00Z' is not a date"),
    "a date where the Space goes": (GOOD.replace("example.signalwire.com", "2025-01-01"),
                                    "space: 2025-01-01 is not a SignalWire Space"),
    "!!int on a word": (GOOD + "queue_size: !!int abc\n",
                        "line 15, column 13: abc cannot be read as !!int"),
    "!!float on a word": (GOOD + "rate_limit: !!float x\n",
                          "line 15, column 13: x cannot be read as !!float"),
    "!!set on a word": (GOOD + "queue_size: !!set abc\n",
                        "line 15, column 13: the YAML tag !!set is not allowed"),
    "!!map on a word": (GOOD + "queue_size: !!map abc\n", "line 15, column 13"),
    "!!binary, bad base64": (GOOD + "queue_size: !!binary a\n",
                             "the YAML tag !!binary is not allowed"),
    "a local tag": (GOOD + "queue_size: !mine 3\n", "the YAML tag !mine is not allowed"),
    "a long tag is cut": (GOOD + "queue_size: !" + "t" * 5000 + " 3\n", "the YAML tag !ttt"),
    "a date as a key": (GOOD + "2025-01-01: 1\n", "2025-01-01: unknown key"),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_a_crafted_config_is_exit_2_small_and_named(tmp_path: Path, case: str) -> None:
    text, said = CONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    code, err, peak_mb = validate(config, sandbox_env())
    assert code == 2, err
    assert said in err
    assert str(config) in err or "line " in err or said in err
    assert "Traceback" not in err
    assert len(err) < 1000
    assert peak_mb < MEMORY_LIMIT_MB


def test_a_huge_config_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(GOOD.encode() + b"# " + b"x" * (2 << 20) + b"\n")
    with pytest.raises(ConfigError, match=r"larger than 1 MiB"):
        load_settings(config, {})
    with pytest.raises(ConfigError, match=r"--config /dev/zero: larger than 1 MiB"):
        load_settings(Path("/dev/zero"), {})


@pytest.mark.parametrize(
    ("content", "said"),
    [(None, "not text (it holds NUL bytes)"),  # /dev/zero itself
     (b"x" * 5000, "holds more than 4096 bytes"),
     (b"\xff\xfe token", "not UTF-8 text"),
     (b"", "is empty"),
     (b"line-one-token\nline-two-token\n", "control characters or line breaks")],
)
def test_a_token_file_is_read_to_4_kib_and_must_be_text(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    path = Path("/dev/zero") if content is None else tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
    config = tmp_path / "config.yaml"
    config.write_text(GOOD, encoding="utf-8")
    env = clean_env(SIGNALWIRE_PROJECT_ID="p", SIGNALWIRE_API_TOKEN_FILE=str(path))
    code, err, peak_mb = validate(config, env)
    assert code == 2, err
    assert said in err
    assert "SIGNALWIRE_API_TOKEN_FILE" in err
    assert "Traceback" not in err
    assert peak_mb < MEMORY_LIMIT_MB


def test_a_token_with_a_line_break_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="SIGNALWIRE_API_TOKEN: holds control") as caught:
        load_credentials({"SIGNALWIRE_PROJECT_ID": "p",
                          "SIGNALWIRE_API_TOKEN": "secret-part\r\nX-Injected: 1"})
    assert "secret-part" not in str(caught.value)


# The Space must look like a Space


@pytest.mark.parametrize(
    "text",
    ["https://example.com", "evil.example.com", "https://signalwire.com.evil.net",
     "https://example.signalwire.com.evil.net", "https://a.b.signalwire.com",
     "https://10.0.0.5", "https://example-signalwire.com", "https://xsignalwire.com"],
)
def test_a_space_that_is_not_a_signalwire_host_or_loopback_is_refused(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"space": text, "theme": BRAND}, {})
    message = str(caught.value)
    host = parse_space(text, allow=frozenset({text.rsplit("//", maxsplit=1)[-1]})).host
    assert f"REBRAND_ALLOW_SPACE_HOST={host}" in message
    assert f"--allow-space-host {host}" in message


@pytest.mark.parametrize(
    ("text", "space"),
    [("example.signalwire.com", Space("https", "example.signalwire.com", 443)),
     ("https://My-Space.SignalWire.com", Space("https", "my-space.signalwire.com", 443)),
     ("http://127.0.0.1:8080", Space("http", "127.0.0.1", 8080)),
     ("https://localhost:8443", Space("https", "localhost", 8443))],
)
def test_signalwire_hosts_and_loopback_are_spaces(text: str, space: Space) -> None:
    assert parse_settings({"space": text, "theme": BRAND}, {}).space == space


def test_another_host_is_allowed_by_the_environment_or_the_flag_only(tmp_path: Path) -> None:
    raw = {"space": "https://proxy.example.net", "theme": BRAND}
    env = {"REBRAND_ALLOW_SPACE_HOST": "other.example.org, PROXY.example.net"}
    assert parse_settings(raw, env).space.host == "proxy.example.net"
    assert parse_settings(raw, {}, {"allow_space_host": ["proxy.example.net"]}).space.host \
        == "proxy.example.net"
    with pytest.raises(ConfigError, match="allow_space_host: unknown key"):
        parse_settings({**raw, "allow_space_host": "proxy.example.net"}, {})
    # Plain http stays loopback-only, allowed or not: the token would cross the network
    # in the clear.
    with pytest.raises(ConfigError, match="loopback"):
        parse_settings({"space": "http://proxy.example.net", "theme": BRAND}, env)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    code, err, _ = validate(config, sandbox_env())
    assert code == 2
    assert "proxy.example.net is not a SignalWire Space" in err
    code, err, _ = validate(config, sandbox_env(), "--allow-space-host", "proxy.example.net")
    assert code == 0, err


def measured(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    """Any rebrand command in a child: (exit code, stderr, peak RSS in MB)."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "worker",
                           *args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    code, peak_kb = done.stdout.split()
    return int(code), done.stderr, int(peak_kb) / 1024


@pytest.mark.parametrize(("journal", "said"),
                         [("/dev/zero", "line 1 is longer than 16 MiB"),
                          ("/", "cannot read it")])
def test_a_journal_that_is_not_one_is_exit_2_small(journal: str, said: str) -> None:
    env = sandbox_env(SIGNALWIRE_SPACE="http://127.0.0.1:9")
    code, err, peak_mb = measured(env, "restore", journal)
    assert code == 2, err
    assert f"journal {journal}" in err and said in err
    assert "Traceback" not in err
    assert peak_mb < MEMORY_LIMIT_MB


@pytest.mark.parametrize("flag", ["--report", "--summary-md", "--metrics-file"])
def test_an_output_that_is_a_device_is_refused_before_it_is_replaced(
    tmp_path: Path, flag: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(GOOD, encoding="utf-8")
    code, err, _ = measured(sandbox_env(), "plan", "--config", str(config), flag, "/dev/null")
    assert code == 2, err
    assert f"{flag} /dev/null: is not a regular file" in err
    assert Path("/dev/null").is_char_device()


def _quick(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a child that must end within seconds (a hang is the failure)."""
    return subprocess.run([sys.executable, "-m", "worker", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=10, check=False)


@pytest.mark.parametrize("given", ["--config", "SIGNALWIRE_API_TOKEN_FILE", "journal"])
def test_a_named_pipe_given_as_an_input_is_exit_2_at_once(tmp_path: Path, given: str) -> None:
    """open() on a FIFO waits for a writer: forever, when none comes."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    config = tmp_path / "config.yaml"
    config.write_text(GOOD, encoding="utf-8")
    if given == "--config":
        done = _quick("validate", "--config", str(fifo), env=sandbox_env())
    elif given == "journal":
        done = _quick("restore", str(fifo), env=sandbox_env(SIGNALWIRE_SPACE="http://127.0.0.1:9"))
    else:
        env = clean_env(SIGNALWIRE_PROJECT_ID="p", SIGNALWIRE_API_TOKEN_FILE=str(fifo))
        done = _quick("validate", "--config", str(config), env=env)
    assert done.returncode == 2, done.stderr
    assert f"{fifo}: is not a regular file" in done.stderr or \
        f"{fifo} is not a regular file" in done.stderr
    assert "Traceback" not in done.stderr


def test_inputs_behind_symlinks_are_read_as_kubernetes_mounts_them(tmp_path: Path) -> None:
    """A Secret or ConfigMap volume is symlinks (`..data/` -> a timestamped folder)."""
    data = tmp_path / "..2026_01_01"
    data.mkdir()
    (data / "token").write_text("PT" + "t" * 40 + "\n", encoding="utf-8")
    (data / "config.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "..data").symlink_to(data.name)
    for name in ("token", "config.yaml"):
        (tmp_path / name).symlink_to(f"..data/{name}")
    env = clean_env(SIGNALWIRE_PROJECT_ID="p", SIGNALWIRE_API_TOKEN_FILE=str(tmp_path / "token"))
    done = _quick("validate", "--config", str(tmp_path / "config.yaml"), env=env)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("flag", ["--report", "--summary-md", "--metrics-file", "--out"])
def test_an_output_that_is_a_named_pipe_is_exit_2_at_once(tmp_path: Path, flag: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    config = tmp_path / "config.yaml"
    config.write_text(GOOD, encoding="utf-8")
    command = "preview" if flag == "--out" else "plan"
    done = _quick(command, "--config", str(config), flag, str(fifo), env=sandbox_env())
    assert done.returncode == 2, done.stderr
    assert f"{flag} {fifo}: is not a regular file" in done.stderr
    assert "Traceback" not in done.stderr
