"""Data is text, not markup: names, ids and colors from the Space are escaped in the
`--summary-md` Markdown (every row keeps its cells, no raw HTML) and at the terminal
(control characters shown escaped, never sent)."""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import pytest
import structlog
from aiohttp import web

from tests.support import (
    SANDBOX_ENV,
    rebrand,
    sandbox_env,
    sandbox_in_thread,
    serve_app,
    write_config,
)
from tests.terminal import run_on_terminal, screen_lines
from tests.test_hostile_server import conference, ids, space_app
from worker.cli.style import Palette
from worker.cli.tables import PLAIN, plan_markdown, plan_table
from worker.outcome import Change, Kind, Outcome, Summary
from worker.run.logs import configure_logging
from worker.text import clipped, markdown_cell, printable

pytestmark = pytest.mark.anyio

HOSTILE_NAMES = [
    "pipe | in the name",
    "line\nbreak",
    "back`tick` and ``double``",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](https://evil.example) **bold** _it_",
    "\x1b[2J\x1b[31mred\x07 bell",
    "right-to-left \u202eoverride",
    "back\\slash | \\| escaped pipe",
]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _cells(row: str) -> int:
    """Cells in a GFM table row: split on pipes not escaped by a backslash."""
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


def _planned() -> list[Outcome]:
    return [Outcome(Kind.PLANNED, cid, name, changes=(
        Change("light_primary", "</td><b>old", "#0A84FF"),
        Change("dark_primary", None, "#0A84FF")))
        for cid, name in zip(ids(len(HOSTILE_NAMES)), HOSTILE_NAMES, strict=True)]


def test_every_markdown_row_keeps_its_cells_and_no_html_survives() -> None:
    summary = Summary(listed=9, updated=0, unchanged=0, vanished=0, failed=0, retries=0,
                      duration_s=1.0, updates_per_s=0.0, planned=9)
    text = plan_markdown(_planned(), summary, exit_code=10)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) == 3 + 2 + 2 * len(HOSTILE_NAMES)
    assert all(_cells(row) == _cells(rows[3]) for row in rows[3:])
    assert _cells(rows[3]) == 4
    assert "<" not in text and ">" not in text.replace("&#62;", "")
    assert not CONTROL.search(text)
    assert "\x1b" not in text and "`</td>" not in text


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_markdown_cell_is_one_cell_of_plain_text(name: str) -> None:
    cell = markdown_cell(name)
    assert "|" not in cell and "`" not in cell and "<" not in cell and "\n" not in cell
    assert "[" not in cell and "*" not in cell
    assert not CONTROL.search(cell)


def test_the_terminal_table_shows_control_characters_escaped() -> None:
    table = plan_table(_planned())
    assert not CONTROL.search(table)
    assert "\\x1b[2J\\x1b[31mred\\x07 bell" in table
    assert "line\\x0abreak" in table
    assert "\\u202eoverride" in table


def test_console_log_lines_show_control_characters_escaped() -> None:
    out = io.StringIO()
    configure_logging("console", stream=out)
    structlog.get_logger("rebrand").info("conference.updated", name="\x1b]0;owned\x07title",
                                         errors=["\x1b[2J"])
    line = out.getvalue()
    assert "\x1b" not in line and "\x07" not in line
    assert "\\x1b]0;owned\\x07title" in line


def test_printable_leaves_ordinary_text_alone() -> None:
    for text in ("room-00001-planning", "Réunion d'équipe", "会议室", "emoji 🎉 ok"):
        assert printable(text) == text


async def test_a_plan_at_the_terminal_and_in_markdown_escapes_what_the_space_sends(
    tmp_path: Path
) -> None:
    listed = [{**conference(cid, n), "name": name}
              for n, (cid, name) in enumerate(zip(ids(len(HOSTILE_NAMES)), HOSTILE_NAMES,
                                                  strict=True))]

    def pages(_number: int, _request: web.Request) -> dict[str, object]:
        return {"links": {}, "data": listed}

    async with serve_app(space_app(pages, [])) as url:
        config = write_config(tmp_path, url)
        md = tmp_path / "plan.md"
        ran = await rebrand("plan", "--config", config, "--summary-md", md,
                            "--log-format", "console", env=sandbox_env())
    assert ran.code == 10, ran.err
    assert not CONTROL.search(ran.out + ran.err)
    assert "\\x1b[2J" in ran.out
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert rows and all(_cells(row) == 4 for row in rows if not row.startswith("| conference"))
    assert "<script>" not in text and "<img" not in text


async def test_an_error_message_at_the_terminal_shows_control_characters_escaped(
    tmp_path: Path
) -> None:
    def pages(_number: int, _request: web.Request) -> web.Response:
        return web.json_response({"errors": [{"message": "gone\x1b[2J\x1b]0;pwned\x07"}]},
                                 status=400)

    async with serve_app(space_app(pages, [])) as url:
        ran = await rebrand("run", "--config", write_config(tmp_path, url),
                            "--log-format", "console", "--backup-dir", tmp_path / "b",
                            env=sandbox_env())
    assert ran.code == 4
    assert not CONTROL.search(ran.out + ran.err)
    assert "gone\\x1b[2J" in ran.out + ran.err


WIDE_NAMES = ["会议室 design", "emoji 🎉 party", "Réunion d'équipe"]


@pytest.mark.parametrize("encoding", [{"LC_ALL": "C", "PYTHONUTF8": "0"},
                                      {"PYTHONIOENCODING": "latin-1"}],
                         ids=["ascii-locale", "latin-1-terminal"])
@pytest.mark.parametrize("verbosity", [[], ["-v"]], ids=["table", "verbose-lines"])
def test_a_terminal_that_cannot_show_a_name_gets_it_escaped_not_a_traceback(
    tmp_path: Path, encoding: dict[str, str], verbosity: list[str]
) -> None:
    with sandbox_in_thread(count=3) as sb:
        for conf, name in zip(sb.space.conferences.values(), WIDE_NAMES, strict=True):
            conf["name"] = conf["display_name"] = name
        run = run_on_terminal(["plan", "--config", str(write_config(tmp_path, sb.url)),
                               *verbosity], {**SANDBOX_ENV, **encoding})
        writes = sb.space.put_count
    assert "Traceback" not in run.output, run.output
    assert run.code == 10, run.output
    assert writes == 0
    assert "\\u4f1a\\u8bae\\u5ba4 design" in run.output  # 会议室, as the escapes say
    assert "emoji \\U0001f389 party" in run.output
    assert "3 of 3 conferences would change" in run.output


# How many terminal cells a character takes: two for East Asian wide and full-width (CJK,
# most emoji), none for combining marks and invisible format characters.
def _screen_cells(text: str) -> int:
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) in {"Mn", "Me", "Cf"}
               else 2 if unicodedata.east_asian_width(c) in {"W", "F"} else 1 for c in text)


ODD_WIDTH_NAMES = ["会议室会议室会议室 design", "emoji 🎉🎉🎉 party", "comb\u0301ining e\u0301",
                   "zero\u200bwidth", "room-00001-plain", "x" * 150]
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _field_columns(lines: list[str]) -> set[int]:
    """The cell at which each row's field (light_primary, ...) starts."""
    starts = set()
    for line in lines:
        found = re.search(r"(light|dark)_\w+", line)
        if found:
            starts.add(_screen_cells(line[:found.start()]))
    return starts


@pytest.mark.parametrize("palette", [PLAIN, Palette(enabled=True)], ids=["plain", "swatches"])
def test_the_plan_table_lines_up_in_cells_and_fits_the_window(palette: Palette) -> None:
    planned = [Outcome(Kind.PLANNED, cid, name, changes=(
        Change("light_primary", "#123456", "#0A84FF"),
        Change("dark_primary", None, "#0A84FF")))
        for cid, name in zip(ids(len(ODD_WIDTH_NAMES)), ODD_WIDTH_NAMES, strict=True)]
    lines = [_SGR.sub("", line) for line in plan_table(planned, palette, width=80).split("\n")]
    assert len(_field_columns(lines)) == 1, lines
    assert max(_screen_cells(line) for line in lines) <= 80, lines
    assert any(line.startswith("xxxxxxxxxx") and "…" in line for line in lines)
    assert any(line.startswith("会议室会议室会议室 design ") for line in lines)


@pytest.mark.parametrize("encoding", [{}, {"LC_ALL": "C", "PYTHONUTF8": "0"},
                                      {"PYTHONIOENCODING": "latin-1"}],
                         ids=["utf-8", "ascii-locale", "latin-1-terminal"])
def test_the_plan_at_a_narrow_terminal_fits_it_with_every_row_lined_up(
    tmp_path: Path, encoding: dict[str, str]
) -> None:
    """In any encoding: one the terminal cannot show a name in gets the name's escapes
    (`\\u4f1a`), and the columns are measured as those escapes."""
    with sandbox_in_thread(count=len(ODD_WIDTH_NAMES)) as sb:
        for conf, name in zip(sb.space.conferences.values(), ODD_WIDTH_NAMES, strict=True):
            conf["name"] = conf["display_name"] = name
        run = run_on_terminal(["plan", "--config", str(write_config(tmp_path, sb.url))],
                              {**SANDBOX_ENV, **encoding}, size=(80, 40))
        writes = sb.space.put_count
    assert run.code == 10, run.output
    assert writes == 0
    shown = screen_lines(run.output)
    top = next(i for i, line in enumerate(shown) if line.startswith("conference "))
    table = shown[top:shown.index("", top)]  # the header, its rule and every row
    assert len(table) > 2 * len(ODD_WIDTH_NAMES), shown
    assert len(_field_columns(table)) == 1, "\n".join(table)
    assert max(_screen_cells(line) for line in table) <= 80, "\n".join(table)
    assert "\\u2026" not in run.output  # a cut name ends in what the terminal can show


# Text whose every backslash starts a whole escape, as printable and an ASCII stream write
# them: \xNN, \uNNNN, \UNNNNNNNN.
_WHOLE_ESCAPES = re.compile(r"(?:\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\\U[0-9a-f]{8}|[^\\])*")


@pytest.mark.parametrize("name", [
    "会议室会议室会议室会议室会议室会议室",  # each \uNNNN on an ASCII terminal
    "room\u2028\u2028\u2028\u2028\u2028\u2028\u2028\u2028-planning",  # escaped by printable
    "r\x1b[2J\x1b[2J\x1b[2J\x1b[2J\x1b[2J\x1b[2J\x1b[2J",  # \x1b
    "\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600\U0001f600 x",  # \U0001f600
])
def test_a_name_cut_to_fit_an_ascii_terminal_is_cut_before_an_escape_never_inside(
    name: str,
) -> None:
    """At every window width: the cut name keeps whole escapes only (half of `\\u4f1a`,
    `\\u4f`, reads as garbage, and `\\` then `...` as an escape of its own)."""
    whole = printable(name).encode("ascii", "backslashreplace").decode("ascii")
    planned = [Outcome(Kind.PLANNED, "c1", name, changes=(
        Change("light_primary", None, "#0A84FF"),))]
    cut = set()
    for width in range(40, 40 + len(whole)):
        row = plan_table(planned, width=width, encoding="ascii").split("\n")[2]
        cell = row[:row.index("...") if "..." in row else len(whole)]
        assert whole.startswith(cell), (width, row)
        assert _WHOLE_ESCAPES.fullmatch(cell), (width, row)
        cut.add(cell)
    assert len(cut) > 3  # the window widths did cut the name in several places


@pytest.mark.parametrize("value", [
    "room\u2028\u2028\u2028\u2028\u2028\u2028\u2028\u2028-planning",  # \u2028
    "r\x1b[2J\x1b[2J\x1b[2J\x1b[2J\x1b[2J\x1b[2J\x1b[2J",  # \x1b
    "a\x00\u202eb\x7f\ufeffc\x9b\u2066d" * 3,  # escapes of both lengths, mixed
])
def test_a_value_clipped_for_an_error_message_is_cut_before_an_escape_never_inside(
    value: str,
) -> None:
    """At every limit: the clipped value is the escaped value whole, or a prefix of it
    holding whole escapes only, then `…` (half of `\\u2028`, `\\u20`, reads as garbage, and
    its backslash then escapes what the message says next)."""
    whole = printable(value)
    cuts = set()
    for limit in range(1, len(whole) + 2):
        shown = clipped(value, limit)
        assert len(shown) <= limit, (limit, shown)
        if shown == whole:
            continue
        kept = shown.removesuffix("…")
        assert shown.endswith("…") and whole.startswith(kept), (limit, shown)
        assert _WHOLE_ESCAPES.fullmatch(kept), (limit, shown)
        cuts.add(kept)
    assert len(cuts) > 3  # the limits did cut the value in several places


@pytest.mark.parametrize(("name", "shown"), [
    ("room\u200b-1", "room\\u200b-1"),  # zero-width space: looks like room-1
    ("room\u2060-1", "room\\u2060-1"),  # word joiner
    ("\ufeffroom-1", "\\ufeffroom-1"),  # byte order mark
    ("room\u00ad-1", "room\\xad-1"),  # soft hyphen
])
def test_invisible_characters_are_shown_escaped_so_two_names_never_look_alike(
    name: str, shown: str
) -> None:
    assert printable(name) == shown
    assert plan_table([Outcome(Kind.PLANNED, "c1", name, changes=(
        Change("light_primary", None, "#0A84FF"),))]).count(shown) == 1


def test_an_emoji_joined_by_zero_width_joiners_stays_as_it_is() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467 room"
    assert printable(family) == family


async def test_validate_online_shows_what_the_space_names_escaped(tmp_path: Path) -> None:
    """The drift report quotes the Space: a property's name, a conference's id. Printed
    as it came, a key holding `ESC[2J` cleared the screen of whoever ran the check."""
    cid = ids(1)[0]
    listed = [{**conference(cid), "\x1b[2J\x1b]0;owned\x07extra": 1}]

    def pages(_number: int, _request: web.Request) -> dict[str, object]:
        return {"links": {}, "data": listed}

    async with serve_app(space_app(pages, [])) as url:
        ran = await rebrand("validate", "--online", "--config", write_config(tmp_path, url),
                            env=sandbox_env())
    assert ran.code == 4, ran.out + ran.err
    assert "not in the spec" in ran.out
    assert not CONTROL.search(ran.out + ran.err), repr(ran.out)
    assert "\\x1b[2J\\x1b]0;owned\\x07extra" in ran.out


def test_the_contrast_warning_names_rooms_escaped_at_the_terminal_and_in_markdown(
    tmp_path: Path,
) -> None:
    """A partial theme's warning names example rooms: their names came out raw, control
    characters to the terminal and HTML into the CI job summary."""
    hostile = "\x1b[2J<script>alert(1)</script>"
    md = tmp_path / "plan.md"
    with sandbox_in_thread(count=20) as sb:
        for conf in sb.space.conferences.values():
            conf["name"] = conf["display_name"] = hostile
        config = write_config(tmp_path, sb.url, theme={"light": {"foreground": "#9CA3AF"}})
        run = run_on_terminal(["plan", "--config", str(config), "--summary-md", str(md)],
                              SANDBOX_ENV)
    assert run.code == 10, run.output
    assert "would fail the WCAG AA contrast check" in run.output
    assert "\\x1b[2J<script>" in run.output
    shown = _SGR.sub("", run.output).replace("\r\x1b[2K", "").replace("\r\n", "\n")
    assert not CONTROL.search(shown), repr(shown[:400])
    text = md.read_text(encoding="utf-8")
    assert "**Contrast:**" in text
    assert "<script>" not in text and "\x1b" not in text
