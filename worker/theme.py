"""The theme: which of a conference's ten color fields to set, and to what.

A theme may name only some colors; the rest of a conference's colors are left as they are.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from worker.errors import ConfigError
from worker.suggest import did_you_mean


class Mode(Enum):
    LIGHT = "light"
    DARK = "dark"


class Role(Enum):
    PRIMARY = "primary"
    BACKGROUND = "background"
    FOREGROUND = "foreground"
    SUCCESS = "success"
    NEGATIVE = "negative"


COLOR_FIELDS: tuple[str, ...] = tuple(f"{m.value}_{r.value}" for m in Mode for r in Role)
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

# What a conference shows for a color it does not set: the API's defaults
# (Video.CreateConferenceRequest in worker/openapi.yaml).
API_DEFAULTS: Mapping[str, str] = {
    "light_primary": "#044EF4", "light_background": "#FFFFFF", "light_foreground": "#1D2127",
    "light_success": "#17BB58", "light_negative": "#F42C50",
    "dark_primary": "#044EF4", "dark_background": "#FFFFFF", "dark_foreground": "#1D2127",
    "dark_success": "#17BB58", "dark_negative": "#F42C50",
}


def as_shown(palette: Mapping[str, str | None]) -> dict[str, str | None]:
    """`palette` (color fields and others, None when unset) with each unset color as the
    API's default: the colors a room actually shows, and so the ones to check."""
    return {name: API_DEFAULTS[name] if value is None and name in API_DEFAULTS else value
            for name, value in palette.items()}


def is_color(value: object) -> bool:
    """True for a `#RRGGBB` string, the only form the API accepts."""
    return isinstance(value, str) and _COLOR.fullmatch(value) is not None


def color_hint(value: object) -> str:
    """Why `value` is not a color, and what to write instead."""
    text = value if isinstance(value, str) else None
    fix = "write # and six hex digits, quoted in YAML, e.g. \"#0A84FF\""
    if value is None:
        fix = "it is empty, as in YAML an unquoted # starts a comment; quote it: \"#0A84FF\""
    elif text is not None and re.fullmatch(r"#[0-9A-Fa-f]{3}", text):
        full = "#" + "".join(c * 2 for c in text[1:]).upper()
        fix = f"write all six digits, \"{full}\""
    elif text is not None and _COLOR.fullmatch("#" + text):
        fix = f"it needs its #: write \"#{text.upper()}\" (quoted in YAML)"
    elif text is not None and _COLOR.fullmatch(text.strip()):
        fix = f"remove the spaces around it: write \"{text.strip().upper()}\""
    return f"{value!r} is not a #RRGGBB color: {fix}"


@dataclass(frozen=True, slots=True)
class Theme:
    """The colors to apply, as (field, "#RRGGBB") pairs in COLOR_FIELDS order."""

    colors: tuple[tuple[str, str], ...]
    # The same pairs with the colors upper-cased, for comparing (once, not per conference).
    folded: tuple[tuple[str, str], ...] = dataclasses.field(init=False, repr=False,
                                                           compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "folded", tuple((f, v.upper()) for f, v in self.colors))

    def as_dict(self) -> dict[str, str]:
        return dict(self.colors)

    def as_config(self) -> dict[str, dict[str, str]]:
        """The theme as it is written in the config file (for journals and reports)."""
        out: dict[str, dict[str, str]] = {}
        for field, value in self.colors:
            mode, role = field.split("_", 1)
            out.setdefault(mode, {})[role] = value
        return out


def parse_theme(raw: object) -> Theme:
    """Validate the config's `theme` section. Raises ConfigError naming the bad key."""
    if not isinstance(raw, Mapping):
        raise ConfigError("theme: must be a mapping with `light` and/or `dark` sections")
    modes = {m.value for m in Mode}
    roles = {r.value for r in Role}
    for mode in raw:
        if mode not in modes:
            raise ConfigError(
                f"theme.{mode}: unknown theme mode; {did_you_mean(mode, modes)}"
                "use `light` and/or `dark`"
            )
    found: dict[str, str] = {}
    for mode in Mode:
        section = raw.get(mode.value)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"theme.{mode.value}: must be a mapping of color roles "
                f"({', '.join(sorted(roles))}) to #RRGGBB colors"
            )
        for role, value in section.items():
            if role not in roles:
                raise ConfigError(
                    f"theme.{mode.value}.{role}: unknown color role; "
                    f"{did_you_mean(role, roles)}use one of {', '.join(r.value for r in Role)}"
                )
            if not is_color(value):
                raise ConfigError(f"theme.{mode.value}.{role}: {color_hint(value)}")
            found[f"{mode.value}_{role}"] = value
    if not found:
        raise ConfigError("theme: names no colors; set at least one of theme.light/dark.<role>")
    return Theme(tuple((f, found[f]) for f in COLOR_FIELDS if f in found))


def wears_theme(conference: Mapping[str, Any], theme: Theme) -> bool:
    """Does the conference already show every color of the theme? Case-insensitive,
    since `#0a84ff` and `#0A84FF` are the same color to the API."""
    for name, folded in theme.folded:
        current = conference.get(name)
        if not isinstance(current, str) or (current != folded and current.upper() != folded):
            return False
    return True
