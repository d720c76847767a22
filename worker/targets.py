"""Targets: many Spaces (or projects) in one run, each with credentials of its own.

A config's `targets:` list names each Space and *where* its credentials live (the names
of environment variables, or a mounted token file), never the credentials themselves:
the config may come from a pull request, the secrets from the CI or the cluster. Every
target is checked, credentials included, before anything is sent to any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.credentials import Credentials, load_credentials
from worker.errors import ConfigError
from worker.rules import Rules, parse_rules
from worker.select import Selection, parse_selection
from worker.space import Space, parse_space
from worker.text import clipped
from worker.theme import parse_theme

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TARGET_KEYS = ("name", "space", "project_id_env", "token_env", "token_file", "theme", "rules",
                "select", "rate_limit")


@dataclass(frozen=True, slots=True)
class Target:
    """One Space of a fleet. `rules` None means the top-level theme or rules apply."""

    name: str
    space: Space
    project_id_env: str
    token_env: str | None = None
    token_file: Path | None = None
    rules: Rules | None = None
    select: Selection | None = None
    rate_limit: float | None = None

    def credentials(self, env: Mapping[str, str]) -> Credentials:
        """This target's credentials from the variables (or file) it names. Raises
        ConfigError naming the target and the variable to set."""
        missing = [name for name in (self.project_id_env, self.token_env)
                   if name is not None and not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"targets.{self.name}: {' and '.join(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} not set in the "
                              "environment; set it to this target's "
                              + ("project ID" if missing[0] == self.project_id_env
                                 else "API token"))
        # One reader for every credential (length and file checks alike): the target's
        # variables are handed to it under the names it knows.
        renamed = {"SIGNALWIRE_PROJECT_ID": env[self.project_id_env]}
        if self.token_env is not None:
            renamed["SIGNALWIRE_API_TOKEN"] = env[self.token_env]
        if self.token_file is not None:
            renamed["SIGNALWIRE_API_TOKEN_FILE"] = str(self.token_file)
        try:
            return load_credentials(renamed)
        except ConfigError as exc:
            message = str(exc).replace("SIGNALWIRE_API_TOKEN_FILE", "token_file")
            message = message.replace("SIGNALWIRE_API_TOKEN", self.token_env or "token_file")
            message = message.replace("SIGNALWIRE_PROJECT_ID", self.project_id_env)
            raise ConfigError(f"targets.{self.name}: {message}") from exc


def parse_targets(raw: object, allow: frozenset[str] = frozenset()) -> tuple[Target, ...]:
    """The config's `targets:` list; each problem a ConfigError naming the target. A
    target's Space is held to the same rule as `space` (`allow`: see worker.space)."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("targets: must be a non-empty list; each target needs `name`, "
                          "`space`, `project_id_env` and `token_env` (or `token_file`)")
    targets: list[Target] = []
    for i, item in enumerate(raw):
        target = _target(item, i, allow)
        if any(t.name == target.name for t in targets):
            raise ConfigError(f"targets[{i}].name: {target.name!r} is used by an earlier "
                              "target; give each target its own name")
        if any(t.space == target.space and t.project_id_env == target.project_id_env
               for t in targets):
            raise ConfigError(f"targets.{target.name}: same Space and project as an earlier "
                              "target; two pipelines would write the same conferences")
        targets.append(target)
    return tuple(targets)


def _target(item: object, index: int, allow: frozenset[str]) -> Target:
    label = f"targets[{index}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{label}: must be a mapping with `name`, `space`, "
                          "`project_id_env` and `token_env` (or `token_file`)")
    name = item.get("name")
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise ConfigError(f"{label}.name: {name!r} is not a target name; use lower-case "
                          "letters, digits and dashes, e.g. `acme`")
    label = f"targets.{name}"
    for key in item:
        if key not in _TARGET_KEYS:
            if any(word in str(key).lower() for word in ("token", "password", "secret")):
                raise ConfigError(f"{label}.{key}: credentials are never read from the config "
                                  "file; name the variable that holds them with `token_env` "
                                  "(or mount a file and give `token_file`)")
            raise ConfigError(f"{label}.{key}: unknown key; allowed here: "
                              f"{', '.join(_TARGET_KEYS)}")
    space = item.get("space")
    if space is None:
        raise ConfigError(f"{label}.space: missing; set it to the target's Space, e.g. "
                          "`space: acme.signalwire.com`")
    if not isinstance(space, str):
        raise ConfigError(f"{label}.space: {clipped(repr(space))} is not a Space address; "
                          "write it as text, e.g. `space: acme.signalwire.com`")
    project_id_env = _env_name(item, "project_id_env", label)
    if project_id_env is None:
        raise ConfigError(f"{label}.project_id_env: missing; name the environment variable "
                          "that holds this target's project ID, e.g. `ACME_PROJECT_ID`")
    token_env, token_file = _token_source(item, label)
    if "theme" in item and "rules" in item:
        raise ConfigError(f"{label}: `theme` and `rules` are both given; pick one")
    try:
        rules = None
        if "theme" in item:
            rules = Rules.single(parse_theme(item["theme"]))
        elif "rules" in item:
            rules = parse_rules(item["rules"])
        select = None if item.get("select") is None else parse_selection(item["select"])
        parsed_space = parse_space(space, key="space", allow=allow)
    except ConfigError as exc:
        raise ConfigError(f"{label}.{exc}") from exc
    rate_limit = _rate_limit(item.get("rate_limit"), label)
    return Target(
        name=name, space=parsed_space, project_id_env=project_id_env, token_env=token_env,
        token_file=token_file, rules=rules, select=select, rate_limit=rate_limit,
    )


def _token_source(item: Mapping[str, Any], label: str) -> tuple[str | None, Path | None]:
    token_env = _env_name(item, "token_env", label)
    token_file = item.get("token_file")
    if token_env is None and token_file is None:
        raise ConfigError(f"{label}: name where its token lives with `token_env: VARIABLE` "
                          "or `token_file: /path/to/mounted/secret`")
    if token_env is not None and token_file is not None:
        raise ConfigError(f"{label}: `token_env` and `token_file` are both given; keep one")
    if token_file is None:
        return token_env, None
    if not isinstance(token_file, str) or not token_file.strip():
        raise ConfigError(f"{label}.token_file: {token_file!r} is not a file path")
    return None, Path(token_file)


def _rate_limit(value: object, label: str) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value < float("inf")):
        raise ConfigError(f"{label}.rate_limit: {value!r} is not a positive number of "
                          "writes per second")
    return float(value)


def _env_name(item: Mapping[str, Any], key: str, label: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or _ENV_NAME.fullmatch(value) is None:
        # Never echo it: someone may have pasted the credential itself here.
        raise ConfigError(f"{label}.{key}: is not an environment variable name; give the "
                          "variable's name (e.g. ACME_API_TOKEN), never the credential")
    return value
