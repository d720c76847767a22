"""Can people read the theme? WCAG 2.2 contrast of each color on the background, plus two
advisory measures: APCA lightness contrast of the text, and whether `success` and
`negative` stay apart for people with a color-vision deficiency.

Pure functions of colors. WCAG contrast and APCA are written out here, each exactly as its
spec has it; the rest of the color science is coloraide's (Brettel dichromacy simulation,
CIEDE2000).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING

from worker.errors import ConfigError
from worker.theme import Mode, Role

if TYPE_CHECKING:
    from coloraide import Color


class Level(Enum):
    """The WCAG conformance level a theme must meet (`accessibility.level`)."""

    AA = "AA"
    AAA = "AAA"
    OFF = "off"


DEFAULT_LEVEL = Level.AA


@dataclass(frozen=True, slots=True)
class Rule:
    """A color drawn on the background, and the ratio each level asks of it."""

    role: Role
    text: bool  # text: WCAG 1.4.3 (AA) / 1.4.6 (AAA); otherwise non-text, 1.4.11
    aa: float
    aaa: float

    def minimum(self, level: Level) -> float:
        return self.aaa if level is Level.AAA else self.aa


RULES: tuple[Rule, ...] = (
    Rule(Role.FOREGROUND, text=True, aa=4.5, aaa=7.0),
    Rule(Role.PRIMARY, text=False, aa=3.0, aaa=3.0),
    Rule(Role.SUCCESS, text=False, aa=3.0, aaa=3.0),
    Rule(Role.NEGATIVE, text=False, aa=3.0, aaa=3.0),
)


def parse_accessibility(raw: object) -> Level:
    """The config's `accessibility:` section. YAML 1.1 reads a bare `off` as false, so
    false means off too."""
    if raw is None:
        return DEFAULT_LEVEL
    if not isinstance(raw, Mapping):
        raise ConfigError("accessibility: must be a mapping, e.g. `accessibility: {level: AA}`")
    for key in raw:
        if key != "level":
            raise ConfigError(f"accessibility.{key}: unknown key; allowed here: level")
    value = raw.get("level", DEFAULT_LEVEL.value)
    if value is False:
        return Level.OFF
    for level in Level:
        if isinstance(value, str) and value.strip().lower() == level.value.lower():
            return level
    raise ConfigError(f"accessibility.level: {value!r} is not a level; use AA, AAA or off")


@dataclass(frozen=True, slots=True)
class Finding:
    """One color checked against the background of its mode."""

    mode: Mode
    role: Role
    color: str
    background: str
    ratio: float
    minimum: float

    @property
    def ok(self) -> bool:
        # WCAG forbids rounding up: 4.499:1 fails 4.5:1.
        return self.ratio >= self.minimum

    @property
    def pair(self) -> str:
        return f"{self.role.value}/{Role.BACKGROUND.value}"

    @property
    def rounded_ratio(self) -> float:
        """The ratio to two decimals; a failing ratio that would round up to its minimum
        is cut instead, so it never reads as passing (4.497 gives 4.49, not 4.50)."""
        shown = round(self.ratio, 2)
        if not self.ok and shown >= self.minimum:
            shown = math.floor(self.ratio * 100) / 100
        return shown

    @property
    def shown_ratio(self) -> str:
        return f"{self.rounded_ratio:.2f}"

    def line(self) -> str:
        verdict = "at least" if self.ok else "below"
        return (f"{self.mode.value} {self.role.value} {self.color.upper()} on "
                f"{Role.BACKGROUND.value} {self.background.upper()}: "
                f"{self.shown_ratio}:1, {verdict} the minimum {self.minimum:g}:1")

    def event(self) -> dict[str, object]:
        """The fields of a `theme.contrast` event."""
        return {"mode": self.mode.value, "pair": self.pair, "color": self.color.upper(),
                "background": self.background.upper(), "ratio": self.rounded_ratio,
                "minimum": self.minimum, "ok": self.ok}


def _color(hex_color: str) -> Color:
    # coloraide costs ~70 ms to import: loaded when a color is first checked, not before.
    from coloraide import Color

    return Color(hex_color)


# WCAG 2.2's relative luminance, as the spec writes it. Not coloraide's: its luminance
# comes from the sRGB matrix (0.2126729, 0.7151522, 0.0721750), which differs in the fifth
# digit and passes pairs WCAG fails (#0D8764 on white: 4.50011 against WCAG's 4.49995).
# The linearisation threshold is 0.04045 (WCAG 2.0's 0.03928 gives the same result for
# every 8-bit channel: none lies between them).
_WCAG_RGB = (0.2126, 0.7152, 0.0722)


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else float(((c + 0.055) / 1.055) ** 2.4)


@lru_cache(maxsize=4096)
def relative_luminance(color: str) -> float:
    """WCAG relative luminance (0..1) of a `#RRGGBB` color."""
    channels = (_linear(int(color[i:i + 2], 16)) for i in (1, 3, 5))
    return sum(k * c for k, c in zip(_WCAG_RGB, channels, strict=True))


@lru_cache(maxsize=65_536)
def contrast_ratio(color: str, background: str) -> float:
    """WCAG contrast ratio (1..21) of two `#RRGGBB` colors. Cached: a Space has few
    distinct colors, and a plan checks the same pairs for thousands of conferences."""
    lighter, darker = sorted((relative_luminance(color), relative_luminance(background)),
                             reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# Each (mode, rule) with the two fields it reads, worked out once: a plan checks the
# merged palette of every conference, and enum lookups per pair showed up in its profile.
_PAIRS: tuple[tuple[Mode, Rule, str, str], ...] = tuple(
    (mode, rule, f"{mode.value}_{rule.role.value}", f"{mode.value}_{Role.BACKGROUND.value}")
    for mode in Mode for rule in RULES
)


def check_palette(colors: Mapping[str, str | None], level: Level,
                  touched: Iterable[str] | None = None) -> tuple[Finding, ...]:
    """Check each rule whose two colors are both set in `colors` (fields such as
    `light_primary`). With `touched`, only the pairs that include one of those fields:
    the ones a partial theme can break. Nothing at level off."""
    if level is Level.OFF:
        return ()
    wanted = None if touched is None else frozenset(touched)
    findings = []
    for mode, rule, field, background_field in _PAIRS:
        color = colors.get(field)
        background = colors.get(background_field)
        if color is None or background is None:
            continue
        if wanted is not None and field not in wanted and background_field not in wanted:
            continue
        findings.append(Finding(mode, rule.role, color, background,
                                contrast_ratio(color, background), rule.minimum(level)))
    return tuple(findings)


def refusal(failures: Iterable[str], level: Level) -> str:
    """The message a failing theme exits 2 with: one line per failing pair (as
    `Finding.line` gives it), then how to proceed."""
    lines = [f"the theme fails the WCAG {level.value} contrast check:"]
    lines += [f"  {line}" for line in failures]
    lines.append("  fix the colors above, or set `accessibility: {level: off}` in the config "
                 "to apply the theme anyway")
    return "\n".join(lines)


# APCA-W3 0.0.98G-4g, as published by its author (github.com/Myndex/apca-w3): the
# constants of the sRGB luminance estimate, the soft black clamp and the power curves.
_APCA_TRC = 2.4
_APCA_RGB = (0.2126729, 0.7151522, 0.0721750)
_APCA_BLACK_THRESHOLD, _APCA_BLACK_CLAMP = 0.022, 1.414
_APCA_NORMAL_BG, _APCA_NORMAL_TEXT = 0.56, 0.57
_APCA_REVERSE_BG, _APCA_REVERSE_TEXT = 0.65, 0.62
_APCA_SCALE, _APCA_OFFSET, _APCA_LOW_CLIP, _APCA_DELTA_Y_MIN = 1.14, 0.027, 0.1, 0.0005


def _apca_y(color: str) -> float:
    channels = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    y = float(sum(k * c ** _APCA_TRC for k, c in zip(_APCA_RGB, channels, strict=True)))
    if y < _APCA_BLACK_THRESHOLD:
        y += (_APCA_BLACK_THRESHOLD - y) ** _APCA_BLACK_CLAMP
    return y


def apca_lc(text: str, background: str) -> float:
    """APCA lightness contrast Lc of `text` on `background` (about -108..106; negative
    for light text on a dark background). Advisory: WCAG 2.2 does not use it, and WCAG 3
    is a draft; Lc 75 is its suggested floor for body text, Lc 60 for larger text."""
    text_y, bg_y = _apca_y(text), _apca_y(background)
    if abs(bg_y - text_y) < _APCA_DELTA_Y_MIN:
        return 0.0
    if bg_y > text_y:  # dark text on a light background
        sapc = (bg_y ** _APCA_NORMAL_BG - text_y ** _APCA_NORMAL_TEXT) * _APCA_SCALE
        return 0.0 if sapc < _APCA_LOW_CLIP else (sapc - _APCA_OFFSET) * 100
    sapc = (bg_y ** _APCA_REVERSE_BG - text_y ** _APCA_REVERSE_TEXT) * _APCA_SCALE
    return 0.0 if sapc > -_APCA_LOW_CLIP else (sapc + _APCA_OFFSET) * 100


class Deficiency(Enum):
    """The three dichromacies, by coloraide's filter names."""

    PROTANOPIA = "protan"
    DEUTERANOPIA = "deutan"
    TRITANOPIA = "tritan"


# CIEDE2000 below which `success` and `negative` count as too alike once simulated.
# About 1 is a just-noticeable difference between two large patches side by side; the
# states are small controls seen one at a time and must be told apart at a glance, not
# by comparison, so the bar is ten times that: the top of the band usually described as
# "perceptible at a glance" (2..10). The unaided brand pair (#16A34A / #DC2626) is 72.
DISTINCT_DELTA_E = 10.0


@lru_cache(maxsize=4096)
def simulate(color: str, deficiency: Deficiency) -> str:
    """`color` as a person with full `deficiency` sees it (Brettel 1997, which models all
    three dichromacies; Viénot's shortcut does not fit tritanopia), as `#RRGGBB`."""
    seen = _color(color).filter(deficiency.value, method="brettel", out_space="srgb")
    return str(seen.fit("srgb").to_string(hex=True, upper=True))


def delta_e(a: str, b: str) -> float:
    """CIEDE2000 difference of two `#RRGGBB` colors."""
    return float(_color(a).delta_e(b, method="2000"))


@dataclass(frozen=True, slots=True)
class Distinction:
    """How far apart `success` and `negative` stay under one deficiency."""

    mode: Mode
    deficiency: Deficiency
    success: str  # as simulated
    negative: str
    delta_e: float

    @property
    def distinct(self) -> bool:
        return self.delta_e >= DISTINCT_DELTA_E

    def line(self) -> str:
        verdict = "apart" if self.distinct else "too alike (advisory)"
        return (f"{self.mode.value}: success and negative under "
                f"{self.deficiency.name.lower()} differ by CIEDE2000 {self.delta_e:.1f} "
                f"(apart from {DISTINCT_DELTA_E:g}): {verdict}")


def distinctions(colors: Mapping[str, str | None]) -> tuple[Distinction, ...]:
    """For each mode whose `success` and `negative` are both set, their CIEDE2000
    difference after simulating each dichromacy."""
    out = []
    for mode in Mode:
        success = colors.get(f"{mode.value}_{Role.SUCCESS.value}")
        negative = colors.get(f"{mode.value}_{Role.NEGATIVE.value}")
        if success is None or negative is None:
            continue
        for deficiency in Deficiency:
            a, b = simulate(success, deficiency), simulate(negative, deficiency)
            out.append(Distinction(mode, deficiency, a, b, delta_e(a, b)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Readability:
    """The text pair's APCA Lc in one mode (advisory)."""

    mode: Mode
    lc: float

    def line(self) -> str:
        return (f"{self.mode.value}: foreground on background has APCA Lc "
                f"{abs(self.lc):.1f} (advisory; 75 suits body text, 60 larger text)")


def readability(colors: Mapping[str, str | None]) -> tuple[Readability, ...]:
    out = []
    for mode in Mode:
        text = colors.get(f"{mode.value}_{Role.FOREGROUND.value}")
        background = colors.get(f"{mode.value}_{Role.BACKGROUND.value}")
        if text is not None and background is not None:
            out.append(Readability(mode, apca_lc(text, background)))
    return tuple(out)
