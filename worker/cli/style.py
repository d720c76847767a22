"""Colors at a terminal: when to draw them, and how (SGR styles and color swatches).

Color is for a person reading a terminal: never when the stream is not one, never when
NO_COLOR is set (no-color.org) or --no-color was given, never on TERM=dumb. Swatches use
24-bit color when COLORTERM says the terminal has it, else the nearest of xterm's 256.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

RESET = "\x1b[0m"
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}
_CUBE_STEPS = (0, 95, 135, 175, 215, 255)
# C0 and C1 controls, DEL, and the bidirectional overrides: text from the Space (a
# conference's name, a server's message) is shown escaped, never obeyed by the terminal.
def xterm256(red: int, green: int, blue: int) -> int:
    """The index of the nearest xterm-256 color: the 6x6x6 cube or the gray ramp."""
    def level(value: int) -> int:
        return 0 if value < 48 else 1 if value < 115 else (value - 35) // 40

    r, g, b = level(red), level(green), level(blue)
    cube = (_CUBE_STEPS[r], _CUBE_STEPS[g], _CUBE_STEPS[b])
    gray_step = max(0, min(23, (round((red + green + blue) / 3) - 8) // 10))
    gray = 8 + 10 * gray_step

    def distance(rgb: tuple[int, int, int]) -> int:
        return sum((x - y) ** 2 for x, y in zip(rgb, (red, green, blue), strict=True))

    if distance((gray, gray, gray)) < distance(cube):
        return 232 + gray_step
    return 16 + 36 * r + 6 * g + b


@dataclass(frozen=True, slots=True)
class Palette:
    """How to paint text for one stream. The default paints nothing."""

    enabled: bool = False
    truecolor: bool = False

    def paint(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        return f"\x1b[{';'.join(_SGR[s] for s in styles)}m{text}{RESET}"

    def swatch(self, color: str | None) -> str:
        """Two cells filled with `color` (#RRGGBB), then a space; two blank cells for no
        color; nothing at all when not painting, so plain output stays plain."""
        if not self.enabled:
            return ""
        if color is None or len(color) != 7 or not color.startswith("#"):
            return "   "
        try:
            red, green, blue = (int(color[i:i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            return "   "
        code = (f"48;2;{red};{green};{blue}" if self.truecolor
                else f"48;5;{xterm256(red, green, blue)}")
        return f"\x1b[{code}m  {RESET} "


def choose_palette(*, isatty: bool, env: Mapping[str, str], no_color: bool = False) -> Palette:
    """The palette for a stream: colors only for a terminal that has not asked for none."""
    enabled = (isatty and not no_color and not env.get("NO_COLOR")
               and env.get("TERM", "") != "dumb")
    truecolor = env.get("COLORTERM", "").lower() in {"truecolor", "24bit"}
    return Palette(enabled=enabled, truecolor=enabled and truecolor)
