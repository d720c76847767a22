"""The API spec rebrand carries, and what it says a conference is.

`openapi.yaml` beside this module is the Video Conferences part of SignalWire's published
OpenAPI document. The properties rebrand knows, and those every answer must carry, are
read from it at first use, never from a second list kept by hand: a spec update is one
file, and what rebrand checks follows it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

CONFERENCE_SCHEMA = "Video.Conference"
LIST_SCHEMA = "Video.ListConferencesResponse"
# Where the bundled file was cut from, and the digest of the file as cut. A spec update
# changes the file; tests/test_openapi.py then fails until both lines are updated with it,
# so `rebrand --version` never names the wrong source.
SOURCE = "signalwire/docs@668371b2 fern/apis/signalwire-rest/openapi.yaml (2026-08-21)"
SOURCE_SHA256 = "2c750bd89ddedab7ffde8826784d0aaf2507c96a3cfbd84b95a87092827a0faa"


def _text() -> bytes:
    return files("worker").joinpath("openapi.yaml").read_bytes()


@functools.cache
def document() -> Mapping[str, Any]:
    """The parsed document, shared: read-only by convention (copy it before changing it)."""
    # libyaml's loader reads it in ~10 ms, the pure-Python one in ~100 ms.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    parsed: dict[str, Any] = yaml.load(_text(), Loader=loader)  # noqa: S506 - a safe loader
    return parsed


def schemas() -> Mapping[str, Any]:
    """The document's component schemas by name."""
    found: Mapping[str, Any] = document()["components"]["schemas"]
    return found


@dataclass(frozen=True, slots=True)
class ConferenceShape:
    """What the spec says a conference answer holds: every property it names (`known`),
    and those it must always carry (`required`; null is a value, a missing key is not)."""

    known: frozenset[str]
    required: frozenset[str]


@functools.cache
def conference_shape() -> ConferenceShape:
    conference = schemas()[CONFERENCE_SCHEMA]
    return ConferenceShape(frozenset(conference["properties"]),
                           frozenset(conference.get("required", ())))


def spec_version() -> str:
    """One line naming the spec this rebrand carries, for `rebrand --version`."""
    digest = hashlib.sha256(_text()).hexdigest()
    version = document()["info"]["version"]
    origin = SOURCE if digest == SOURCE_SHA256 else "modified locally"
    return f"SignalWire Video Conferences API {version}, {origin}, sha256 {digest[:12]}"


__all__ = [
    "CONFERENCE_SCHEMA",
    "LIST_SCHEMA",
    "SOURCE",
    "SOURCE_SHA256",
    "ConferenceShape",
    "conference_shape",
    "document",
    "schemas",
    "spec_version",
]
