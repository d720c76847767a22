"""Configuration: every bad input is refused before anything is sent, by a message that
names the key and says what to change; credentials come from the environment only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import BRAND
from worker.config import load_settings, parse_settings
from worker.credentials import load_credentials
from worker.errors import ConfigError, ExitCode
from worker.retry import RetryPolicy
from worker.shard import Shard
from worker.space import Space

SECRET = "PT-0123456789abcdef-super-secret"


def raw_config(**overrides: Any) -> dict[str, Any]:
    return {"space": "example.signalwire.com", "theme": BRAND, **overrides}


def refused(raw: object, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, env or {})
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    return str(caught.value)


# The one merge: config file, then environment, then flags


def test_a_flag_given_wins_over_the_file_and_one_left_out_changes_nothing() -> None:
    raw = raw_config(concurrency=8, rate_limit=100)
    assert parse_settings(raw, {}, {"concurrency": 3}).concurrency == 3
    untouched = parse_settings(raw, {}, {"concurrency": None, "grace_s": None,
                                         "max_failures": None, "backup_dir": None})
    assert untouched == parse_settings(raw, {})
    assert (untouched.concurrency, untouched.grace_s, untouched.max_failures) == (8, 20.0, 25)
    flagged = parse_settings(raw, {}, {"grace_s": 5.0, "max_failures": 2, "dry_run": True,
                                       "deadline_s": 60.0, "backup_dir": Path("b")})
    assert (flagged.grace_s, flagged.max_failures, flagged.dry_run, flagged.deadline_s,
            flagged.backup_dir) == (5.0, 2, True, 60.0, Path("b"))


def test_select_flags_add_to_the_file_and_a_shard_takes_its_share_of_the_rate() -> None:
    raw = raw_config(rate_limit=100, select={"include": ["a*"]})
    settings = parse_settings(raw, {"REBRAND_SHARD_COUNT": "4"},
                              {"select": ["b*"], "exclude": ["c*"], "shard": "1/"})
    assert settings.select.include == ("a*", "b*")
    assert settings.select.exclude == ("c*",)
    assert (settings.shard, settings.rate_limit) == (Shard(1, 4), 25.0)
    # Only a command with --shard is sharded: the environment alone does not shard a restore.
    env = {"JOB_COMPLETION_INDEX": "1", "REBRAND_SHARD_COUNT": "4"}
    assert parse_settings(raw, env, {}).shard is None
    assert parse_settings(raw, env, {"shard": None}).shard == Shard(1, 4)


def test_a_restore_needs_no_theme_and_a_run_does() -> None:
    assert parse_settings({"space": "x.signalwire.com"}, {}, restoring=True).theme is None
    assert "theme: missing" in refused({"space": "x.signalwire.com"})


# Keys


def test_minimal_config_gets_the_documented_defaults() -> None:
    settings = parse_settings(raw_config(), {})
    assert settings.space == Space("https", "example.signalwire.com", 443)
    assert settings.concurrency == "auto"
    assert settings.max_concurrency == 512
    assert settings.page_size == 1000
    assert settings.queue_size >= 1
    assert settings.retry == RetryPolicy()
    assert len(settings.theme.colors) == 10


def test_unknown_top_level_key_is_named() -> None:
    message = refused(raw_config(colour="blue"))
    assert message.startswith("colour:")
    assert "unknown key" in message
    assert "concurrency" in message  # says what is allowed instead


def test_unknown_retry_key_is_named_with_its_section() -> None:
    message = refused(raw_config(retry={"max_tries": 3}))
    assert message.startswith("retry.max_tries:")
    assert "max_attempts" in message


def test_retry_that_is_not_a_mapping_is_refused() -> None:
    assert refused(raw_config(retry=3)).startswith("retry:")


@pytest.mark.parametrize("raw", [None, [], "space: x", 42])
def test_config_that_is_not_a_mapping_is_refused(raw: object) -> None:
    assert "mapping" in refused(raw)


def test_missing_space_is_named() -> None:
    message = refused({"theme": BRAND})
    assert message.startswith("space:")
    assert "SIGNALWIRE_SPACE" in message


def test_missing_theme_is_named() -> None:
    assert refused({"space": "example.signalwire.com"}).startswith("theme:")


# Credentials never come from the file, and their values are never echoed


@pytest.mark.parametrize(
    "key",
    ["project_id", "api_token", "token", "password", "SIGNALWIRE_API_TOKEN",
     "signalwire_project_id", "auth"],
)
def test_credentials_in_the_file_are_refused_without_echoing_the_value(key: str) -> None:
    message = refused(raw_config(**{key: SECRET}))
    assert message.startswith(f"{key}:")
    assert "SIGNALWIRE_PROJECT_ID" in message  # says where they belong
    assert SECRET not in message
    assert SECRET[:8] not in message


def test_credentials_nested_under_retry_are_refused_without_echo() -> None:
    message = refused(raw_config(retry={"api_token": SECRET}))
    assert message.startswith("retry.api_token:")
    assert SECRET not in message


def test_credentials_inside_the_space_url_are_refused_without_echo() -> None:
    message = refused(raw_config(space=f"https://project:{SECRET}@example.signalwire.com"))
    assert message.startswith("space:")
    assert SECRET not in message


def test_credentials_in_a_yaml_file_are_refused_without_echo(tmp_path: Path) -> None:
    path = tmp_path / "rebrand.yaml"
    path.write_text(
        "space: example.signalwire.com\n"
        f"project_id: 3f1c-project\napi_token: {SECRET}\n"
        'theme:\n  light:\n    primary: "#0A84FF"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert SECRET not in str(caught.value)
    assert "3f1c-project" not in str(caught.value)
    assert "credentials" in str(caught.value)


# Colors


@pytest.mark.parametrize(
    "value", ["#12345", "#1234567", "0A84FF", "#GGGGGG", "red", "#0A84F", 0x0A84FF, None, ""]
)
def test_a_color_that_is_not_rrggbb_is_named_with_its_path(value: object) -> None:
    message = refused(raw_config(theme={"light": {"primary": value}}))
    assert message.startswith("theme.light.primary:")
    assert "#RRGGBB" in message
    assert repr(value) in message


def test_an_unquoted_color_in_yaml_is_explained(tmp_path: Path) -> None:
    # YAML reads `#0A84FF` unquoted as a comment, so the value arrives as null.
    path = tmp_path / "rebrand.yaml"
    path.write_text(
        "space: example.signalwire.com\ntheme:\n  dark:\n    background: #0B1220\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    message = str(caught.value)
    assert message.startswith("theme.dark.background:")
    assert "quote it" in message


def test_unknown_theme_mode_and_role_are_named() -> None:
    assert refused(raw_config(theme={"sepia": {"primary": "#000000"}})).startswith(
        "theme.sepia:")
    assert refused(raw_config(theme={"light": {"accent": "#000000"}})).startswith(
        "theme.light.accent:")


def test_a_theme_that_names_no_colors_is_refused() -> None:
    assert refused(raw_config(theme={})).startswith("theme:")
    assert refused(raw_config(theme={"light": {}})).startswith("theme:")
    assert refused(raw_config(theme=["#000000"])).startswith("theme:")
    assert refused(raw_config(theme={"light": "#000000"})).startswith("theme.light:")


def test_a_partial_theme_holds_only_the_colors_it_names() -> None:
    settings = parse_settings(
        raw_config(theme={"dark": {"negative": "#ef4444"}, "light": {"primary": "#0A84FF"}}), {}
    )
    assert settings.theme.as_dict() == {"dark_negative": "#ef4444", "light_primary": "#0A84FF"}


# Numbers


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), ("AUTO", "auto"), (64, 64)])
def test_concurrency_is_auto_or_a_pinned_whole_number(value: object, expected: object) -> None:
    settings = parse_settings(raw_config(concurrency=value, max_concurrency=100), {})
    assert settings.concurrency == expected
    assert settings.max_concurrency == 100


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("concurrency", 0, "at least 1"),
        ("concurrency", -4, "at least 1"),
        ("concurrency", 1.5, "whole number"),
        ("concurrency", "8", "whole number"),
        ("concurrency", True, "whole number"),
        ("concurrency", "fast", "neither `auto` nor a whole number"),
        ("concurrency", 1025, "at most 1024"),
        ("max_concurrency", 0, "at least 1"),
        ("max_concurrency", 2000, "at most 1024"),
        ("queue_size", 0, "at least 1"),
        ("page_size", 0, "at least 1"),
        ("page_size", 1001, "1..1000"),
        ("request_timeout_s", 0, "at least"),
        ("request_timeout_s", "30s", "number"),
        ("rate_limit", 0, "at least"),
    ],
)
def test_numbers_out_of_bounds_are_named(key: str, value: object, wanted: str) -> None:
    message = refused(raw_config(**{key: value}))
    assert message.startswith(f"{key}:")
    assert wanted in message


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_attempts", 0), ("max_attempts", 2.5), ("backoff_base_s", -0.1),
     ("backoff_cap_s", -1), ("retry_after_cap_s", -1), ("deadline_s", 0),
     ("deadline_s", "soon")],
)
def test_retry_numbers_out_of_bounds_are_named(key: str, value: object) -> None:
    assert refused(raw_config(retry={key: value})).startswith(f"retry.{key}:")


def test_numbers_at_their_bounds_are_accepted() -> None:
    settings = parse_settings(
        raw_config(concurrency=1, queue_size=1, page_size=1000, rate_limit=0.5,
                   retry={"max_attempts": 1, "backoff_base_s": 0, "backoff_cap_s": 0,
                          "retry_after_cap_s": 0, "deadline_s": 1}),
        {},
    )
    assert (settings.concurrency, settings.queue_size, settings.page_size) == (1, 1, 1000)
    assert settings.retry == RetryPolicy(1, 0.0, 0.0, 0.0, 1.0)
    assert parse_settings(raw_config(page_size=1), {}).page_size == 1


# The Space


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.signalwire.com", Space("https", "example.signalwire.com", 443)),
        ("https://example.signalwire.com", Space("https", "example.signalwire.com", 443)),
        ("https://example.signalwire.com/", Space("https", "example.signalwire.com", 443)),
        ("https://example.signalwire.com:8443", Space("https", "example.signalwire.com", 8443)),
        ("http://127.0.0.1:8080", Space("http", "127.0.0.1", 8080)),
        ("http://127.0.0.2:9000", Space("http", "127.0.0.2", 9000)),
        ("http://localhost:8080", Space("http", "localhost", 8080)),
        ("http://[::1]:8080", Space("http", "::1", 8080)),
        ("http://127.0.0.1", Space("http", "127.0.0.1", 80)),
    ],
)
def test_each_space_form_is_read(text: str, expected: Space) -> None:
    assert parse_settings(raw_config(space=text), {}).space == expected


@pytest.mark.parametrize(
    "text",
    ["http://example.signalwire.com", "http://10.0.0.5:8080", "http://192.168.1.10",
     "http://localhost.example.com:8080", "http://[2001:db8::1]:8080", "http://0.0.0.0:80"],
)
def test_plain_http_to_a_non_loopback_space_is_refused(text: str) -> None:
    message = refused(raw_config(space=text))
    assert message.startswith("space:")
    assert "loopback" in message
    assert "https://" in message  # says what to use instead


@pytest.mark.parametrize(
    "text",
    ["ftp://example.signalwire.com", "https://example.signalwire.com/api/video",
     "https://example.signalwire.com?x=1", "https://", "   ", "https://host:99999"],
)
def test_a_space_that_is_not_a_host_is_refused(text: str) -> None:
    assert refused(raw_config(space=text)).startswith("space:")


def test_signalwire_space_overrides_the_file() -> None:
    settings = parse_settings(raw_config(space="example.signalwire.com"),
                              {"SIGNALWIRE_SPACE": "http://127.0.0.1:9999"})
    assert settings.space == Space("http", "127.0.0.1", 9999)


def test_signalwire_space_alone_is_enough() -> None:
    settings = parse_settings({"theme": BRAND}, {"SIGNALWIRE_SPACE": "other.signalwire.com"})
    assert settings.space.origin == "https://other.signalwire.com"


def test_a_bad_signalwire_space_names_the_variable_not_the_file_key() -> None:
    message = refused(raw_config(), {"SIGNALWIRE_SPACE": "http://example.com"})
    assert message.startswith("SIGNALWIRE_SPACE:")


# The file itself


def test_an_unreadable_config_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--config .*cannot read"):
        load_settings(tmp_path / "absent.yaml", {})


def test_invalid_yaml_names_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("space: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^--config .*not valid YAML"):
        load_settings(path, {})


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"
    settings = load_settings(example, {})
    assert settings.space.host == "example.signalwire.com"
    assert {f: v.upper() for f, v in settings.theme.colors} == {
        f"{mode}_{role}": value for mode, roles in BRAND.items() for role, value in roles.items()
    }


# Credentials


def test_credentials_come_from_the_environment() -> None:
    credentials = load_credentials(
        {"SIGNALWIRE_PROJECT_ID": " project ", "SIGNALWIRE_API_TOKEN": SECRET})
    assert (credentials.project_id, credentials.api_token) == ("project", SECRET)
    assert SECRET not in repr(credentials)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, {"SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"}),
        ({"SIGNALWIRE_API_TOKEN": SECRET}, {"SIGNALWIRE_PROJECT_ID"}),
        ({"SIGNALWIRE_PROJECT_ID": "p"}, {"SIGNALWIRE_API_TOKEN"}),
        ({"SIGNALWIRE_PROJECT_ID": "p", "SIGNALWIRE_API_TOKEN": "  "}, {"SIGNALWIRE_API_TOKEN"}),
        ({"SIGNALWIRE_PROJECT_ID": "  ", "SIGNALWIRE_API_TOKEN": SECRET},
         {"SIGNALWIRE_PROJECT_ID"}),
    ],
)
def test_missing_credentials_are_named(env: dict[str, str], named: set[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_credentials(env)
    message = str(caught.value)
    assert message.startswith("missing credentials: set ")
    wanted = message.split(" in the environment", maxsplit=1)[0]
    for name in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"):
        assert (name in wanted) == (name in named), message
    assert SECRET not in message


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n", encoding="utf-8")
    credentials = load_credentials(
        {"SIGNALWIRE_PROJECT_ID": "p", "SIGNALWIRE_API_TOKEN_FILE": str(token_file)})
    assert credentials.api_token == SECRET


@pytest.mark.parametrize("content", ["", "\n", "   \n\n"])
def test_an_empty_token_file_is_named(tmp_path: Path, content: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^SIGNALWIRE_API_TOKEN_FILE: .* is empty"):
        load_credentials({"SIGNALWIRE_PROJECT_ID": "p",
                          "SIGNALWIRE_API_TOKEN_FILE": str(token_file)})


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unreadable_token_file_is_named(tmp_path: Path, kind: str) -> None:
    # A directory stands in for an unreadable file: the suite may run as root.
    path = tmp_path / "absent" if kind == "missing" else tmp_path
    with pytest.raises(ConfigError, match=r"^SIGNALWIRE_API_TOKEN_FILE: cannot read"):
        load_credentials({"SIGNALWIRE_PROJECT_ID": "p", "SIGNALWIRE_API_TOKEN_FILE": str(path)})


def test_token_and_token_file_both_set_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("other", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_credentials({"SIGNALWIRE_PROJECT_ID": "p", "SIGNALWIRE_API_TOKEN": SECRET,
                          "SIGNALWIRE_API_TOKEN_FILE": str(token_file)})
    message = str(caught.value)
    assert "SIGNALWIRE_API_TOKEN and SIGNALWIRE_API_TOKEN_FILE" in message
    assert "unset one" in message
    assert SECRET not in message


def test_the_authorization_header_is_http_basic() -> None:
    credentials = load_credentials({"SIGNALWIRE_PROJECT_ID": "proj",
                                    "SIGNALWIRE_API_TOKEN": "token-42"})
    assert credentials.authorization() == "Basic cHJvajp0b2tlbi00Mg=="
    assert "token-42" in credentials.secrets
    assert "cHJvajp0b2tlbi00Mg==" in credentials.secrets


def test_a_misspelt_targets_key_is_pointed_at_targets() -> None:
    """`targets` is a documented top-level key (README, Configuration): a typo of it gets
    the same "did you mean" as any other key."""
    raw = {"theme": BRAND, "target": [{"name": "a"}]}
    with pytest.raises(ConfigError, match=r"target: unknown key; did you mean `targets`\?"):
        parse_settings(raw, {"SIGNALWIRE_PROJECT_ID": "p", "SIGNALWIRE_API_TOKEN": "t" * 20})


def test_max_parallel_targets_without_targets_says_it_needs_targets() -> None:
    raw = {"space": "example.signalwire.com", "theme": BRAND, "max_parallel_targets": 4}
    with pytest.raises(ConfigError) as refused:
        parse_settings(raw, {})
    assert "unknown key" not in str(refused.value)
    assert "targets:" in str(refused.value)
