"""Settings: the run specification, checked and frozen before anything is sent.

Settings come from the YAML config file (read by worker.configfile), the environment and
the flags, merged in `parse_settings`; credentials are worker.credentials'. Every problem
is a ConfigError that names the key and says what to change. Nothing here reads
`os.environ` itself: the CLI passes the environment in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from worker.answers import ALLOW_ENV, allowed_fields
from worker.configfile import read_config
from worker.contrast import DEFAULT_LEVEL, Level, parse_accessibility
from worker.credentials import environment_secrets
from worker.errors import ConfigError
from worker.retry import RetryPolicy
from worker.rules import Rules, parse_rules, selected
from worker.select import Predicate, Selection, all_of, parse_selection
from worker.shard import Shard, resolve_shard
from worker.space import Space, allowed_hosts, parse_space
from worker.suggest import did_you_mean
from worker.theme import Theme, parse_theme

DEFAULT_RATE_LIMIT = 1380.0
# Upper bounds that catch typos before they cost memory: each consumer is a task with its
# own connection, each queue slot a conference.
MAX_CONCURRENCY = 1024
# `concurrency: auto` lets worker.concurrency find the Space's knee, within
# [1, max_concurrency]; a whole number pins it.
AUTO: Literal["auto"] = "auto"
Concurrency = int | Literal["auto"]
MAX_QUEUE_SIZE = 100_000  # the documented 13,800 writes per 10 s per Space
_TOP_KEYS = (
    "space",
    "theme",
    "rules",
    "concurrency",
    "max_concurrency",
    "queue_size",
    "page_size",
    "request_timeout_s",
    "rate_limit",
    "retry",
    "select",
    "confirm_above",
    "accessibility",
)
# A fleet's own keys: a config with `targets:` is read by worker.fleet, which takes these
# off and reads the rest with the keys above. Named here so that a single-Space config's
# messages know them too.
FLEET_KEYS = ("targets", "max_parallel_targets")
_RETRY_KEYS = ("max_attempts", "backoff_base_s", "backoff_cap_s", "retry_after_cap_s", "deadline_s")
_SECRET_WORDS = ("token", "password", "secret", "project", "credential", "auth", "key")


@dataclass(frozen=True, slots=True)
class Settings:
    """The run specification: everything `run`, `plan` and `restore` need except the
    credentials, merged from the config file, the environment and the flags in one place
    (`parse_settings`), checked and frozen. Each default is written here, once."""

    space: Space
    # The theme `run` and `plan` apply. None for `restore`: its journal says what to put back.
    theme: Theme | None = None
    # Or a theme per kind of room: the first matching rule decides (worker.rules).
    rules: Rules | None = None
    # In a fleet: the target this run is for, and its own `select`, which narrows within
    # it after the top-level one (worker.fleet).
    target: str | None = None
    target_select: Selection | None = None
    # How hard to drive the Space.
    concurrency: Concurrency = AUTO
    # The most `auto` may reach.
    max_concurrency: int = 512
    queue_size: int = 512
    page_size: int = 1000
    request_timeout_s: float = 30.0
    rate_limit: float = DEFAULT_RATE_LIMIT
    retry: RetryPolicy = RetryPolicy()
    # Which conferences: the config's `select` with --select/--exclude, and this shard's slice.
    select: Selection = Selection()
    shard: Shard | None = None
    # `run` at a terminal asks before changing more conferences than this.
    confirm_above: int = 50
    # Plan only: read, decide and report, send no write.
    dry_run: bool = False
    # `restore` also undoes conferences someone else edited since our write.
    force: bool = False
    backup_dir: Path = Path("rebrand-backups")
    # On SIGTERM/SIGINT, the time in-flight writes get to finish.
    grace_s: float = 20.0
    # Stop (exit 4) once this many conferences have failed; None: never.
    max_failures: int | None = 25
    # Stop cleanly (exit 4) after this many seconds; None: no deadline.
    deadline_s: float | None = None
    # Stop the listing (exit 4) past this many pages: a `next` that never ends.
    max_pages: int = 100_000
    # Properties beyond the API spec that the operator states a PUT leaves alone
    # (--allow-field, REBRAND_ALLOW_FIELDS): answers holding them do not stop the run.
    allow_fields: frozenset[str] = frozenset()
    # The WCAG level the theme must meet before anything is sent (`off` skips the check).
    accessibility: Level = DEFAULT_LEVEL

    @property
    def themes(self) -> Rules | None:
        """The rules a run applies: the config's `rules`, or its one `theme` as a single
        rule that matches every selected conference. None for a restore."""
        if self.rules is not None:
            return self.rules
        return None if self.theme is None else Rules.single(self.theme)

    @property
    def selector(self) -> Predicate | None:
        """Whether a listed conference is in this run; None when every one is."""
        within = None if self.target_select is None else partial(selected, self.target_select)
        return all_of(self.select.matches if self.select.narrows else None, within,
                      self.shard.owns if self.shard else None)


# For the flags' help: the defaults as Settings writes them.
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {f.name: f.default for f in fields(Settings) if f.default is not MISSING})
# The flags that set a Settings field of the same name (None: not given).
_FLAG_FIELDS = ("concurrency", "dry_run", "force", "backup_dir", "grace_s", "max_failures",
                "deadline_s", "max_pages")
# The config keys that are numbers: (key, type, minimum, maximum).
_NUMBERS: tuple[tuple[str, type[int] | type[float], float, float | None], ...] = (
    ("max_concurrency", int, 1, MAX_CONCURRENCY),
    ("queue_size", int, 1, MAX_QUEUE_SIZE),
    ("page_size", int, 1, None),
    ("request_timeout_s", float, 0.001, None),
    ("rate_limit", float, 0.001, None),
    ("confirm_above", int, 0, None),
)
_RETRY_NUMBERS: tuple[tuple[str, type[int] | type[float], float], ...] = (
    ("max_attempts", int, 1),
    ("backoff_base_s", float, 0),
    ("backoff_cap_s", float, 0),
    ("retry_after_cap_s", float, 0),
    ("deadline_s", float, 0.001),
)


def load_settings(path: Path, env: Mapping[str, str],
                  flags: Mapping[str, Any] | None = None, *, restoring: bool = False) -> Settings:
    """Read the config file at `path`, then merge it with `env` and `flags` (see
    `parse_settings`)."""
    return parse_settings(read_config(path), env, flags, restoring=restoring)


def parse_settings(raw: object, env: Mapping[str, str],
                   flags: Mapping[str, Any] | None = None, *, restoring: bool = False) -> Settings:
    """The one place a run's specification is assembled: the config file's values (`raw`),
    then the environment's (`SIGNALWIRE_SPACE`, the shard's index and count), then the
    flags' (`flags`, keyed by Settings field; None or absent: not given). A `restore`
    takes its theme from its journal, so its `raw` needs none."""
    if not isinstance(raw, Mapping):
        raise ConfigError("config: must be a YAML mapping with at least `space` and `theme`")
    # First, so that no later message quotes it, and no output (a rule's name in the
    # journal, the preview, a log line) carries it.
    refuse_secrets(raw, environment_secrets(env), "")
    for key in FLEET_KEYS:
        if key in raw:  # `targets:` itself makes a fleet, read before this
            raise ConfigError(f"{key}: only in a fleet config, beside `targets:` (a list of "
                              "Spaces); remove it, or add `targets:`")
    _check_keys(raw, _TOP_KEYS, "", known=_TOP_KEYS + FLEET_KEYS)
    space_text, key = _space_text(raw, env)
    if "theme" in raw and "rules" in raw:
        raise ConfigError("theme and rules: both given; pick one: `theme:` for one theme "
                          "everywhere, or `rules:` for a theme per kind of room")
    if "theme" not in raw and "rules" not in raw and not restoring:
        raise ConfigError("theme: missing; add a `theme:` with `light` and/or `dark` colors "
                          "(or `rules:`, a theme per kind of room)")
    retry = _retry_policy(raw)
    given = {name: value for name, value in (flags or {}).items() if value is not None}
    # A flag given on the command line wins over the file (--concurrency over concurrency).
    chosen = {**_numbers(raw), **{name: given[name] for name in _FLAG_FIELDS if name in given}}
    settings = Settings(
        space=parse_space(space_text, key=key,
                          allow=allowed_hosts(env, given.get("allow_space_host"))),
        theme=parse_theme(raw["theme"]) if "rules" not in raw
        and (raw.get("theme") is not None or not restoring) else None,
        rules=_rules(raw["rules"]) if "rules" in raw else None,
        retry=retry,
        select=parse_selection(raw.get("select")).with_flags(given.get("select"),
                                                             given.get("exclude")),
        **chosen,
        allow_fields=allowed_fields(given.get("allow_field"), env.get(ALLOW_ENV)),
        accessibility=parse_accessibility(raw.get("accessibility")),
    )
    # Only a command with --shard is sharded (by the flag or by the environment).
    shard = resolve_shard(given.get("shard"), env) if "shard" in (flags or {}) else None
    if shard is None:
        return settings
    # Every shard runs at once: each gets its share of the Space's write budget.
    return replace(settings, shard=shard, rate_limit=shard.rate_limit(settings.rate_limit))


def refuse_secrets(raw: object, secrets: tuple[str, ...], where: str) -> None:
    """A ConfigError naming where a key or value of the config holds a credential (in any
    case): pasted into the file, it would be shown wherever that value is."""
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            place = f"{where}.{key}" if where else str(key)
            refuse_secrets(key, secrets, where or "config")
            refuse_secrets(value, secrets, place)
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            refuse_secrets(item, secrets, f"{where}[{index}]")
    elif isinstance(raw, str) and any(s.lower() in raw.lower() for s in secrets if s):
        # Never echo the value, nor the key: either may be the token itself.
        raise ConfigError(
            f"{where}: holds the API token (or the header made from it) that the environment "
            "gives; credentials are never read from the config file: remove it, and since "
            "it was written in a file, consider rotating the token")


def _rules(raw: object) -> Rules:
    rules = parse_rules(raw)
    dead = rules.unreachable()
    if dead:
        catch_all = next(r.name for r in rules.rules if r.select is None)
        raise ConfigError(
            f"rules: {', '.join(repr(n) for n in dead)} can never match: rule {catch_all!r} "
            "before it has no `select`, so it takes every conference left; move it last "
            "or give it a `select`")
    return rules


def parse_concurrency(value: object) -> Concurrency:
    """`auto` (any case), or a whole number in [1, MAX_CONCURRENCY] that pins it."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"concurrency: {value!r} is neither `auto` nor a whole number; "
                          "leave it out (auto) or pin it, e.g. `concurrency: 64`")
    return _number({"concurrency": value}, "concurrency", "", int, 1, MAX_CONCURRENCY)


def _space_text(raw: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str]:
    """The Space as written (SIGNALWIRE_SPACE over the file's `space`), and where."""
    space_text = env.get("SIGNALWIRE_SPACE") or raw.get("space")
    if space_text is not None and not isinstance(space_text, str):
        raise ConfigError(f"space: {space_text!r} is not a host name; write it as "
                          "`space: example.signalwire.com`")
    if not isinstance(space_text, str):
        raise ConfigError(
            "space: missing; set `space: example.signalwire.com` in the config "
            "or SIGNALWIRE_SPACE in the environment"
        )
    return space_text, "SIGNALWIRE_SPACE" if env.get("SIGNALWIRE_SPACE") else "space"


def _retry_policy(raw: Mapping[str, Any]) -> RetryPolicy:
    """The `retry` section; a key left out keeps RetryPolicy's default."""
    retry_raw = raw.get("retry", {})
    if not isinstance(retry_raw, Mapping):
        raise ConfigError("retry: must be a mapping of " + ", ".join(_RETRY_KEYS))
    _check_keys(retry_raw, _RETRY_KEYS, "retry.")
    given: dict[str, Any] = {name: _number(retry_raw, name, "retry.", kind, low)
                             for name, kind, low in _RETRY_NUMBERS if name in retry_raw}
    return RetryPolicy(**given)


def _numbers(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The file's numeric keys that are present (the rest keep Settings' defaults)."""
    found: dict[str, Any] = {name: _number(raw, name, "", kind, low, high)
                             for name, kind, low, high in _NUMBERS if name in raw}
    if "concurrency" in raw:
        found["concurrency"] = parse_concurrency(raw["concurrency"])
    if found.get("page_size", 0) > 1000:
        raise ConfigError(f"page_size: {found['page_size']} is above the API's maximum; "
                          "use 1..1000")
    return found


def _check_keys(raw: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str,
                known: tuple[str, ...] | None = None) -> None:
    """Refuse a key not in `allowed`, pointing at the nearest of `known` (default:
    `allowed`), the keys this place takes in some config. The list stays `allowed`: the
    message must fit in two lines at a terminal."""
    known = known or allowed
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
            f"{prefix}{name}: unknown key; {did_you_mean(name, known)}"
            f"allowed here: {', '.join(allowed)}"
        )


N = TypeVar("N", int, float)


def _number(
    raw: Mapping[str, Any], key: str, prefix: str, kind: Callable[[Any], N],
    minimum: float, maximum: float | None = None,
) -> N:
    value = raw[key]
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
