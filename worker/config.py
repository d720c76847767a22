"""Settings and credentials: read, checked, and frozen before anything is sent.

Settings come from the YAML config file (plus `SIGNALWIRE_SPACE`); credentials come only
from the environment. Every problem is a ConfigError that names the key and says what to
change. Nothing here reads `os.environ` itself: the CLI passes the environment in.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from worker.errors import ConfigError
from worker.retry import RetryPolicy
from worker.select import Selection, parse_selection
from worker.space import Space, parse_space
from worker.theme import Theme, parse_theme

DEFAULT_RATE_LIMIT = 1380.0
MIN_TOKEN_LENGTH = 8
# Upper bounds that catch typos before they cost memory: each consumer is a task with its
# own connection, each queue slot a conference.
MAX_CONCURRENCY = 1024
MAX_QUEUE_SIZE = 100_000  # the documented 13,800 writes per 10 s per Space
_TOP_KEYS = (
    "space",
    "theme",
    "concurrency",
    "queue_size",
    "page_size",
    "request_timeout_s",
    "rate_limit",
    "retry",
    "select",
    "confirm_above",
)
_RETRY_KEYS = ("max_attempts", "backoff_base_s", "backoff_cap_s", "retry_after_cap_s", "deadline_s")
_SECRET_WORDS = ("token", "password", "secret", "project", "credential", "auth", "key")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Project ID and API token. The token never appears in a repr."""

    project_id: str
    api_token: str = field(repr=False)

    def authorization(self) -> str:
        """The HTTP Basic `Authorization` header value (RFC 7617)."""
        pair = f"{self.project_id}:{self.api_token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings the log redactor scrubs from every line: the token, and the header
        that carries it (base64 hides it from a plain search, not from a reader)."""
        return (self.api_token, self.authorization().split(" ", 1)[1])


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs to know except the credentials, checked and frozen."""

    space: Space
    theme: Theme
    concurrency: int = 16
    queue_size: int = 512
    page_size: int = 1000
    request_timeout_s: float = 30.0
    rate_limit: float = DEFAULT_RATE_LIMIT
    retry: RetryPolicy = RetryPolicy()
    select: Selection = Selection()
    # `run` at a terminal asks before changing more conferences than this.
    confirm_above: int = 50


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key given twice is an error: YAML would keep the last silently,
    and a second `theme:` further down a long file is an easy mistake to miss."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"{key}: given twice (line {key_node.start_mark.line + 1}); "
                                  "keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_settings(path: Path, env: Mapping[str, str]) -> Settings:
    """Read and check the config file. `SIGNALWIRE_SPACE` in `env` overrides `space`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: not valid YAML ({exc})") from None
    return parse_settings(raw, env)


def parse_settings(raw: object, env: Mapping[str, str]) -> Settings:
    if not isinstance(raw, Mapping):
        raise ConfigError("config: must be a YAML mapping with at least `space` and `theme`")
    _check_keys(raw, _TOP_KEYS, "")
    space_text = env.get("SIGNALWIRE_SPACE") or raw.get("space")
    if space_text is not None and not isinstance(space_text, str):
        raise ConfigError(f"space: {space_text!r} is not a host name; write it as "
                          "`space: example.signalwire.com`")
    if not isinstance(space_text, str):
        raise ConfigError(
            "space: missing; set `space: example.signalwire.com` in the config "
            "or SIGNALWIRE_SPACE in the environment"
        )
    key = "SIGNALWIRE_SPACE" if env.get("SIGNALWIRE_SPACE") else "space"
    if "theme" not in raw:
        raise ConfigError("theme: missing; add a `theme:` with `light` and/or `dark` colors")
    retry_raw = raw.get("retry", {})
    if not isinstance(retry_raw, Mapping):
        raise ConfigError("retry: must be a mapping of " + ", ".join(_RETRY_KEYS))
    _check_keys(retry_raw, _RETRY_KEYS, "retry.")
    defaults = RetryPolicy()
    policy = RetryPolicy(
        max_attempts=_number(retry_raw, "max_attempts", "retry.", int, defaults.max_attempts, 1),
        backoff_base_s=_number(retry_raw, "backoff_base_s", "retry.", float,
                               defaults.backoff_base_s, 0),
        backoff_cap_s=_number(retry_raw, "backoff_cap_s", "retry.", float,
                              defaults.backoff_cap_s, 0),
        retry_after_cap_s=_number(retry_raw, "retry_after_cap_s", "retry.", float,
                                  defaults.retry_after_cap_s, 0),
        deadline_s=_number(retry_raw, "deadline_s", "retry.", float, defaults.deadline_s, 0.001),
    )
    page_size = _number(raw, "page_size", "", int, 1000, 1)
    if page_size > 1000:
        raise ConfigError(f"page_size: {page_size} is above the API's maximum; use 1..1000")
    return Settings(
        space=parse_space(space_text, key=key),
        theme=parse_theme(raw["theme"]),
        concurrency=_number(raw, "concurrency", "", int, 16, 1, MAX_CONCURRENCY),
        queue_size=_number(raw, "queue_size", "", int, 512, 1, MAX_QUEUE_SIZE),
        page_size=page_size,
        request_timeout_s=_number(raw, "request_timeout_s", "", float, 30.0, 0.001),
        rate_limit=_number(raw, "rate_limit", "", float, DEFAULT_RATE_LIMIT, 0.001),
        retry=policy,
        select=parse_selection(raw.get("select")),
        confirm_above=_number(raw, "confirm_above", "", int, 50, 0),
    )


def _check_keys(raw: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in raw:
        if key in allowed:
            continue
        name = str(key)
        if any(word in name.lower() for word in _SECRET_WORDS):
            # Never echo the value: it may be a real token pasted into the file.
            raise ConfigError(
                f"{prefix}{name}: credentials are never read from the config file; remove it "
                "and set SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN (or "
                "SIGNALWIRE_API_TOKEN_FILE) in the environment"
            )
        raise ConfigError(
            f"{prefix}{name}: unknown key; allowed here: {', '.join(allowed)}"
        )


N = TypeVar("N", int, float)


def _number(
    raw: Mapping[str, Any], key: str, prefix: str, kind: Callable[[Any], N], default: N,
    minimum: float, maximum: float | None = None,
) -> N:
    value = raw.get(key, default)
    is_int = kind is int
    ok = isinstance(value, int) if is_int else isinstance(value, int | float)
    if not ok or isinstance(value, bool):
        wanted = "a whole number" if is_int else "a number"
        raise ConfigError(f"{prefix}{key}: {value!r} is not {wanted}")
    if not math.isfinite(value):
        raise ConfigError(f"{prefix}{key}: {value!r} is not a finite number")
    if value < minimum:
        raise ConfigError(f"{prefix}{key}: {value!r} is too small; use at least {minimum:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{prefix}{key}: {value!r} is too large; use at most {maximum:g}")
    return kind(value)


def load_credentials(env: Mapping[str, str]) -> Credentials:
    """Project ID and token from `SIGNALWIRE_PROJECT_ID` and `SIGNALWIRE_API_TOKEN`, or
    `SIGNALWIRE_API_TOKEN_FILE` (a mounted secret)."""
    project_id = env.get("SIGNALWIRE_PROJECT_ID", "").strip()
    # Stripped before the presence check: a blank token is a missing one, not a "" token.
    token = env.get("SIGNALWIRE_API_TOKEN", "").strip()
    token_file = env.get("SIGNALWIRE_API_TOKEN_FILE", "")
    if token and token_file:
        raise ConfigError(
            "SIGNALWIRE_API_TOKEN and SIGNALWIRE_API_TOKEN_FILE are both set; unset one"
        )
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(
                f"SIGNALWIRE_API_TOKEN_FILE: {token_file} is not UTF-8 text; it should hold "
                "only the token"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"SIGNALWIRE_API_TOKEN_FILE: cannot read {token_file} ({exc.strerror})"
            ) from None
        if not token:
            raise ConfigError(f"SIGNALWIRE_API_TOKEN_FILE: {token_file} is empty")
    missing = [
        name
        for name, value in (("SIGNALWIRE_PROJECT_ID", project_id),
                            ("SIGNALWIRE_API_TOKEN", token))
        if not value
    ]
    if missing:
        raise ConfigError(
            f"missing credentials: set {' and '.join(missing)} in the environment "
            "(or SIGNALWIRE_API_TOKEN_FILE to a file holding the token)"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        # Real tokens are long; a short one is a mistake (and could not be told apart from
        # ordinary text when it is scrubbed from the logs).
        raise ConfigError(
            f"SIGNALWIRE_API_TOKEN: only {len(token)} characters; SignalWire API tokens are "
            "far longer: check the variable holds the token from your Space's API page"
        )
    return Credentials(project_id, token)
