"""A stable slice of the Space for one of COUNT workers (a Kubernetes Indexed Job's pods).

Every shard lists the whole Space and keeps the conferences whose id hashes to its index,
so each conference is written by exactly one shard with no coordination. The hash is
blake2b of the id's bytes: the same in every process, Python version and machine, unlike
`hash()`, which is salted per process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.errors import ConfigError
from worker.text import clipped

INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in each pod of an Indexed Job
COUNT_ENV = "REBRAND_SHARD_COUNT"


def shard_of(conference_id: str, count: int) -> int:
    """Which of `count` shards owns this id (pure, stable across processes)."""
    digest = hashlib.blake2b(conference_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def owns(self, conference: Mapping[str, Any]) -> bool:
        return shard_of(str(conference.get("id")), self.count) == self.index

    def rate_limit(self, space_limit: float) -> float:
        """This shard's share of the Space's write budget: all shards run at once."""
        return space_limit / self.count

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def resolve_shard(flag: str | None, env: Mapping[str, str]) -> Shard | None:
    """The shard from `--shard INDEX/COUNT`, either side of which may be left empty to
    take it from the environment (INDEX from JOB_COMPLETION_INDEX, COUNT from
    REBRAND_SHARD_COUNT). None when this run is not sharded."""
    index_text: str | None = None
    count_text: str | None = None
    if flag is not None:
        if flag.count("/") != 1:
            raise ConfigError(f"--shard {clipped(flag)!r}: write INDEX/COUNT, e.g. --shard 0/4")
        # Not stripped: a side is read as exactly what was typed, as the environment is.
        index_text, count_text = (part or None for part in flag.split("/"))
    # Which side the flag gave, for a message that names what to change.
    flag_index, flag_count = index_text is not None, count_text is not None
    index_text = index_text or env.get(INDEX_ENV) or None
    count_text = count_text or env.get(COUNT_ENV) or None
    if flag is None and count_text is None:
        if index_text is not None:
            # An Indexed Job without a count would have every pod write every conference.
            raise ConfigError(f"{INDEX_ENV} is set but the shard count is not: set "
                              f"{COUNT_ENV} to the Job's completions, or pass "
                              "--shard INDEX/COUNT")
        return None
    count = _whole(count_text, _source("COUNT", COUNT_ENV, count_text, flag_count), minimum=1)
    index = _whole(index_text, _source("INDEX", INDEX_ENV, index_text, flag_index), minimum=0)
    if index >= count:
        # Name what was set: an Indexed Job's pod passes no --shard at all.
        given = ([f"--shard {index if flag_index else ''}/{count if flag_count else ''}"]
                 if flag is not None else [])
        given += [f"{name}={value}" for name, value, from_flag in (
            (INDEX_ENV, index, flag_index), (COUNT_ENV, count, flag_count)) if not from_flag]
        raise ConfigError(f"{', '.join(given)}: INDEX must be below COUNT (0..{count - 1})")
    return Shard(index, count)


def _source(side: str, variable: str, text: str | None, from_flag: bool) -> str:
    """Where a side's value came from, to name in a message: the flag, the variable, or
    (when it is missing) both places it could be set."""
    if text is None:
        return f"--shard {side} (or {variable})"
    return f"--shard {side}" if from_flag else variable


# Kubernetes writes JOB_COMPLETION_INDEX in ASCII digits. int() would also read " 3 ", "+3",
# "1_0" and "٣" (any Unicode digit): a value no Job writes is a mistake to show, not guess.
_DIGITS = re.compile(r"[0-9]+")


def _whole(text: str | None, label: str, *, minimum: int) -> int:
    if text is None:
        raise ConfigError(f"{label}: missing; pass --shard INDEX/COUNT")
    if len(text.removeprefix("-")) > _MAX_DIGITS and _DIGITS.fullmatch(text.removeprefix("-")):
        raise ConfigError(f"{label}: {_quoted(text)} has more digits than any shard count")
    if text.startswith("-") and _DIGITS.fullmatch(text[1:]):
        raise ConfigError(f"{label}: {text} must be at least {minimum}")
    if _DIGITS.fullmatch(text) is None:
        how = "write it" if label.startswith("--shard") else "set it"
        raise ConfigError(f"{label}: {_quoted(text)} is not a whole number: {how} in the "
                          "digits 0-9 only, e.g. 4")
    value = int(text)
    if value < minimum:
        raise ConfigError(f"{label}: {value} must be at least {minimum}")
    return value


# More digits than any shard count; also below int()'s own limit on the length it reads.
_MAX_DIGITS = 18


def _quoted(text: str, limit: int = 40) -> str:
    """`text` quoted in ASCII, every other character as its code point (`'\\u0663'`, not a
    `'٣'` that reads as 3) and every control escaped, cut to `limit` characters."""
    return ascii(text[:limit]) + ("…" if len(text) > limit else "")
