"""The theme: which colors to set, read strictly, matched case-insensitively."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import BRAND
from worker.decide import color_changes
from worker.errors import ConfigError
from worker.theme import COLOR_FIELDS, Theme, is_color, parse_theme, wears_theme

hex_color = st.text("0123456789abcdefABCDEF", min_size=6, max_size=6).map(lambda s: "#" + s)


def test_color_fields_are_the_ten_mode_role_pairs() -> None:
    assert len(COLOR_FIELDS) == 10
    assert set(COLOR_FIELDS) == {
        f"{mode}_{role}" for mode in ("light", "dark")
        for role in ("primary", "background", "foreground", "success", "negative")
    }


@pytest.mark.parametrize("value", ["#0A84FF", "#0a84ff", "#000000", "#FfFfFf"])
def test_rrggbb_is_a_color(value: str) -> None:
    assert is_color(value)


@pytest.mark.parametrize(
    "value", ["#12345", "#1234567", "0A84FF", "#GGGGGG", "#0A84FF\n", " #0A84FF", "", None, 0]
)
def test_anything_else_is_not_a_color(value: object) -> None:
    assert not is_color(value)


def test_a_full_theme_names_all_ten_fields_in_field_order() -> None:
    theme = parse_theme(BRAND)
    assert [f for f, _ in theme.colors] == list(COLOR_FIELDS)
    assert theme.as_dict()["dark_background"] == "#0B1220"
    assert theme.as_config() == BRAND


def test_a_partial_theme_names_only_its_colors() -> None:
    theme = parse_theme({"light": {"primary": "#0A84FF"}})
    assert theme.colors == (("light_primary", "#0A84FF"),)
    assert theme.as_config() == {"light": {"primary": "#0A84FF"}}


def test_a_mode_left_null_is_skipped() -> None:
    assert parse_theme({"light": None, "dark": {"success": "#22C55E"}}).as_dict() == {
        "dark_success": "#22C55E"}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"light": {"primary": "#12345"}}, "theme.light.primary"),
        ({"dark": {"negative": "red"}}, "theme.dark.negative"),
        ({"dark": {"accent": "#000000"}}, "theme.dark.accent"),
        ({"dim": {"primary": "#000000"}}, "theme.dim"),
        ({"light": ["#000000"]}, "theme.light"),
        ({}, "theme"),
        ("#000000", "theme"),
    ],
)
def test_a_bad_theme_names_the_key(raw: object, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_theme(raw)
    assert str(caught.value).startswith(f"{key}:")


@given(st.dictionaries(st.sampled_from(COLOR_FIELDS), hex_color, min_size=1))
def test_wears_theme_ignores_case(colors: dict[str, str]) -> None:
    theme = Theme(tuple(colors.items()))
    assert wears_theme({f: v.lower() for f, v in colors.items()}, theme)
    assert wears_theme({f: v.upper() for f, v in colors.items()}, theme)


@given(st.dictionaries(st.sampled_from(COLOR_FIELDS), hex_color, min_size=1),
       st.data())
def test_one_differing_or_null_color_means_not_wearing_the_theme(
    colors: dict[str, str], data: st.DataObject
) -> None:
    theme = Theme(tuple(colors.items()))
    field = data.draw(st.sampled_from(sorted(colors)))
    other = data.draw(hex_color.filter(lambda c: c.upper() != colors[field].upper()) | st.none())
    conference: dict[str, str | None] = {**colors, field: other}
    assert not wears_theme(conference, theme)


def test_wears_theme_looks_only_at_the_theme_colors() -> None:
    theme = parse_theme({"light": {"primary": "#0A84FF"}})
    assert wears_theme({"light_primary": "#0a84ff", "dark_primary": None}, theme)
    assert not wears_theme({"dark_primary": "#0A84FF"}, theme)


@given(st.dictionaries(st.sampled_from(COLOR_FIELDS), hex_color, min_size=1),
       st.dictionaries(st.sampled_from(COLOR_FIELDS),
                       hex_color | hex_color.map(str.lower) | st.none() | st.just(7)))
def test_a_conference_wears_the_theme_exactly_when_no_color_would_change(
    colors: dict[str, str], conference: dict[str, object]
) -> None:
    """The run decides `unchanged` from color_changes alone: it must agree with
    wears_theme on every conference, whatever case, nulls or junk it holds."""
    theme = Theme(tuple(colors.items()))
    for seen in (conference, {**conference, **colors},
                 {**conference, **{f: v.lower() for f, v in colors.items()}}):
        assert (color_changes(seen, theme) == ()) == wears_theme(seen, theme)


@pytest.mark.parametrize("value", [" #0A84FF", "#0a84ff ", "#0A84FF\n", "\t#0A84FF"])
def test_a_color_with_spaces_around_it_says_to_remove_them(value: str) -> None:
    # The API takes #RRGGBB and nothing else, so the spaces are refused, not stripped:
    # the message names the trouble and the value to write instead.
    with pytest.raises(ConfigError) as caught:
        parse_theme({"light": {"primary": value}})
    message = str(caught.value)
    assert message.startswith("theme.light.primary: ")
    assert f'remove the spaces around it: write "{value.strip().upper()}"' in message
