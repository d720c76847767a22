"""Text from the Space shown as text: never as terminal control, never as markup.

Names, ids and colors come from the API, so they may hold anything: a line break or `|`
that breaks a Markdown table, `<script>` or a backtick that a CI job summary would render,
or an escape sequence that clears or recolours a terminal. `printable` shows control
characters escaped; `markdown_cell` also makes every character that means something to
GitHub-flavoured Markdown or HTML an entity, so a table row keeps its cells.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Shown escaped rather than sent: C0 and C1 controls, DEL, the line and paragraph
# separators, the bidirectional overrides and isolates that reorder what a reader
# sees ("Trojan Source"), and the invisible characters that make two names look alike
# (soft hyphen, zero-width space and non-joiner, word joiner and the invisible operators,
# byte order mark). The zero-width joiner stays: it draws emoji sequences.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\xad\u2028\u2029\u200b\u200c\u200e\u200f\u061c"
                      "\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Every ASCII character with a meaning in a GFM table cell or in HTML.
_MARKUP = re.compile(r"[\\`*_{}\[\]()<>#+!|~&:]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control character shown as its escape (`\\x1b`, `\\n`
    as `\\x0a`, `\\u202e`); everything else as it is."""
    return text if text.isprintable() else _CONTROL.sub(_escape, text)


def markdown_cell(text: str) -> str:
    """`text` as the content of a Markdown table cell: printable, and every character
    Markdown or HTML would read as markup written as an HTML entity."""
    return _MARKUP.sub(lambda m: f"&#{ord(m.group())};", printable(text))


__all__ = ["cells", "cut", "encodable", "fit", "markdown_cell", "printable"]


def clipped(text: str, limit: int = 60) -> str:
    """`text` as `printable` shows it, cut to `limit` characters with a `…`: for echoing
    what a person typed into an error message, however long the value was."""
    shown = printable(text[: limit * 4])  # each character escapes to at most 6
    return shown if len(shown) <= limit else cut(shown, limit - 1, len)[0] + "…"


def _char_cells(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in {"Mn", "Me", "Cf"}:
        return 0  # a combining mark or an invisible format character (a zero-width space)
    return 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1


def cells(text: str) -> int:
    """How many terminal cells `text` (already `printable`) takes: two for each wide
    character (CJK, most emoji), none for combining marks. `len` counts characters, and a
    column padded by it is misaligned by every wide or combining one."""
    return sum(map(_char_cells, text))


def encodable(text: str, encoding: str | None) -> str:
    """`text` as a stream in `encoding` writes it (worker.cli.streams): what the encoding
    lacks as its escape (`\\u4f1a`), so a column can be measured as the terminal shows it."""
    if encoding is None:
        return text
    return text.encode(encoding, "backslashreplace").decode(encoding)


# What a cut keeps or drops whole: an escape `printable` or `encodable` wrote (`\x1b`,
# `\u2028`, `\U0001f600`), else one character. Half an escape (`\u20`) reads as
# garbage, and its backslash then escapes the ellipsis.
_UNIT = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})|.", re.DOTALL)
# In text whose every backslash starts an escape (`unicode_escape`'s, JSON's), a backslash
# and the character after it (`\\`, `\n`, `\"`) are one too. Not so in printable's: it
# leaves a backslash as it is, and `\` then `\x1b` must stay apart.
_ESCAPED_UNIT = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)|.",
                           re.DOTALL)


def cut(text: str, room: int, size: Callable[[str], int] = len, *,
        escaped: bool = False) -> tuple[str, int]:
    """The longest start of `text` that `size` (`len`, or `cells` for a terminal) measures
    at most `room`, and its size: each escape kept or dropped whole. `escaped`: every
    backslash in `text` starts an escape (`unicode_escape`'s or JSON's)."""
    kept, used = [], 0
    for unit in (_ESCAPED_UNIT if escaped else _UNIT).findall(text):
        if used + size(unit) > room:
            break
        kept.append(unit)
        used += size(unit)
    return "".join(kept), used


def fit(text: str, width: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `width` cells, ending in `ellipsis` when cut, then padded with
    spaces to exactly `width` cells: a column of a table at a terminal. A cut falls
    before an escape, never inside it."""
    width = max(width, len(ellipsis))
    used = cells(text)
    if used > width:
        kept, used = cut(text, width - len(ellipsis), cells)
        text, used = kept + ellipsis, used + len(ellipsis)
    return text + " " * (width - used)
