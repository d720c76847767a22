"""Settings and credentials: read, checked, and frozen before anything is sent.

Settings (the run specification) come from the YAML config file, the environment and the
flags, merged in `parse_settings`; credentials come only from the environment. Every problem is a ConfigError that names the key and says what to
change. Nothing here reads `os.environ` itself: the CLI passes the environment in.
"""

from __future__ import annotations

import base64
import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Literal, TypeVar

import yaml

from worker.answers import ALLOW_ENV, allowed_fields
from worker.contrast import DEFAULT_LEVEL, Level, parse_accessibility
from worker.errors import ConfigError
from worker.retry import RetryPolicy
from worker.rules import Rules, parse_rules, selected
from worker.select import Predicate, Selection, all_of, parse_selection
from worker.shard import Shard, resolve_shard
from worker.space import Space, allowed_hosts, parse_space
from worker.suggest import did_you_mean
from worker.text import clipped
from worker.theme import Theme, parse_theme

DEFAULT_RATE_LIMIT = 1380.0
MIN_TOKEN_LENGTH = 8
MAX_TOKEN_LENGTH = 4096  # as much as a token file may hold
MAX_PROJECT_ID_LENGTH = 256  # a UUID is 36
# Bounds on what is read, so a wrong path (`/dev/zero`, a log file) fails fast and small.
MAX_CONFIG_BYTES = 1 << 20
MAX_TOKEN_FILE_BYTES = 4096
MAX_YAML_DEPTH = 32  # the config nests four deep; PyYAML's composer recurses per level
MAX_NUMBER_DIGITS = 30  # far above any setting; int() of 4,300+ digits raises
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
# The config is plain data: the YAML tags it may carry explicitly, by kind of node. Any
# other (`!!binary`, `!!set`, `!!timestamp`, `!!python/...`, a local `!mine`) is refused.
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS: Mapping[type[yaml.Event], frozenset[str]] = MappingProxyType({
    yaml.ScalarEvent: frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null")),
    yaml.SequenceStartEvent: frozenset({_CORE + "seq"}),
    yaml.MappingStartEvent: frozenset({_CORE + "map"}),
})
# What a value YAML could not build was meant to be, for the message.
_KINDS = MappingProxyType({_CORE + "int": "!!int",
                           _CORE + "float": "!!float", _CORE + "bool": "!!bool"})
_RETRY_KEYS = ("max_attempts", "backoff_base_s", "backoff_cap_s", "retry_after_cap_s", "deadline_s")
_SECRET_WORDS = ("token", "password", "secret", "project", "credential", "auth", "key")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Project ID and API token. The token never appears in a repr."""

    project_id: str
    api_token: str = field(repr=False)
    # In a fleet, the other targets' secrets: never sent, but watched for in this target's
    # answers and scrubbed like its own. A Space whose data holds another target's token
    # must not get it back in a PUT, nor put it into this target's journal.
    others: tuple[str, ...] = field(default=(), repr=False)

    def authorization(self) -> str:
        """The HTTP Basic `Authorization` header value (RFC 7617)."""
        pair = f"{self.project_id}:{self.api_token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings scrubbed from everything rebrand writes: the token, and the header that
        carries it, in standard and URL-safe base64 (base64 hides it from a plain search,
        not from a reader). `secret_forms` adds their escaped and encoded forms."""
        pair = f"{self.project_id}:{self.api_token}".encode()
        return (self.api_token, base64.b64encode(pair).decode("ascii"),
                base64.urlsafe_b64encode(pair).decode("ascii"), *self.others)


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key given twice is an error: YAML would keep the last silently,
    and a second `theme:` further down a long file is an easy mistake to miss."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # raises a ConstructorError
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | None):
                raise ConfigError(f"line {key_node.start_mark.line + 1}: a key must be a "
                                  "plain word, not a list or mapping")
            if key in seen:
                raise ConfigError(f"{key}: given twice (line {key_node.start_mark.line + 1}); "
                                  "keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # An alias (`*name`) can repeat a mapping inside itself: a few lines that expand
        # to gigabytes ("billion laughs"). A config has no use for one: refuse it.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            # `include: [*-legacy]` is the usual way to meet this: a glob left unquoted.
            written = clipped(f"*{event.anchor}", 40)
            raise ConfigError(f"{_where(event.start_mark)}: YAML aliases (*name) are not "
                              f"allowed in the config, and {written} reads as one: quote a "
                              f"glob that starts with * (\"{written}\"); otherwise write the "
                              "value out in full")
        _check_tag(self.peek_event())  # type: ignore[no-untyped-call]
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ConfigError(f"line {mark.line + 1}: nested more than {MAX_YAML_DEPTH} "
                                  "levels deep; a config nests four at most")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar of the right shape can still fail to build (`2025-13-01`, `!!int abc`):
        # PyYAML lets the ValueError through, without saying where.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            kind = _KINDS.get(str(node.tag))
            raise ConfigError(
                f"{_where(node.start_mark)}: {clipped(str(node.value))} "
                f"cannot be read{f' as {kind}' if kind else ''} ({clipped(str(exc))}); "
                "correct it, or quote it if it is text") from exc

    def construct_yaml_as_written(self, node: yaml.ScalarNode) -> str:
        return self.construct_scalar(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        _check_digits(node)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        _check_digits(node)
        return super().construct_yaml_float(node)


def _where(mark: Any) -> str:
    """Where a YAML mark points, as a person counts (from 1)."""
    return "somewhere in the file" if mark is None else \
        f"line {mark.line + 1}, column {mark.column + 1}"


def _check_tag(event: yaml.Event) -> None:
    """Refuse an explicit YAML tag that builds anything but plain data."""
    tag = getattr(event, "tag", None)
    if tag is None or tag == "!" or tag in _PLAIN_TAGS.get(type(event), ()):
        return
    shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
    raise ConfigError(f"{_where(event.start_mark)}: the YAML tag "
                      f"{clipped(shown)} is not allowed here; the config is plain data: "
                      "remove the tag (and quote the value if it is text)")


def _check_digits(node: yaml.ScalarNode) -> None:
    value = str(node.value)
    if len(value) > MAX_NUMBER_DIGITS:
        raise ConfigError(f"line {node.start_mark.line + 1}: a number {len(value):,} "
                          f"characters long; no setting needs more than {MAX_NUMBER_DIGITS}")


# A date or time is kept as the text written: the key that takes one (select's
# starts_after) parses it, and anywhere else (a rule's name, a glob, a number) it is the
# text the operator wrote, named as written in a message, never `datetime.date(...)`.
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                 _UniqueKeyLoader.construct_yaml_as_written)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float",
                                 _UniqueKeyLoader.construct_yaml_float)


def open_input(path: Path, what: str) -> BinaryIO:
    """`path` opened to read; `what` names it in the error (`--config x.yaml:`).

    A pipe is refused: open() on a named pipe waits for a writer, forever if none comes.
    So the file is opened without waiting (O_NONBLOCK, which a regular file ignores) and
    checked through the open descriptor, which no rename after a check can swap. A symlink
    (a Kubernetes secret mount) is followed to its file; a device such as /dev/zero is
    read as a file is, to the caller's bound."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _refuse_pipe(fd, what)
        os.set_blocking(fd, True)  # reads of a device wait as they always did
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _refuse_pipe(fd: int, what: str) -> None:
    if stat.S_ISFIFO(os.fstat(fd).st_mode):
        raise ConfigError(f"{what} is not a regular file (a pipe: reading it would wait for "
                          "a writer); give the file itself")


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The file's first `limit + 1` bytes: more than `limit` means it is too long."""
    with open_input(path, what) as handle:
        return handle.read(limit + 1)


def load_settings(path: Path, env: Mapping[str, str],
                  flags: Mapping[str, Any] | None = None, *, restoring: bool = False) -> Settings:
    """Read the config file at `path`, then merge it with `env` and `flags` (see
    `parse_settings`)."""
    return parse_settings(read_config(path), env, flags, restoring=restoring)


def read_config(path: Path) -> object:
    """The config file's YAML, parsed and not yet checked (a fleet's or a single Space's)."""
    try:
        data = _read_bounded(path, MAX_CONFIG_BYTES, f"--config {path}:")
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"--config {path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                              "is this the config file?")
        if b"\0" in data:
            raise ConfigError(f"--config {path}: not text (it holds NUL bytes)")
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        # The usual cause in a `select`: a glob such as [abc]-x or {a,b}-x left unquoted,
        # which YAML reads as a list or a mapping.
        raise ConfigError(f"--config {path}: not valid YAML ({exc}); quote a glob that "
                          "starts with [ or { (\"[abc]-*\")") from exc
    return raw


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
        token = _read_token_file(token_file)
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
    token_source = f"SIGNALWIRE_API_TOKEN_FILE {_path_shown(token_file)}" if token_file \
        else "SIGNALWIRE_API_TOKEN"
    _check_project_id(project_id)
    _check_token(token, token_source)
    return Credentials(project_id, token)


def _check_project_id(project_id: str) -> None:
    """A project ID is a UUID: refuse what cannot be one, never echoing it (it may be a
    token in the wrong variable, or a whole file)."""
    name = "SIGNALWIRE_PROJECT_ID"
    if len(project_id) > MAX_PROJECT_ID_LENGTH:
        raise ConfigError(f"{name}: {len(project_id):,} characters; a project ID is a UUID "
                          "(36 characters) from your Space's API page: check the variable "
                          "holds it alone")
    if not project_id.isprintable():
        raise ConfigError(f"{name}: holds control characters or line breaks; it should be "
                          "the value alone, on one line")
    if ":" in project_id:
        # HTTP Basic (RFC 7617) splits user and password at the first colon.
        raise ConfigError(f"{name}: holds ':', which cannot be part of a project ID; it "
                          "should be the project ID alone (the token goes in "
                          "SIGNALWIRE_API_TOKEN)")


def _check_token(token: str, source: str) -> None:
    """A token's shape, checked without showing any of it."""
    if len(token) > MAX_TOKEN_LENGTH:
        # Sent in every request's header; a server that refuses a huge header may quote it.
        raise ConfigError(f"{source}: {len(token):,} characters; SignalWire API tokens are "
                          f"far shorter (at most {MAX_TOKEN_LENGTH}): check it holds the "
                          "token alone")
    if not token.isprintable():
        raise ConfigError(f"{source}: holds control characters or line breaks; it should "
                          "be the value alone, on one line")
    if len(token) < MIN_TOKEN_LENGTH:
        # Real tokens are long; a short one is a mistake (and could not be told apart from
        # ordinary text when it is scrubbed from the logs).
        raise ConfigError(
            f"SIGNALWIRE_API_TOKEN: only {len(token)} characters; SignalWire API tokens are "
            "far longer: check the variable holds the token from your Space's API page"
        )


def _path_shown(token_file: str) -> str:
    """The token file's path for a message: a token pasted into the variable by mistake
    is not a path, and must not be echoed. Tokens never start with `/`."""
    return clipped(token_file, 120) if token_file.startswith("/") else "(the path it names)"


def environment_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """What to scrub from a message written before, or instead of, a run (a config error
    quotes the bad value, and a token pasted into the file is that value): the
    credentials' secrets when they load, else the token as the environment gives it."""
    try:
        return load_credentials(env).secrets
    except ConfigError:
        token = env.get("SIGNALWIRE_API_TOKEN", "").strip()
        # Shorter than any token, it could not be told apart from ordinary words.
        return (token,) if len(token) >= MIN_TOKEN_LENGTH else ()


def _read_token_file(token_file: str) -> str:
    """The token from a mounted secret: a small text file (read at most 4 KiB, so a
    wrong path such as `/dev/zero` fails at once)."""
    shown = _path_shown(token_file)
    what = f"SIGNALWIRE_API_TOKEN_FILE: {shown}"
    try:
        data = _read_bounded(Path(token_file), MAX_TOKEN_FILE_BYTES, what)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) else "not a path"
        raise ConfigError(f"SIGNALWIRE_API_TOKEN_FILE: cannot read {shown} ({reason}); set "
                          "it to the path of a file holding the token") from exc
    if b"\0" in data:
        raise ConfigError(f"{what} is not text (it holds NUL bytes); it should hold only "
                          "the token")
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise ConfigError(f"{what} holds more than {MAX_TOKEN_FILE_BYTES} bytes; it should "
                          "hold only the token")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text; it should hold only the token") from exc
    if not token:
        raise ConfigError(f"{what} is empty")
    return token
