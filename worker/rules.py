"""Rules: a theme per kind of room, the first matching rule deciding.

A config names either one `theme:` (every selected conference gets it) or a `rules:` list,
read in order: a conference gets the theme of the first rule whose `select` matches it, and
is `excluded` when none does. A rule without `select` matches everything left, so any rule
after it can never match; `unreachable` names those for `validate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from worker.errors import ConfigError
from worker.select import Selection, parse_selection
from worker.theme import Theme, parse_theme

_RULE_KEYS = ("name", "select", "theme")


@dataclass(frozen=True, slots=True)
class Rule:
    """One theme and the conferences it is for; `select` None matches every conference."""

    name: str
    theme: Theme
    select: Selection | None = None

    def matches(self, conference: Mapping[str, Any]) -> bool:
        return self.select is None or selected(self.select, conference)


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules in config order. A single `theme:` is one unnamed, select-less rule, so a
    run has one way to pick a conference's theme whichever the config used."""

    rules: tuple[Rule, ...]

    @classmethod
    def single(cls, theme: Theme) -> Rules:
        return cls((Rule("", theme),))

    @property
    def named(self) -> bool:
        """Whether events should say which rule decided (false for a plain `theme:`)."""
        return len(self.rules) > 1 or self.rules[0].name != ""

    def first_match(self, conference: Mapping[str, Any]) -> Rule | None:
        for rule in self.rules:
            if rule.matches(conference):
                return rule
        return None

    def unreachable(self) -> tuple[str, ...]:
        """Rules that come after a rule with no `select`: nothing is left for them."""
        for i, rule in enumerate(self.rules):
            if rule.select is None:
                return tuple(r.name for r in self.rules[i + 1:])
        return ()

    def themes(self) -> dict[str, dict[str, dict[str, str]]]:
        """Each rule's theme as written in a config file, by rule name (for journals)."""
        return {rule.name: rule.theme.as_config() for rule in self.rules}


def parse_rules(raw: object, *, where: str = "rules") -> Rules:
    """The config's `rules:` list, each problem a ConfigError naming the rule and key."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: must be a non-empty list of rules, each with a `theme` "
                          "and an optional `name` and `select`")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        label = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{label}: must be a mapping with `theme` and optional "
                              "`name` and `select`")
        for key in item:
            if key not in _RULE_KEYS:
                raise ConfigError(f"{label}.{key}: unknown key; allowed here: "
                                  f"{', '.join(_RULE_KEYS)}")
        name = item.get("name", str(i + 1))
        if not isinstance(name, str | int) or isinstance(name, bool) or not str(name).strip():
            raise ConfigError(f"{label}.name: {name!r} is not a name; use a short word such "
                              "as `sales`")
        name = str(name).strip()
        if name in names:
            raise ConfigError(f"{label}.name: {name!r} is used by an earlier rule; give each "
                              "rule its own name")
        names.add(name)
        if "theme" not in item:
            raise ConfigError(f"{label}.theme: missing; each rule needs the theme it applies")
        # The theme and select parsers name their keys from the top (`theme.light.primary`);
        # inside a rule the operator needs to know which rule too.
        try:
            theme = parse_theme(item["theme"])
            raw_select = item.get("select")
            select = None if raw_select is None else parse_selection(raw_select)
        except ConfigError as exc:
            raise ConfigError(f"{label}.{exc}") from exc
        rules.append(Rule(name, theme, select))
    return Rules(tuple(rules))


def selected(selection: Selection, conference: Mapping[str, Any]) -> bool:
    """Every key of `selection` tested on the conference itself, the time window included
    (for a rule's or a target's `select`, which the Space's list filters cannot apply)."""
    return selection.matches(conference) and _within(selection, conference)


def _within(selection: Selection, conference: Mapping[str, Any]) -> bool:
    """`starts_after`/`ends_before`, which a top-level `select` leaves to the Space's list
    filters, tested here on the conference's `join_from`/`join_until` as the API does."""
    if selection.starts_after is not None:
        moment = _moment(conference.get("join_from"))
        if moment is None or moment < _moment_required(selection.starts_after):
            return False
    if selection.ends_before is not None:
        moment = _moment(conference.get("join_until"))
        if moment is None or moment > _moment_required(selection.ends_before):
            return False
    return True


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _moment_required(text: str) -> datetime:
    moment = _moment(text)
    if moment is None:  # parse_selection only ever stores `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`
        raise ValueError(f"not an RFC 3339 instant: {text!r}")
    return moment
