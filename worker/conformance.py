"""Does a value conform to a schema of the bundled spec? For `rebrand validate --online`.

A small checker of the JSON Schema keywords the spec's answer schemas use (`type`,
`anyOf`, `allOf`, `$ref`, `enum`, `format`, `properties`, `required`, `items`,
`unevaluatedProperties`), so the image needs no schema library. It reports every problem
with the path to it. A keyword it does not know is an error, not a pass: a spec update
that brings one fails tests/test_conformance.py instead of checking less in silence.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from worker.openapi import schemas

# Keywords that only describe: they never make a value wrong.
_ANNOTATIONS = frozenset({"description", "examples", "title", "default", "deprecated"})
SUPPORTED = frozenset({"$ref", "type", "anyOf", "allOf", "enum", "format", "properties",
                       "required", "items", "unevaluatedProperties", "not"}) | _ANNOTATIONS
_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}
_INT32 = (-(2**31), 2**31 - 1)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z",
                      re.ASCII)
# Enough to read the problem; a hostile answer may hold a great many.
MAX_PROBLEMS = 50


class UnsupportedSchemaError(Exception):
    """The spec uses a keyword this checker does not know."""


def problems(value: Any, schema_name: str) -> list[str]:
    """Every way `value` breaks the named component schema, each as `path: what`."""
    found: list[str] = []
    _check(value, schemas()[schema_name], "", found)
    return found[:MAX_PROBLEMS]


def keywords(schema_name: str) -> frozenset[str]:
    """Every keyword used by the named schema and the schemas it refers to."""
    seen: set[str] = set()
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, Mapping):
            return
        for key, sub in node.items():
            used.add(key)
            if key == "$ref":
                name = _ref_name(sub)
                if name not in seen:
                    seen.add(name)
                    walk(schemas()[name])
            elif key == "properties":
                for prop in sub.values():
                    walk(prop)
            elif key not in _ANNOTATIONS and key not in ("required", "enum"):
                walk(sub)

    walk(schemas()[schema_name])
    return frozenset(used)


def _ref_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise UnsupportedSchemaError(f"$ref {ref!r} is not a component schema")
    return ref[len(prefix):]


def _check(value: Any, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    if len(out) >= MAX_PROBLEMS:
        return
    unknown = schema.keys() - SUPPORTED
    if unknown:
        raise UnsupportedSchemaError(f"schema keywords {sorted(unknown)} at {path or '(root)'}")
    if "$ref" in schema:
        _check(value, schemas()[_ref_name(schema["$ref"])], path, out)
    for sub in schema.get("allOf", ()):
        _check(value, sub, path, out)
    if "anyOf" in schema:
        _any_of(value, schema["anyOf"], path, out)
    if "not" in schema and not schema["not"]:
        out.append(f"{path or '(root)'}: not allowed here")  # `not: {}` refuses anything
    if "type" in schema and not _is_type(value, schema["type"]):
        out.append(f"{path or '(root)'}: {_describe(value)} is not {_a(schema['type'])}")
        return  # the other keywords would only repeat it
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(map(repr, schema["enum"]))
        out.append(f"{path or '(root)'}: {_describe(value)} is not one of {allowed}")
    if "format" in schema and not _has_format(value, schema["format"]):
        out.append(f"{path or '(root)'}: {_describe(value)} is not a {schema['format']}")
    if isinstance(value, dict):
        _object(value, schema, path, out)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{index}]", out)


def _any_of(value: Any, options: list[Mapping[str, Any]], path: str, out: list[str]) -> None:
    reasons: list[str] = []
    for option in options:
        attempt: list[str] = []
        _check(value, option, path, attempt)
        if not attempt:
            return
        reasons.append(attempt[0])
    if len(reasons) == 1:
        out.append(reasons[0])
        return
    wanted = " or ".join(_option_name(o) for o in options)
    out.append(f"{path or '(root)'}: {_describe(value)} is not {wanted}")


def _option_name(option: Mapping[str, Any]) -> str:
    if "$ref" in option:
        target = schemas()[_ref_name(option["$ref"])]
        if "enum" in target:
            return "one of " + ", ".join(map(repr, target["enum"]))
        return _ref_name(option["$ref"])
    if "type" in option:
        return _a(option["type"]) + (f" ({option['format']})" if "format" in option else "")
    return "the schema"


def _object(value: dict[str, Any], schema: Mapping[str, Any], path: str,
            out: list[str]) -> None:
    props: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            out.append(f"{_join(path, name)}: missing (the spec requires it)")
    for name, sub in props.items():
        if name in value:
            _check(value[name], sub, _join(path, name), out)
    closed = schema.get("unevaluatedProperties")
    if closed is None or closed == {}:
        return  # open: any further property is fine (`meta`)
    if closed != {"not": {}}:
        raise UnsupportedSchemaError(f"unevaluatedProperties {closed!r} at {path or '(root)'}")
    for name in sorted(value.keys() - props.keys()):
        out.append(f"{_join(path, name)}: not in the spec")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is_type(value: Any, kind: str | list[str]) -> bool:
    kinds = [kind] if isinstance(kind, str) else kind
    for one in kinds:
        if one not in _TYPES:
            raise UnsupportedSchemaError(f"type {one!r}")
        # JSON has no separate boolean-as-number: True is not an integer here.
        if isinstance(value, bool) and one in ("integer", "number"):
            continue
        if isinstance(value, _TYPES[one]):
            return True
        # JSON Schema's integer is a number with no fractional part, however it is written:
        # `120.0` is one (2020-12, section 6.1.1 of the validation vocabulary).
        if one == "integer" and isinstance(value, float) and value.is_integer():
            return True
    return False


def _has_format(value: Any, fmt: str) -> bool:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return True  # a format constrains only its own type; `type` checks the rest
    if fmt == "date-time" and isinstance(value, str):
        return _is_datetime(value)
    if fmt == "uuid" and isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True
    if fmt == "int32" and isinstance(value, int):
        return _INT32[0] <= value <= _INT32[1]
    return True  # formats are annotations unless known (JSON Schema 2020-12)


def _is_datetime(text: str) -> bool:
    """RFC 3339 `date-time`: the shape by the RFC's grammar, the values by the calendar
    (a leap second's `60` is allowed)."""
    if not _RFC3339.match(text):
        return False
    try:
        datetime.fromisoformat(text[:17] + ("59" if text[17:19] == "60" else text[17:19])
                               + text[19:].upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _a(kind: str | list[str]) -> str:
    kinds = [kind] if isinstance(kind, str) else kind
    return " or ".join("null" if k == "null" else ("an " if k[0] in "aeiou" else "a ") + k
                       for k in kinds)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


__all__ = ["MAX_PROBLEMS", "SUPPORTED", "UnsupportedSchemaError", "keywords", "problems"]
