"""The PUT body builder: every writable field kept, nothing else sent, always valid.

The property runs over conferences generated to satisfy the published `Video.Conference`
schema (nulls, unicode, meta, active sessions) and checks each body against the
published `Video.UpdateConferenceRequest`, closed schema and formats included.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.body import (
    WRITABLE_FIELDS,
    build_put_body,
    describe_mismatches,
    echo_mismatches,
    writable_state,
)
from worker.decide import Retheme, Skip, Write, color_changes, same_writable_state
from worker.outcome import Change, Kind
from worker.sandbox.spec import spec_document
from worker.theme import COLOR_FIELDS, Theme, parse_theme

DOCUMENT = spec_document()
SCHEMAS = DOCUMENT["components"]["schemas"]
SERVER_OWNED = ("id", "name", "meta", "created_at", "updated_at", "active_session")


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


UPDATE = validator("Video.UpdateConferenceRequest")
CONFERENCE = validator("Video.Conference")


# Strategies: conferences as the API serves them


def enum(name: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(SCHEMAS[name]["enum"])


hex_color = st.text("0123456789abcdefABCDEF", min_size=6, max_size=6).map(lambda s: "#" + s)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                        timezones=st.just(UTC))


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    moment = draw(instants)
    form = draw(st.sampled_from(["z", "micro", "offset"]))
    if form == "z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == "micro":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    hours = draw(st.integers(-12, 14))
    return moment.astimezone(timezone(timedelta(hours=hours))).isoformat()


json_leaf = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
meta = st.none() | st.dictionaries(st.text(max_size=12), json_value, max_size=4)
# What the API stores came through its own write schema: display names of at most 200
# characters, descriptions of at most 3000, colors as #RRGGBB.
display_name = st.none() | st.text(min_size=1, max_size=200)
description = st.none() | st.text(max_size=400)
active_session = st.fixed_dictionaries(
    {"id": st.uuids().map(str)},
    optional={"name": st.text(max_size=20), "max_members": st.integers(1, 100),
              "fps": st.sampled_from([20, 30]), "quality": enum("Video.VideoQuality"),
              "start_time": rfc3339()},
)


@st.composite
def conferences(draw: st.DrawFn) -> dict[str, Any]:
    conference: dict[str, Any] = {
        "id": str(draw(st.uuids(version=4))),
        "name": draw(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                             min_size=1, max_size=60)),
        "display_name": draw(display_name),
        "description": draw(description),
        "join_from": draw(st.none() | rfc3339()),
        "join_until": draw(st.none() | rfc3339()),
        "quality": draw(enum("Video.VideoQuality")),
        "layout": draw(enum("Video.VideoLayout")),
        "size": draw(st.none() | enum("Video.ConferenceSize")),
        "record_on_start": draw(st.booleans()),
        "tone_on_entry_and_exit": draw(st.booleans()),
        "user_join_video_off": draw(st.booleans()),
        "room_join_video_off": draw(st.booleans()),
        "enable_chat": draw(st.booleans()),
        "enable_room_previews": draw(st.none() | st.booleans()),
        **{field: draw(st.none() | hex_color) for field in COLOR_FIELDS},
        "meta": draw(meta),
        "created_at": draw(rfc3339()),
        "updated_at": draw(rfc3339()),
    }
    if draw(st.booleans()):
        conference["active_session"] = draw(active_session)
    return conference


themes = st.dictionaries(st.sampled_from(COLOR_FIELDS), hex_color, min_size=1).map(
    lambda colors: Theme(tuple((f, colors[f]) for f in COLOR_FIELDS if f in colors))
)


# The property


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(conferences(), themes)
def test_body_keeps_every_non_null_writable_field_and_validates_against_the_spec(
    conference: dict[str, Any], theme: Theme
) -> None:
    CONFERENCE.validate(conference)  # the strategy is honest
    body = build_put_body(conference, theme)

    errors = sorted(UPDATE.iter_errors(body), key=str)
    assert not errors, [e.message for e in errors]
    assert set(body) <= set(WRITABLE_FIELDS)
    assert not set(body) & set(SERVER_OWNED)
    assert None not in body.values()
    colors = theme.as_dict()
    for field in WRITABLE_FIELDS:
        if field in colors:
            assert body[field] == colors[field]
        elif conference[field] is not None:
            assert body[field] == conference[field], field
        elif field != "display_name":
            assert field not in body, field
    if conference["display_name"] is None:
        assert body["display_name"] == conference["name"]


@given(conferences(), themes)
def test_body_builder_leaves_its_input_alone(conference: dict[str, Any], theme: Theme) -> None:
    before = copy.deepcopy(conference)
    build_put_body(conference, theme)
    assert conference == before


def test_writable_fields_are_exactly_the_update_schema_properties() -> None:
    published = tuple(SCHEMAS["Video.UpdateConferenceRequest"]["properties"])
    assert set(WRITABLE_FIELDS) == set(published)
    assert len(WRITABLE_FIELDS) == len(published)
    assert SCHEMAS["Video.UpdateConferenceRequest"]["required"] == ["display_name"]
    assert SCHEMAS["Video.UpdateConferenceRequest"]["unevaluatedProperties"] == {"not": {}}


def test_server_owned_fields_are_not_in_the_update_schema() -> None:
    conference_fields = set(SCHEMAS["Video.Conference"]["properties"])
    assert conference_fields - set(WRITABLE_FIELDS) == set(SERVER_OWNED)


def test_a_body_with_a_null_or_a_server_field_would_be_refused_by_the_spec() -> None:
    # The reason nulls and read-only fields are dropped: the closed schema refuses them.
    assert not UPDATE.is_valid({"display_name": "x", "description": None})
    assert not UPDATE.is_valid({"display_name": "x", "meta": {}})
    assert not UPDATE.is_valid({"description": "no display name"})
    assert UPDATE.is_valid({"display_name": "x"})


def test_display_name_falls_back_to_name_only_when_null() -> None:
    assert writable_state({"name": "room_1", "display_name": None})["display_name"] == "room_1"
    assert writable_state({"name": "room_1", "display_name": ""})["display_name"] == ""
    assert writable_state({"name": "room_1", "display_name": "Room"})["display_name"] == "Room"


def test_falsy_values_are_kept_not_dropped() -> None:
    state = writable_state({"name": "n", "display_name": "d", "record_on_start": False,
                            "description": "", "enable_room_previews": None})
    assert state == {"display_name": "d", "record_on_start": False, "description": ""}


# Checking the PUT's answer


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        ("2022-01-01", "2022-01-01T00:00:00Z"),
        ("2022-01-01T00:00:00Z", "2022-01-01T00:00:00.000000Z"),
        ("2022-01-01T02:30:00+02:30", "2022-01-01T00:00:00Z"),
        ("2021-12-31T19:00:00-05:00", "2022-01-01T00:00:00Z"),
        ("2022-01-01T00:00:00", "2022-01-01T00:00:00Z"),
        ("2022-01-01t00:00:00z", "2022-01-01T00:00:00Z"),
    ],
)
def test_equal_instants_in_different_forms_are_not_a_mismatch(sent: str, answer: str) -> None:
    assert echo_mismatches({"join_from": sent}, {"join_from": answer}) == ()
    assert echo_mismatches({"join_until": sent}, {"join_until": answer}) == ()


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        ("2022-01-01", "2022-01-02T00:00:00Z"),
        ("2022-01-01T00:00:01Z", "2022-01-01T00:00:00Z"),
        ("2022-01-01T00:00:00+01:00", "2022-01-01T00:00:00Z"),
    ],
)
def test_different_instants_are_a_mismatch(sent: str, answer: str) -> None:
    assert echo_mismatches({"join_from": sent}, {"join_from": answer}) == ("join_from",)


def test_color_case_is_not_a_mismatch_but_a_different_color_is() -> None:
    sent = {"light_primary": "#0a84ff", "dark_primary": "#0A84FF"}
    assert echo_mismatches(sent, {"light_primary": "#0A84FF", "dark_primary": "#0a84ff"}) == ()
    assert echo_mismatches(sent, {"light_primary": "#0A84FE", "dark_primary": "#0A84FF"}) == (
        "light_primary",)


def test_case_matters_outside_colors_and_missing_fields_are_mismatches() -> None:
    sent = {"display_name": "Room", "description": "x", "enable_chat": False}
    answer = {"display_name": "ROOM", "enable_chat": False}
    assert echo_mismatches(sent, answer) == ("display_name", "description")


def test_only_fields_sent_are_checked() -> None:
    assert echo_mismatches({"display_name": "a"}, {"display_name": "a", "size": "large"}) == ()


# The decision built on the body


BRAND_PRIMARY = parse_theme({"light": {"primary": "#0A84FF"}, "dark": {"primary": "#0A84FF"}})


def test_a_conference_already_wearing_the_theme_in_lower_case_is_skipped() -> None:
    listed = {"id": "c", "name": "n", "light_primary": "#0a84ff", "dark_primary": "#0A84ff"}
    assert Retheme(BRAND_PRIMARY).quick(listed) == Skip(Kind.UNCHANGED)


def test_the_decision_is_taken_on_the_fresh_read_not_the_listing() -> None:
    listed = {"id": "c", "name": "n", "display_name": "old", "light_primary": "#000000",
              "dark_primary": None}
    fresh = {**listed, "display_name": "edited since listing"}
    decision = Retheme(BRAND_PRIMARY).decide(listed, fresh)
    assert isinstance(decision, Write)
    assert decision.body["display_name"] == "edited since listing"
    assert decision.must_take == ("light_primary", "dark_primary")
    assert decision.changes == (Change("light_primary", "#000000", "#0A84FF"),
                                Change("dark_primary", None, "#0A84FF"))
    themed_since = {**listed, "light_primary": "#0A84FF", "dark_primary": "#0a84ff"}
    assert Retheme(BRAND_PRIMARY).decide(listed, themed_since) == Skip(Kind.UNCHANGED)


def test_color_changes_lists_only_differing_colors() -> None:
    conference = {"light_primary": "#0a84ff", "dark_primary": "#111111"}
    assert color_changes(conference, BRAND_PRIMARY) == (
        Change("dark_primary", "#111111", "#0A84FF"),)


def test_same_writable_state_counts_nulls_and_normalises_forms() -> None:
    a = {"name": "n", "display_name": "d", "join_from": "2022-01-01", "light_primary": "#abcdef"}
    b = {**a, "join_from": "2022-01-01T00:00:00Z", "light_primary": "#ABCDEF", "meta": {"x": 1}}
    assert same_writable_state(a, b)
    assert not same_writable_state(a, {**b, "description": "set"})
    assert not same_writable_state({**a, "description": "set"}, b)


# Every backslash starts a whole escape, as JSON writes them: \uNNNN, or \\, \n, \".
_WHOLE_JSON_ESCAPES = re.compile(r'(?:\\(?:u[0-9a-f]{4}|[^u])|[^\\])*')


@pytest.mark.parametrize("tail", ["\x1b[2J" * 10, '"\\' * 20])
def test_a_mismatch_is_described_with_its_value_cut_before_an_escape_never_inside(
    tail: str,
) -> None:
    """Wherever the cut falls, the value shown holds whole JSON escapes only: half of
    `\\u001b` reads as garbage, and its backslash escapes the `…`."""
    lengths = set()
    for pad in range(45, 60):
        sent = {"description": "x" * pad + tail}
        text = describe_mismatches(sent, {}, ("description",))
        shown = text.removeprefix("description: sent ").removesuffix(", the answer lacks it")
        assert _WHOLE_JSON_ESCAPES.fullmatch(shown.removesuffix("…")), shown
        assert len(shown) <= 60
        lengths.add(len(shown))
    assert min(lengths) < 60  # some cut fell inside an escape, which went whole
