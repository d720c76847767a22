"""The preview: one self-contained HTML page that shows a theme on a conference room mock
in light and dark mode, its contrast table, and its palette as people with each
color-vision deficiency see it; for a plan, each current palette before and after.

A pure function of values to a string. Inline CSS and SVG only: no script, no font, no
image, no link, so opening the file makes no request at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from worker.contrast import (
    DISTINCT_DELTA_E,
    RULES,
    Deficiency,
    Level,
    check_palette,
    distinctions,
    readability,
    simulate,
)
from worker.theme import API_DEFAULTS, Mode, Role, Theme, as_shown, is_color

_PEOPLE = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Donald", "Radia",
           "Tim", "Margaret", "Dennis", "Lynn", "Niklaus", "Shafi", "Robin")
_GRID = re.compile(r"(\d+)x(\d+)")
MAX_GROUPS = 12


@dataclass(frozen=True, slots=True)
class Group:
    """Conferences sharing one current palette: how many, a few names, before and after
    (color fields and `layout` to values; None when unset)."""

    count: int
    examples: tuple[str, ...]
    before: Mapping[str, str | None]
    after: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Tiles:
    """How a layout places the video tiles: grid columns, and tiles as (column span,
    row span)."""

    columns: int
    spans: tuple[tuple[int, int], ...]


def tiles_for(layout: str | None) -> Tiles:
    """The mock's tiles for a conference layout (the API's Video.VideoLayout values);
    large grids are cut to 4 x 4, unknown or missing layouts get a 3 x 2 grid."""
    if layout == "1x1":
        return Tiles(1, ((1, 1),))
    grid = _GRID.fullmatch(layout or "")
    if grid:
        columns, rows = min(int(grid[1]), 4), min(int(grid[2]), 4)
        return Tiles(columns, ((1, 1),) * (columns * rows))
    if layout == "5up":
        return Tiles(4, ((2, 2),) + ((1, 1),) * 4)
    if layout == "highlight-1-responsive":
        return Tiles(3, ((3, 2),) + ((1, 1),) * 3)
    if layout == "grid-responsive-mobile":
        return Tiles(2, ((1, 1),) * 4)
    return Tiles(3, ((1, 1),) * 6)


def _colors(mode: Mode, palette: Mapping[str, str | None]) -> dict[str, str]:
    """The mode's five colors, each the palette's if it is a color, else the API's
    default. Only `#RRGGBB` values ever reach the CSS."""
    out = {}
    for role in Role:
        name = f"{mode.value}_{role.value}"
        value = palette.get(name)
        out[role.value] = (value.upper() if isinstance(value, str) and is_color(value)
                          else API_DEFAULTS[name])
    return out


_SILHOUETTE = ('<svg class="person" viewBox="0 0 40 30" aria-hidden="true">'
               '<circle cx="20" cy="11" r="6"/><path d="M8 30c0-8 5-12 12-12s12 4 12 12z"/>'
               '</svg>')
_ICONS = {
    "primary": '<path d="M5 6h14v9H9l-4 4z"/>',  # chat
    "success": '<rect x="9" y="3" width="6" height="11" rx="3"/>'
               '<path d="M6 11a6 6 0 0 0 12 0M12 17v4" fill="none" stroke-width="2"/>',  # mic
    "negative": '<path d="M3 14c5-5 13-5 18 0l-3 3-3-2v-3a9 9 0 0 0-6 0v3l-3 2z"/>',  # leave
}
_LABELS = {"primary": "Chat", "success": "Unmuted", "negative": "Leave"}


def room(mode: Mode, palette: Mapping[str, str | None], name: str, *,
         element_id: str | None = None, mini: bool = False) -> str:
    """A conference room in one mode: top bar with the room name, video tiles after its
    layout (the first one speaking), and a control bar with the primary, success and
    negative controls."""
    c = _colors(mode, palette)
    layout = palette.get("layout")
    tiles = tiles_for(layout)
    style = ";".join(f"--{role}:{value}" for role, value in c.items())
    cells = []
    for i, (columns, rows) in enumerate(tiles.spans):
        speaking = " speaking" if i == 0 else ""
        span = f' style="grid-column:span {columns};grid-row:span {rows}"' if columns > 1 \
            or rows > 1 else ""
        cells.append(f'<div class="tile{speaking}"{span}>{_SILHOUETTE}'
                     f'<span class="who">{_PEOPLE[i % len(_PEOPLE)]}</span></div>')
    controls = "".join(
        f'<div class="control"><span class="button {role}" data-role="{role}">'
        f'<svg viewBox="0 0 24 24" aria-hidden="true">{_ICONS[role]}</svg></span>'
        f'<span class="label">{_LABELS[role]}</span></div>'
        for role in ("primary", "success", "negative")
    )
    ident = f' id="{element_id}"' if element_id else ""
    size = " mini" if mini else ""
    shown_layout = f"{mode.value} mode" + (f" · {escape(layout)}" if isinstance(layout, str)
                                            else "")
    return (
        f'<figure class="room{size}" data-mode="{mode.value}"{ident} style="{style}">'
        f'<div class="topbar"><span class="room-name">{escape(name)}</span>'
        f'<span class="meta">{shown_layout}</span></div>'
        f'<div class="stage" style="grid-template-columns:repeat({tiles.columns},1fr)">'
        f'{"".join(cells)}</div><div class="controls">{controls}</div></figure>'
    )


def _swatch(color: str, background: str, text: str = "") -> str:
    return (f'<span class="swatch" style="background:{background};color:{color}">'
            f'<span class="chip" style="background:{color}"></span>{escape(text)}</span>')


def contrast_table(palette: Mapping[str, str | None], level: Level) -> str:
    """Every rule in both modes: the pair, the ratio, the minimum and pass or fail; a
    pair the palette does not fully set is said to be left to each conference."""
    shown_level = Level.AA if level is Level.OFF else level
    findings = {(f.mode, f.role): f for f in check_palette(palette, shown_level)}
    lc = {r.mode: r.lc for r in readability(palette)}
    rows = []
    for mode in Mode:
        for rule in RULES:
            finding = findings.get((mode, rule.role))
            pair = f"{rule.role.value} on background"
            kind = "text" if rule.text else "non-text"
            if finding is None:
                rows.append(f'<tr class="unset"><td>{mode.value}</td><td>{pair}</td>'
                            f'<td>{kind}</td><td colspan="4">not set by the theme: each '
                            "conference keeps its own (checked per conference by "
                            "<code>plan</code>)</td></tr>")
                continue
            verdict = "pass" if finding.ok else "fail"
            extra = (f' · APCA Lc {abs(lc[mode]):.1f}' if rule.text and mode in lc else "")
            rows.append(
                f'<tr class="{verdict}" data-mode="{mode.value}" data-role="{rule.role.value}">'
                f"<td>{mode.value}</td><td>{pair}</td><td>{kind}</td>"
                f"<td>{_swatch(finding.color.upper(), finding.background.upper(), 'Aa')} "
                f"<code>{finding.color.upper()}</code> on <code>"
                f"{finding.background.upper()}</code></td>"
                f"<td>{finding.shown_ratio}:1{extra}</td><td>{finding.minimum:g}:1</td>"
                f'<td><span class="verdict {verdict}">{verdict}</span></td></tr>'
            )
    note = ("" if level is not Level.OFF else
            "<p>The check is off (<code>accessibility: {level: off}</code>); the table "
            "shows what AA would say.</p>")
    return (f"{note}<table class=\"contrast\"><thead><tr><th>mode</th><th>pair</th>"
            f"<th>kind</th><th>colors</th><th>ratio</th><th>minimum "
            f"({shown_level.value})</th><th></th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table>")


def vision_table(palette: Mapping[str, str | None]) -> str:
    """The palette as seen with each dichromacy, and whether success and negative stay
    apart (CIEDE2000 at least DISTINCT_DELTA_E)."""
    apart = {(d.mode, d.deficiency): d for d in distinctions(palette)}
    rows = []
    for mode in Mode:
        colors = _colors(mode, palette)
        for deficiency in (None, *Deficiency):
            seen = {role: (value if deficiency is None else simulate(value, deficiency))
                    for role, value in colors.items()}
            chips = "".join(
                f'<td><span class="chip big" style="background:{seen[role.value]}" '
                f'title="{role.value} {seen[role.value]}"></span></td>'
                for role in Role
            )
            d = apart.get((mode, deficiency)) if deficiency is not None else None
            verdict = ("" if d is None else
                       f'<span class="verdict {"pass" if d.distinct else "warn"}">'
                       f'ΔE00 {d.delta_e:.1f} · {"apart" if d.distinct else "too alike"}'
                       "</span>")
            label = "typical vision" if deficiency is None else deficiency.name.lower()
            rows.append(f"<tr><td>{mode.value}</td><td>{label}</td>{chips}<td>{verdict}</td></tr>")
    heads = "".join(f"<th>{role.value}</th>" for role in Role)
    return (f'<table class="vision"><thead><tr><th>mode</th><th>seen with</th>{heads}'
            f"<th>success vs negative</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p class=\"small\">Simulated with Brettel's model at full severity. Success "
            f"and negative count as apart at CIEDE2000 {DISTINCT_DELTA_E:g} or more; this "
            "is advisory and never fails a run.</p>")


def _after_verdict(after: Mapping[str, str | None], level: Level) -> str:
    """Whether the merged palette passes: a partial theme over these rooms' own colors."""
    if level is Level.OFF:
        return ""
    # Checked as drawn: an unset color is the API's default, in the check as in the room.
    failing = [f for f in check_palette(as_shown(after), level) if not f.ok]
    if not failing:
        return f'<span class="verdict pass">after: every pair meets {level.value}</span>'
    pairs = "; ".join(escape(f.line()) for f in failing)
    return f'<span class="verdict fail">after: {len(failing)} below {level.value}</span> {pairs}'


def _groups_section(groups: Sequence[Group], others: tuple[int, int], level: Level) -> str:
    parts = ['<section id="plan"><h2>Before → after, by current palette</h2>']
    for i, group in enumerate(groups[:MAX_GROUPS]):
        names = ", ".join(escape(n) for n in group.examples)
        label = group.examples[0] if group.examples else "conference"
        rooms = "".join(
            f'<div class="pair"><div>{room(mode, group.before, label, mini=True)}'
            f'<p class="small">{mode.value}, before</p></div><div class="arrow">→</div>'
            f'<div>{room(mode, group.after, label, mini=True)}<p class="small">'
            f"{mode.value}, after</p></div></div>"
            for mode in Mode
        )
        parts.append(f'<article class="group" data-count="{group.count}" id="group-{i}">'
                     f"<h3>{group.count:,} conference{'s' if group.count != 1 else ''}"
                     f'</h3><p class="small">e.g. {names}</p>'
                     f'<p class="small">{_after_verdict(group.after, level)}</p>{rooms}</article>')
    hidden = sum(g.count for g in groups[MAX_GROUPS:]) + others[1]
    palettes = max(len(groups) - MAX_GROUPS, 0) + others[0]
    if hidden:
        # Rooms past the tracking cap were counted, not grouped: their palettes are a floor.
        floor = "at least " if others[1] else ""
        noun = "palette" if palettes == 1 else "palettes"
        parts.append(f"<p>… and {hidden:,} more conference{'s' if hidden != 1 else ''} in "
                     f"{floor}{palettes:,} other {noun} (see the plan's JSON events).</p>")
    parts.append("</section>")
    return "".join(parts)


def _theme_section(index: int, name: str, theme: Theme, level: Level, room_name: str,
                   layout: str | None) -> str:
    """One theme: its room in both modes, its contrast table, its color-vision table. The
    first theme's rooms are `#room-light` and `#room-dark`; a rule's name heads its own."""
    palette: dict[str, str | None] = {**theme.as_dict(), "layout": layout}
    suffix = "" if index == 0 else f"-{index + 1}"
    rooms = "".join(room(mode, palette, room_name, element_id=f"room-{mode.value}{suffix}")
                    for mode in Mode)
    heading = f"<h2>Rule {escape(name)}</h2>" if name else ""
    return (f'<section class="theme" id="theme{suffix}">{heading}'
            f'<section id="rooms{suffix}"><h2>The room</h2><div class="modes">{rooms}</div>'
            f'</section><section id="contrast{suffix}"><h2>Contrast (WCAG 2.2)</h2>'
            f"{contrast_table(palette, level)}</section>"
            f'<section id="vision{suffix}"><h2>Color vision</h2>{vision_table(palette)}'
            "</section></section>")


def render_preview(themes: Sequence[tuple[str, Theme]], level: Level, *,
                   title: str = "rebrand preview", room_name: str = "Weekly Standup",
                   layout: str | None = None, groups: Sequence[Group] | None = None,
                   others: tuple[int, int] = (0, 0)) -> str:
    """The whole page: each (rule name, theme), the name empty for a plain `theme:`.
    `groups` (a plan's palettes, most common first) adds the before → after section;
    `others` is (palettes, conferences) not grouped; with conferences, palettes is a floor."""
    sections = "".join(_theme_section(i, name, theme, level, room_name, layout)
                       for i, (name, theme) in enumerate(themes))
    plan = "" if groups is None else _groups_section(groups, others, level)
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        # No request of any kind, whatever ends up in the page.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>The theme on a conference room, in light and "
        "dark mode. Colors the theme does not set are drawn with the API's defaults.</p>"
        f"</header>{sections}{plan}</body></html>\n"
    )


_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;
 background:#F3F4F6;color:#111827}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}h3{margin:0;font-size:15px}
.small{font-size:12px;color:#4B5563;margin:4px 0}
.modes{display:flex;gap:24px;flex-wrap:wrap;width:fit-content;padding:6px;background:#F3F4F6}
.room{margin:0;width:520px;border-radius:10px;overflow:hidden;background:var(--background);
 color:var(--foreground);box-shadow:0 1px 4px rgba(0,0,0,.25);display:flex;flex-direction:column}
.topbar{display:flex;justify-content:space-between;align-items:center;padding:10px 14px;
 border-bottom:1px solid var(--foreground)}
.room-name{font-weight:600;font-size:15px}.meta{font-size:12px}
.stage{display:grid;gap:8px;padding:12px;grid-auto-rows:78px}
.tile{position:relative;border:1px solid var(--foreground);border-radius:8px;
 background:var(--background);display:flex;align-items:center;justify-content:center;
 overflow:hidden}
.tile.speaking{border:3px solid var(--primary)}
.person{width:60%;max-width:90px;height:70%;fill:var(--foreground);fill-opacity:.3}
.who{position:absolute;left:6px;bottom:4px;font-size:12px;color:var(--foreground)}
.controls{display:flex;justify-content:center;gap:28px;padding:10px 0 14px}
.control{display:flex;flex-direction:column;align-items:center;gap:4px;font-size:12px}
.button{width:44px;height:44px;border-radius:50%;display:flex;align-items:center;
 justify-content:center}
.button svg{width:22px;height:22px;fill:var(--background);stroke:var(--background)}
.button.primary{background:var(--primary)}.button.success{background:var(--success)}
.button.negative{background:var(--negative)}
.room.mini{width:250px;font-size:11px}.room.mini .stage{grid-auto-rows:30px;gap:4px;padding:6px}
.room.mini .topbar{padding:5px 8px}.room.mini .room-name{font-size:12px}
.room.mini .meta,.room.mini .who,.room.mini .label{display:none}
.room.mini .button{width:22px;height:22px}.room.mini .button svg{width:12px;height:12px}
.room.mini .controls{gap:14px;padding:5px 0 7px}
table{border-collapse:collapse;background:#FFFFFF}
th,td{border:1px solid #D1D5DB;padding:5px 8px;text-align:left;vertical-align:middle}
tr.unset td{color:#4B5563}
.swatch{display:inline-flex;align-items:center;gap:6px;padding:2px 8px;border-radius:4px;
 font-weight:600;border:1px solid #D1D5DB}
.chip{display:inline-block;width:14px;height:14px;border-radius:3px}
.chip.big{width:28px;height:20px;border:1px solid #9CA3AF}
.verdict{padding:1px 8px;border-radius:10px;font-weight:600;font-size:12px}
.verdict.pass{background:#DCFCE7;color:#14532D}.verdict.fail{background:#FEE2E2;color:#7F1D1D}
.verdict.warn{background:#FEF3C7;color:#78350F}
.group{background:#FFFFFF;border-radius:8px;padding:12px;margin:0 0 14px}
.pair{display:inline-flex;align-items:center;gap:8px;margin:8px 18px 0 0;vertical-align:top}
.arrow{font-size:20px}
code{font-size:12px}
"""
