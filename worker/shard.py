"""A stable slice of the Space for one of COUNT workers (a Kubernetes Indexed Job's pods).

Every shard lists the whole Space and keeps the conferences whose id hashes to its index,
so each conference is written by exactly one shard with no coordination. The hash is
blake2b of the id's bytes: the same in every process, Python version and machine, unlike
`hash()`, which is salted per process.
"""

from __future__ import annotations

import hashlib
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
        index_text, count_text = (part.strip() or None for part in flag.split("/"))
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
    count = _whole(count_text, f"--shard COUNT (or {COUNT_ENV})", minimum=1)
    index = _whole(index_text, f"--shard INDEX (or {INDEX_ENV})", minimum=0)
    if index >= count:
        # Name what was set: an Indexed Job's pod passes no --shard at all.
        given = ([f"--shard {index if flag_index else ''}/{count if flag_count else ''}"]
                 if flag is not None else [])
        given += [f"{name}={value}" for name, value, from_flag in (
            (INDEX_ENV, index, flag_index), (COUNT_ENV, count, flag_count)) if not from_flag]
        raise ConfigError(f"{', '.join(given)}: INDEX must be below COUNT (0..{count - 1})")
    return Shard(index, count)


def _whole(text: str | None, label: str, *, minimum: int) -> int:
    if text is None:
        raise ConfigError(f"{label}: missing; pass --shard INDEX/COUNT")
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{label}: {clipped(text)!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{label}: {value} must be at least {minimum}")
    return value
