"""The published OpenAPI document (worker/openapi.yaml), as the sandbox serves it, and what
it says about fields.

The field sets and reset defaults of a PUT are read from the document rather than
written out again, so the sandbox follows the spec it validates against.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from worker import openapi

UPDATE_SCHEMA = "Video.UpdateConferenceRequest"
CREATE_SCHEMA = "Video.CreateConferenceRequest"
CONFERENCE_SCHEMA = openapi.CONFERENCE_SCHEMA


@functools.cache
def _loaded() -> dict[str, Any]:
    # The sandbox's own copy: the lower-casing below must not reach the worker's.
    document: dict[str, Any] = copy.deepcopy(dict(openapi.document()))
    # openapi-core 0.23 matches the scheme name case-sensitively, but HTTP auth schemes are
    # case-insensitive (RFC 9110 §11.1): lower-case the loaded copy, never the file.
    for scheme in document["components"]["securitySchemes"].values():
        scheme["scheme"] = scheme["scheme"].lower()
    return document


def spec_document() -> dict[str, Any]:
    """A private deep copy of the document, safe to hand to a library that may mutate it."""
    return copy.deepcopy(_loaded())


def schema(name: str) -> dict[str, Any]:
    """One component schema, read-only by convention (it is shared)."""
    found: dict[str, Any] = _loaded()["components"]["schemas"][name]
    return found


def properties(name: str) -> tuple[str, ...]:
    """The property names of a component schema, in the document's order."""
    return tuple(schema(name)["properties"])


def defaults(name: str) -> dict[str, Any]:
    """The `default` of each property of a component schema that declares one."""
    return {
        key: prop["default"]
        for key, prop in schema(name)["properties"].items()
        if "default" in prop
    }


def nullable(name: str) -> frozenset[str]:
    """The properties of a component schema whose `anyOf` admits null."""
    found = set()
    for key, prop in schema(name)["properties"].items():
        if any(option.get("type") == "null" for option in prop.get("anyOf", ())):
            found.add(key)
    return frozenset(found)


def booleans(name: str) -> frozenset[str]:
    """The properties of a component schema typed plainly as boolean."""
    return frozenset(
        key for key, prop in schema(name)["properties"].items() if prop.get("type") == "boolean"
    )


def enum(name: str) -> tuple[str, ...]:
    """The values of an enum component schema."""
    return tuple(schema(name)["enum"])
