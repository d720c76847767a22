"""The schema checker of `validate --online` agrees with jsonschema on the spec's answer
schemas, knows every keyword they use, and names what is wrong and where."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import whole_conference
from worker import conformance
from worker.openapi import CONFERENCE_SCHEMA, LIST_SCHEMA, document
from worker.sandbox.data import seed_conferences

CID = "0b6c2f5e-0000-4000-8000-000000000001"
SEEDED = list(seed_conferences(200, 7, 0.1).values())


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": document()["components"]}
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


CONFERENCE = validator(CONFERENCE_SCHEMA)


@pytest.mark.parametrize("name", [CONFERENCE_SCHEMA, LIST_SCHEMA])
def test_the_checker_knows_every_keyword_the_answer_schemas_use(name: str) -> None:
    assert conformance.keywords(name) <= conformance.SUPPORTED


def test_a_keyword_it_does_not_know_is_an_error_not_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = copy.deepcopy(dict(document()["components"]["schemas"]))
    changed[CONFERENCE_SCHEMA]["properties"]["name"]["pattern"] = "^[a-z]+$"
    monkeypatch.setattr(conformance, "schemas", lambda: changed)
    with pytest.raises(conformance.UnsupportedSchemaError, match="pattern"):
        conformance.problems(whole_conference(CID), CONFERENCE_SCHEMA)


def test_every_seeded_conference_and_a_whole_page_conform() -> None:
    assert all(conformance.problems(c, CONFERENCE_SCHEMA) == [] for c in SEEDED)
    page = {"links": {"self": "https://x/a", "first": "https://x/a", "next": "https://x/b"},
            "data": SEEDED}
    assert conformance.problems(page, LIST_SCHEMA) == []


def test_each_problem_names_the_property_and_what_is_wrong() -> None:
    broken = whole_conference(CID, size="huge", light_primary=5, enable_chat=None,
                              created_at="yesterday", enable_live_captions=True, meta=[1])
    del broken["name"]
    assert conformance.problems(broken, CONFERENCE_SCHEMA) == [
        "name: missing (the spec requires it)",
        "size: 'huge' is not one of 'small', 'medium', 'large' or null",
        "enable_chat: null is not a boolean",
        "light_primary: 5 is not a string or null",
        "meta: an array is not an object or null",
        "created_at: 'yesterday' is not a date-time",
        "enable_live_captions: not in the spec",
    ]


def test_a_page_problem_says_which_item() -> None:
    page = {"links": {"self": "a"}, "data": [whole_conference(CID), {"id": CID, "x": 1}]}
    found = conformance.problems(page, LIST_SCHEMA)
    assert "links.first: missing (the spec requires it)" in found
    assert "data[1].x: not in the spec" in found
    assert "data[1].name: missing (the spec requires it)" in found


def test_a_flood_of_problems_is_cut_short() -> None:
    page = {"links": {"self": "a", "first": "a"}, "data": [{"junk": i} for i in range(10_000)]}
    assert len(conformance.problems(page, LIST_SCHEMA)) == conformance.MAX_PROBLEMS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["#0A84FF", "720p", "grid-responsive", "medium", "2022-01-01T00:00:00Z",
                       CID, "not-a-date"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)
FIELDS = sorted({*whole_conference(CID), "enable_live_captions", "active_session"})


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    conference = dict(draw(st.sampled_from(SEEDED)))
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            conference.pop(field, None)
        else:
            conference[field] = draw(json_values)
    return conference


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated())
def test_it_finds_a_problem_exactly_when_jsonschema_does(conference: dict[str, Any]) -> None:
    ours = conformance.problems(conference, CONFERENCE_SCHEMA)
    theirs = list(CONFERENCE.iter_errors(conference))
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])


@pytest.mark.parametrize(("session", "valid"), [
    ({"id": "s", "duration": 120.0, "max_members": 20.0, "fps": 20.0}, True),
    ({"id": "s", "remove_after_seconds_elapsed": 1.0}, True),
    ({"id": "s", "duration": 120.5}, False),
    ({"id": "s", "max_members": True}, False),
], ids=["whole-floats", "one-float", "fraction", "boolean"])
def test_an_integer_written_as_a_float_is_an_integer_as_json_schema_says(
    session: dict[str, Any], valid: bool
) -> None:
    # JSON Schema's `integer` is any number with no fractional part: a Space (or a JSON
    # library) writing 120 as 120.0 has not drifted from the spec.
    conference = whole_conference(CID, active_session=session)
    assert (list(CONFERENCE.iter_errors(conference)) == []) == valid
    found = conformance.problems(conference, CONFERENCE_SCHEMA)
    assert (found == []) == valid, found
