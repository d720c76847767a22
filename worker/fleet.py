"""A fleet: one config, many targets, each run as its own single-Space run.

Everything a target does not set (theme or rules, select, limits, retry) comes from the
config's top level, so a fleet config reads as a single-Space config plus `targets:`. Each
target's run specification is built by the same `parse_settings` as a single Space's, so
one default is written once whichever kind of config names it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

from worker.config import FLEET_KEYS, Settings, parse_settings, refuse_secrets
from worker.credentials import MIN_TOKEN_LENGTH, Credentials, environment_secrets
from worker.errors import ConfigError, ExitCode
from worker.targets import Target, parse_targets

DEFAULT_MAX_PARALLEL_TARGETS = 4
# What a target may set for itself; every other key is the fleet's, shared by all.
_OWN_KEYS = ("theme", "rules", "rate_limit")


@dataclass(frozen=True, slots=True)
class Fleet:
    """The targets in config order, how many run at once, and the shared config."""

    targets: tuple[Target, ...]
    max_parallel: int
    # The config's top level without `targets`: what every target inherits.
    shared: Mapping[str, Any]
    # Each target's own entries (theme, rules, rate_limit) as written, by target name.
    own: Mapping[str, Mapping[str, Any]]

    def pick(self, names: tuple[str, ...] | None) -> Fleet:
        """`--target NAME ...`: only these targets, in config order."""
        if not names:
            return self
        known = {t.name for t in self.targets}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"--target {unknown[0]}: no such target; the config names "
                              f"{', '.join(sorted(known))}")
        return replace(self, targets=tuple(t for t in self.targets if t.name in names))


@dataclass(frozen=True, slots=True)
class TargetRun:
    """One target, ready to run: its run specification and its credentials."""

    name: str
    settings: Settings
    credentials: Credentials


def is_fleet(raw: object) -> TypeGuard[Mapping[str, Any]]:
    """Does this parsed config describe a fleet (`targets:`) rather than one Space?"""
    return isinstance(raw, Mapping) and "targets" in raw


def parse_fleet(raw: Mapping[str, Any], *, allow: frozenset[str] = frozenset(),
                env: Mapping[str, str] | None = None) -> Fleet:
    """The fleet a config with `targets:` describes. `space:` beside it is an error.
    `allow`: Space hosts the operator allowed by name, outside the config. `env`: where
    the targets' tokens are, none of which the config may hold."""
    # Before any message can quote a value, which may be a target's token pasted there.
    refuse_secrets(raw, _named_tokens(raw, env or {}), "")
    if "space" in raw:
        raise ConfigError("space and targets: both given; a fleet names each Space in its "
                          "`targets:` list, so remove the top-level `space:`")
    targets = parse_targets(raw["targets"], allow=allow)
    limit = raw.get("max_parallel_targets", DEFAULT_MAX_PARALLEL_TARGETS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 64:
        raise ConfigError(f"max_parallel_targets: {limit!r} is not a whole number from 1 to "
                          "64")
    shared = {k: v for k, v in raw.items() if k not in FLEET_KEYS}
    own = {item["name"]: {k: item[k] for k in _OWN_KEYS if k in item}
           for item in raw["targets"]}
    return Fleet(targets, limit, shared, own)


def _named_tokens(raw: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    """The environment's token, and those of the variables the targets name in
    `token_env`, as far as the config (not yet checked) names them."""
    items = raw.get("targets")
    names = [item.get("token_env") for item in items if isinstance(item, Mapping)] \
        if isinstance(items, list) else []
    tokens = (env.get(name, "").strip() for name in names if isinstance(name, str))
    # Shorter than any token, it could not be told apart from ordinary words.
    return (*(t for t in tokens if len(t) >= MIN_TOKEN_LENGTH), *environment_secrets(env))


def unpicked_secrets(whole: Fleet, picked: Fleet, env: Mapping[str, str]) -> tuple[str, ...]:
    """The secrets of the targets `--target` left out, as far as this environment holds
    them: a picked target still watches its answers for them (a target not run need not
    have its credentials here, so one that does not load is passed over)."""
    chosen = {t.name for t in picked.targets}
    found: list[str] = []
    for target in whole.targets:
        if target.name in chosen:
            continue
        try:
            found.extend(target.credentials(env).secrets)
        except ConfigError:
            continue
    return tuple(found)


def plan_runs(fleet: Fleet, env: Mapping[str, str], flags: Mapping[str, Any],
              also_watch: tuple[str, ...] = ()) -> tuple[TargetRun, ...]:
    """Every target's run specification and credentials, all checked before any is used:
    one bad target is bad input for the whole run, named in the message. Each target
    watches its answers for every other target's secrets, and for `also_watch`'s."""
    if env.get("SIGNALWIRE_SPACE"):
        raise ConfigError("SIGNALWIRE_SPACE is set, but the config is a fleet that names each "
                          "Space in `targets:`; unset it")
    # Each target's credentials first: the config must hold none of them, and a message
    # about the config must not quote one.
    credentials = {target.name: target.credentials(env) for target in fleet.targets}
    secrets = tuple(s for each in credentials.values() for s in each.secrets)
    refuse_secrets(fleet.shared, secrets, "")
    for name, own in fleet.own.items():
        refuse_secrets(own, secrets, f"targets.{name}")
    runs: list[TargetRun] = []
    width = min(fleet.max_parallel, len(fleet.targets))
    for target in fleet.targets:
        settings = target_settings(fleet, target, env, flags)
        if "max_concurrency" not in fleet.shared and flags.get("max_concurrency") is None:
            # Each Space's own controller finds its knee (`concurrency: auto`), but the
            # process is one: the default ceiling is shared among the targets running at
            # once rather than multiplied by them. A pinned number is per target, as given.
            settings = replace(settings,
                               max_concurrency=max(1, settings.max_concurrency // width))
        held = credentials[target.name]
        for earlier, run in zip(fleet.targets, runs, strict=False):
            # The config check (worker.targets) compares variable names; two names may
            # hold one project, and two pipelines would then write the same conferences.
            if (earlier.space == target.space
                    and run.credentials.project_id == held.project_id):
                raise ConfigError(
                    f"targets.{target.name}: same Space and project as target "
                    f"{earlier.name} ({target.project_id_env} and {earlier.project_id_env} "
                    "hold the same project ID); two pipelines would write the same "
                    "conferences: remove one target")
        runs.append(TargetRun(target.name, settings, held))
    # Each target watches its answers for every target's credentials, not only its own.
    every = tuple(dict.fromkeys([*(s for run in runs for s in run.credentials.secrets),
                                 *also_watch]))
    return tuple(replace(run, credentials=replace(run.credentials, others=tuple(
        s for s in every if s not in run.credentials.secrets))) for run in runs)


def target_settings(fleet: Fleet, target: Target, env: Mapping[str, str],
                    flags: Mapping[str, Any]) -> Settings:
    """One target's run specification: the shared config with the target's own theme or
    rules and rate limit over it, its Space, its journal directory, its `select`."""
    own = fleet.own.get(target.name, {})
    raw = dict(fleet.shared)
    if "theme" in own or "rules" in own:
        raw.pop("theme", None)
        raw.pop("rules", None)
    raw.update(own)
    raw["space"] = target.space.origin
    without_space = {k: v for k, v in env.items() if k != "SIGNALWIRE_SPACE"}
    try:
        settings = parse_settings(raw, without_space, flags)
    except ConfigError as exc:
        raise ConfigError(f"targets.{target.name}: {exc}") from exc
    return replace(settings, target=target.name, target_select=target.select,
                   backup_dir=settings.backup_dir / target.name)


def fleet_exit_code(codes: Mapping[str, int], *, signalled: int | None = None,
                    dry_run: bool = False) -> tuple[int, str | None]:
    """The fleet's exit code from its targets' and the target that caused it (None when
    every target agrees): 0 when all are 0; else 3 if any target's credentials were
    refused, else 4 if any aborted, else 5 if any reached the deadline, else 1. A plan
    with changes pending anywhere is 10. A signal that stopped the whole fleet wins, as it
    does for one Space."""
    if signalled is not None:
        return signalled, None
    settled = (ExitCode.OK, ExitCode.FAILURES, ExitCode.CHANGES_PENDING, ExitCode.DEADLINE)
    for code, caused in ((ExitCode.AUTH, lambda got: got == ExitCode.AUTH),
                         # Any other way a target ended early: aborted, bad input met
                         # mid-run.
                         (ExitCode.ABORTED, lambda got: got not in settled),
                         # The deadline is the fleet's: 5 as for one Space, so a Job's
                         # policy that stops retrying on 5 (no time left) holds for a fleet.
                         (ExitCode.DEADLINE, lambda got: got == ExitCode.DEADLINE),
                         (ExitCode.FAILURES, lambda got: got == ExitCode.FAILURES)):
        for name, got in codes.items():
            if caused(got):
                return int(code), name
    if dry_run and any(got == ExitCode.CHANGES_PENDING for got in codes.values()):
        return int(ExitCode.CHANGES_PENDING), None
    return int(ExitCode.OK), None
