"""Can an answer of the API be used? Pure checks of a conference as the API gave it.

PUT replaces the whole conference, and rebrand builds its body from what it read. So a
conference is written only from an answer that is the conference asked for (`id`), that
carries every property the spec requires (null is a value; a missing key is not), and
that holds no property the spec does not name, unless the operator allowed it: a body
built from it would reset that property on the Space.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.errors import ConfigError
from worker.openapi import conference_shape
from worker.text import cut

_NONE: frozenset[str] = frozenset()
# A hostile or broken answer may carry thousands of keys; a message names the first few.
_NAMED = 10
ALLOW_ENV = "REBRAND_ALLOW_FIELDS"


@dataclass(frozen=True, slots=True)
class AnswerRules:
    """The properties a conference answer may hold (`known`), must hold (`required`), and
    those the operator allowed beyond the spec (`allowed`: a PUT leaves them alone)."""

    known: frozenset[str]
    required: frozenset[str]
    allowed: frozenset[str] = _NONE

    @classmethod
    def from_spec(cls, allowed: Iterable[str] = ()) -> AnswerRules:
        """The rules of the spec rebrand carries (read from it at first use)."""
        shape = conference_shape()
        return cls(shape.known, shape.required, frozenset(allowed))

    def beyond_spec(self, conference: Mapping[str, Any]) -> frozenset[str]:
        """The properties the spec does not name, allowed ones included. Empty for nearly
        every conference, and then one C-level pass over its keys is all this costs."""
        if self.known.issuperset(conference):
            return _NONE
        return frozenset(conference.keys() - self.known)

    def problems(self, answer: Mapping[str, Any], conference_id: str,
                 what: str = "the answer") -> tuple[str, ...]:
        """Why `answer` (`what` says where it came from) cannot be used as the state of
        conference `conference_id`; empty when it can."""
        found = answer.get("id")
        if found != conference_id:
            said = ("has no id" if found is None
                    else f"is for {_short(found)}")
            return (f"id mismatch: asked for {conference_id}, {what} {said}",)
        if self.required <= answer.keys():
            return ()
        # All named: they come from the spec, so the list is short and safe to show.
        missing = sorted(self.required - answer.keys())
        return (f"{what} lacks required properties: {', '.join(missing)}",)


def allowed_fields(flags: Iterable[str] | None, env_text: str | None) -> frozenset[str]:
    """The properties the operator allowed: `--allow-field NAME` (repeatable) and
    `REBRAND_ALLOW_FIELDS=a,b`. A name that cannot be a property is an error (exit 2)."""
    names: set[str] = set()
    for source, values in (("--allow-field", list(flags or ())),
                           (ALLOW_ENV, (env_text or "").split(","))):
        for raw in values:
            name = raw.strip()
            if not name and source == ALLOW_ENV:
                continue  # `a,b,` or an empty variable: nothing named
            if not name or len(name) > 200 or any(c.isspace() or c == "," or not c.isprintable()
                                                  for c in name):
                raise ConfigError(
                    f"{source} {raw!r}: not a property name; give the name the error "
                    "message showed, e.g. --allow-field enable_live_captions (one name per "
                    f"flag, or {ALLOW_ENV}=name1,name2)"
                )
            names.add(name)
    return frozenset(names)


def split_extra(beyond: frozenset[str], allowed: frozenset[str]) -> tuple[tuple[str, ...],
                                                                          tuple[str, ...]]:
    """(unknown: not allowed, each stops the run; allowed: met and left alone), sorted."""
    return tuple(sorted(beyond - allowed)), tuple(sorted(beyond & allowed))


def unknown_property_message(unknown: tuple[str, ...], conference_id: str, name: str) -> str:
    """What the operator reads when a conference carries properties rebrand does not know:
    which, where, why writing would lose them, and how to go on."""
    one = len(unknown) == 1
    it = "it" if one else "them"
    label = f"{conference_id} ({name})" if name else conference_id
    flags = " ".join(f"--allow-field {field}" for field in unknown[:_NAMED])
    return (
        f"conference {label} carries {'a property' if one else 'properties'} that the API "
        f"spec this rebrand carries does not name: {_names(unknown)}. PUT replaces the whole "
        f"conference and rebrand sends only the properties it knows, so writing this "
        f"conference would reset {it} on the Space. Stopped before writing it. To go on, "
        f"upgrade rebrand to a version whose spec names {it} (`rebrand --version` shows "
        f"the spec this one carries); or, if you know the Space's PUT leaves {it} alone, "
        f"allow {it} with {flags} (or {ALLOW_ENV}={','.join(unknown[:_NAMED])})."
    )


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    shown = ", ".join(_short(n, 60) for n in listed[:_NAMED])
    return shown + (f" and {len(listed) - _NAMED} more" if len(listed) > _NAMED else "")


def _short(value: object, limit: int = 80) -> str:
    """`value` cut to `limit` characters; a repr is cut before an escape, never inside."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return cut(text, limit - 1, escaped=not isinstance(value, str))[0] + "…"


__all__ = ["ALLOW_ENV", "AnswerRules", "allowed_fields", "split_extra",
           "unknown_property_message"]
