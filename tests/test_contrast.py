"""The contrast check, its advisories, the merged-palette audit and the preview page, as
pure functions of colors."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.support import REPO
from worker.contrast import (
    DISTINCT_DELTA_E,
    Deficiency,
    Finding,
    Level,
    apca_lc,
    check_palette,
    contrast_ratio,
    distinctions,
    parse_accessibility,
    refusal,
    simulate,
)
from worker.decide import color_changes, look
from worker.errors import ConfigError
from worker.outcome import Kind, Outcome
from worker.palettes import MAX_TRACKED_PALETTES, PlanAudit
from worker.preview import Group, render_preview, tiles_for
from worker.theme import Mode, Role, Theme, parse_theme

EXAMPLE = yaml.safe_load((REPO / "config.example.yaml").read_text(encoding="utf-8"))


def test_grey_text_on_white_fails_aa_at_2_54_against_4_5() -> None:
    findings = check_palette({"light_foreground": "#9CA3AF", "light_background": "#FFFFFF"},
                             Level.AA)
    assert len(findings) == 1
    (finding,) = findings
    assert not finding.ok
    assert finding.shown_ratio == "2.54"
    assert finding.minimum == 4.5
    assert finding.line() == ("light foreground #9CA3AF on background #FFFFFF: 2.54:1, "
                              "below the minimum 4.5:1")
    message = refusal([f.line() for f in findings], Level.AA).splitlines()
    assert len(message) == 3
    assert "accessibility: {level: off}" in message[-1]


@pytest.mark.parametrize(("role", "level", "minimum"), [
    (Role.FOREGROUND, Level.AA, 4.5), (Role.FOREGROUND, Level.AAA, 7.0),
    (Role.PRIMARY, Level.AA, 3.0), (Role.PRIMARY, Level.AAA, 3.0),
    (Role.SUCCESS, Level.AAA, 3.0), (Role.NEGATIVE, Level.AA, 3.0),
])
def test_each_pair_is_held_to_the_minimum_of_its_kind(role: Role, level: Level,
                                                      minimum: float) -> None:
    colors = {"dark_background": "#000000", f"dark_{role.value}": "#777777"}
    (finding,) = check_palette(colors, level)
    assert (finding.mode, finding.role, finding.minimum) == (Mode.DARK, role, minimum)


def test_ratios_follow_wcag_relative_luminance() -> None:
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast_ratio("#FFFFFF", "#FFFFFF") == pytest.approx(1.0)
    # WebAIM's checker gives 4.54:1 for #767676 on white, the classic lightest AA grey.
    assert contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.005)


# Worked by hand from WCAG 2.2's definition (relative luminance L = 0.2126 R + 0.7152 G +
# 0.0722 B of the linearised channels, c/12.92 up to 0.04045, else ((c+0.055)/1.055)^2.4;
# ratio (L1 + 0.05)/(L2 + 0.05)). Colorimetric matrices (0.2126729, 0.7151522, 0.0721750)
# differ in the fifth digit, enough to flip these three across their minimums.
@pytest.mark.parametrize(("color", "role", "ratio", "ok"), [
    ("#0D8764", Role.FOREGROUND, 4.49995, False),  # L = 0.183336
    ("#DF2771", Role.FOREGROUND, 4.50040, True),   # L = 0.183313
    ("#559AD8", Role.PRIMARY, 2.99997, False),     # L = 0.300004
])
def test_a_pair_at_its_minimum_is_judged_by_wcags_own_coefficients(
        color: str, role: Role, ratio: float, ok: bool) -> None:
    (finding,) = check_palette({f"light_{role.value}": color, "light_background": "#FFFFFF"},
                               Level.AA)
    assert finding.ratio == pytest.approx(ratio, abs=5e-6)
    assert finding.ok is ok


def test_a_failing_ratio_never_reads_as_its_minimum() -> None:
    finding = Finding(Mode.LIGHT, Role.FOREGROUND, "#777777", "#FFFFFF", 4.4999, 4.5)
    assert not finding.ok
    assert finding.shown_ratio == "4.49"
    assert Finding(Mode.LIGHT, Role.PRIMARY, "#777777", "#FFFFFF", 3.0, 3.0).ok


def test_a_failing_ratio_is_not_rounded_up_in_its_event_either() -> None:
    # The README: "one that fails is never rounded up to its minimum"; a CI log reading
    # `"ratio": 4.5, "minimum": 4.5, "ok": false` contradicts itself.
    failing = Finding(Mode.LIGHT, Role.FOREGROUND, "#777777", "#FFFFFF", 4.4951, 4.5)
    assert failing.event()["ratio"] == 4.49
    passing = Finding(Mode.LIGHT, Role.FOREGROUND, "#777777", "#FFFFFF", 4.5051, 4.5)
    assert passing.event()["ratio"] == 4.51


def test_the_example_config_passes_aa_in_both_modes() -> None:
    findings = check_palette(parse_theme(EXAMPLE["theme"]).as_dict(), Level.AA)
    assert len(findings) == 8
    assert all(f.ok for f in findings), [f.line() for f in findings if not f.ok]


def test_a_partial_theme_is_checked_on_the_pairs_it_fully_defines() -> None:
    theme = parse_theme({"light": {"foreground": "#9CA3AF", "primary": "#0A84FF"},
                         "dark": {"background": "#000000", "success": "#16A34A"}})
    findings = check_palette(theme.as_dict(), Level.AA)
    assert [(f.mode, f.role) for f in findings] == [(Mode.DARK, Role.SUCCESS)]
    assert check_palette(theme.as_dict(), Level.OFF) == ()


@pytest.mark.parametrize(("raw", "level"), [
    (None, Level.AA), ({}, Level.AA), ({"level": "AA"}, Level.AA), ({"level": "aaa"}, Level.AAA),
    ({"level": "off"}, Level.OFF), ({"level": False}, Level.OFF),  # YAML's bare off
])
def test_accessibility_level_is_read_from_the_config(raw: object, level: Level) -> None:
    assert parse_accessibility(raw) is level


def test_a_bare_off_in_yaml_turns_the_check_off() -> None:
    assert parse_accessibility(yaml.safe_load("level: off")) is Level.OFF


@pytest.mark.parametrize(("raw", "named"), [
    ({"level": "A"}, "accessibility.level"), ({"level": True}, "accessibility.level"),
    ({"lvl": "AA"}, "accessibility.lvl"), ("AA", "accessibility: must be a mapping"),
])
def test_a_bad_accessibility_section_says_what_to_change(raw: object, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_accessibility(raw)


def test_apca_matches_the_published_reference_values() -> None:
    # The apca-w3 0.0.98G-4g reference results (its README and test suite).
    assert apca_lc("#888888", "#FFFFFF") == pytest.approx(63.056469930209424)
    assert apca_lc("#FFFFFF", "#888888") == pytest.approx(-68.54146436644962)
    assert apca_lc("#000000", "#AAAAAA") == pytest.approx(58.146262578561334)
    assert apca_lc("#AAAAAA", "#000000") == pytest.approx(-56.24113336839742)
    assert apca_lc("#777777", "#777777") == 0.0


def test_red_and_green_states_are_flagged_under_deuteranopia_only() -> None:
    apart = {d.deficiency: d for d in distinctions(
        {"light_success": "#16A34A", "light_negative": "#DC2626"})}
    assert not apart[Deficiency.DEUTERANOPIA].distinct
    assert apart[Deficiency.DEUTERANOPIA].delta_e < DISTINCT_DELTA_E
    assert apart[Deficiency.TRITANOPIA].distinct
    # Blue against orange survives every dichromacy.
    assert all(d.distinct for d in distinctions(
        {"dark_success": "#2563EB", "dark_negative": "#F97316"}))


def test_simulation_keeps_greys_and_gives_hex_colors() -> None:
    for deficiency in Deficiency:
        assert simulate("#808080", deficiency) == "#808080"
        assert simulate("#DC2626", deficiency).startswith("#")


def _planned(cid: str, colors: dict[str, str | None], theme: Theme,
             layout: str = "2x2") -> Outcome:
    conference = {**colors, "layout": layout}
    return Outcome(Kind.PLANNED, cid, f"room-{cid}", before=look(conference),
                   changes=color_changes(conference, theme))


def test_a_partial_theme_over_a_rooms_own_colors_is_counted_when_unreadable() -> None:
    theme = parse_theme({"light": {"foreground": "#9CA3AF"}})
    audit = PlanAudit(Level.AA)
    white = {"light_background": "#ffffff", "light_foreground": "#111111"}
    dark = {"light_background": "#000000", "light_foreground": "#111111"}
    for i in range(3):
        audit.observe(_planned(f"w{i}", white, theme))
    audit.observe(_planned("d0", dark, theme))
    audit.observe(_planned("n0", {"light_background": None}, theme))  # shows the default
    audit.observe(Outcome(Kind.UNCHANGED, "u0", "room-u0"))
    assert (audit.checked, audit.failing) == (5, 4)
    assert [e.conference_id for e in audit.examples] == ["w0", "w1", "w2", "n0"]
    warning = audit.warning()
    assert warning is not None and warning.startswith("4 of 5 conferences would fail")
    assert "room-w0: light foreground #9CA3AF on background #FFFFFF: 2.54:1" in warning
    groups = audit.groups()
    assert [g.count for g in groups] == [3, 1, 1]
    # Case does not split a palette, and the after-palette is the theme over the before.
    assert dict(groups[0].after)["light_foreground"] == "#9CA3AF"
    assert dict(groups[0].before)["light_background"] == "#FFFFFF"


def test_a_room_color_left_unset_is_checked_as_the_default_the_room_shows() -> None:
    # The API's default light background is #FFFFFF (Video.CreateConferenceRequest), and
    # the preview draws an unset color with it; grey text over it is 2.54:1.
    theme = parse_theme({"light": {"foreground": "#9CA3AF"}})
    audit = PlanAudit(Level.AA)
    audit.observe(_planned("n0", {"light_background": None}, theme))
    assert (audit.checked, audit.failing) == (1, 1)
    warning = audit.warning()
    assert warning is not None
    assert "light foreground #9CA3AF on background #FFFFFF: 2.54:1" in warning
    (group,) = audit.groups()
    page = render_preview([("", theme)], Level.AA, groups=[
        Group(group.count, group.examples, dict(group.before), dict(group.after))])
    # The group's verdict names the pair (the theme's own table leaves it to each room).
    assert 'class="verdict fail">after: ' in page
    assert "light foreground #9CA3AF on background #FFFFFF: 2.54:1, below" in page


def test_rooms_past_the_palette_cap_are_not_said_to_share_one_palette() -> None:
    # Past MAX_TRACKED_PALETTES a room's palette is only counted: 500 such rooms may have
    # 500 palettes, so the page must not say "in 1 other palettes".
    audit = PlanAudit(Level.AA, group=True)
    cap = MAX_TRACKED_PALETTES
    for i in range(cap + 500):
        colors = {"light_background": f"#{i:06X}"}  # every room its own palette
        audit.observe(_planned(f"c{i}", colors, parse_theme({"dark": {"primary": "#0A84FF"}})))
    assert audit.untracked == 500
    page = render_preview([("", parse_theme(EXAMPLE["theme"]))], Level.AA,
                          groups=[], others=audit.others())
    assert "500 more conferences in at least 1 other palette" in page
    assert "1 other palettes" not in page


def test_a_pair_the_theme_does_not_touch_is_not_blamed_on_it() -> None:
    audit = PlanAudit(Level.AA)
    audit.observe(_planned("a", {"light_foreground": "#FFFFFF", "light_background": "#FFFFFF",
                                 "dark_background": "#0B1220"},
                           parse_theme({"dark": {"primary": "#0A84FF"}})))
    assert (audit.checked, audit.failing) == (1, 0)


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_preview_links_nothing_and_escapes_what_the_space_says() -> None:
    theme = parse_theme(EXAMPLE["theme"])
    hostile = {"light_primary": "red;}</style><script>alert(1)</script>",
               "light_background": "#fff\"/><img src=x>", "layout": "<b>5up</b>"}
    groups = [Group(7, ("<script>alert(2)</script>",), hostile, {**hostile, **theme.as_dict()})]
    page = render_preview([("", theme)], Level.AA, groups=groups)
    parser = _Collect()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "img", "link", "iframe", "object", "embed", "base"}
    assert not any(name in ("src", "href") or (name.startswith("on"))
                   for _, attrs in parser.tags for name in attrs)
    assert "url(" not in page and "@import" not in page and "://" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert 'data-count="7"' in page


@pytest.mark.parametrize(("layout", "columns", "count"), [
    (None, 3, 6), ("1x1", 1, 1), ("2x2", 2, 4), ("10x10", 4, 16), ("5up", 4, 5),
    ("highlight-1-responsive", 3, 4), ("grid-responsive-mobile", 2, 4), ("bogus", 3, 6),
])
def test_tiles_follow_the_conference_layout(layout: str | None, columns: int,
                                            count: int) -> None:
    tiles = tiles_for(layout)
    assert (tiles.columns, len(tiles.spans)) == (columns, count)


def test_the_preview_marks_failing_pairs_and_pairs_left_to_each_room(tmp_path: Path) -> None:
    theme = parse_theme({"light": {"foreground": "#9CA3AF", "background": "#FFFFFF"}})
    page = render_preview([("", theme)], Level.AA)
    assert 'class="fail" data-mode="light" data-role="foreground"' in page
    assert "2.54:1" in page
    assert page.count('class="unset"') == 7
