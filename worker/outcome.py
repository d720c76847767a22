"""What happened to one conference, and what happened to the run.

Values only: the pipeline produces Outcomes, the reporter counts and logs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    VANISHED = "vanished"
    FAILED = "failed"
    PLANNED = "planned"
    CONFLICT = "conflict"
    EXCLUDED = "excluded"
    # Its PUT was sent, but the run ended before the answer came: it may have landed.
    UNKNOWN = "unknown"

    # Enum's own hash is a Python call (hash of the name); the reporter hashes a kind
    # several times per conference (counts, the sets of kinds). Members are singletons
    # compared by identity, so identity's hash, in C, is as good.
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class Change:
    """One color that would change (or did): for plans and their tables."""

    field: str
    old: str | None
    new: str


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Kind
    conference_id: str
    name: str
    attempts: int = 0
    status: int | None = None
    errors: tuple[str, ...] = ()
    # Fields the PUT's answer did not show as sent (reported, not retried).
    mismatched: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    updated_at: str | None = None
    # Properties the spec does not name that this conference's answers held: `unknown`
    # ones stop the run before its PUT; `allowed` ones the operator let through.
    unknown: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    # The rule that decided it, when the config has rules (worker.rules).
    rule: str | None = None
    # The conference's colors and layout before the change (plans and updates): what
    # the contrast audit merges the theme over, and what the preview draws as "before".
    before: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Summary:
    listed: int
    updated: int
    unchanged: int
    vanished: int
    failed: int
    retries: int
    duration_s: float
    updates_per_s: float
    planned: int = 0
    conflict: int = 0
    excluded: int = 0
    not_started: int = 0
    # PUTs sent whose answer never came (the run was cut short): each may have landed.
    unknown: int = 0
    throttled: int = 0
    effective_rate: float | None = None
    stopped: str | None = None
    # Properties beyond the spec that the run met: those that stopped it, and those the
    # operator allowed (each left out of every PUT, kept in the journal's pre-images).
    unknown_fields: tuple[str, ...] = ()
    allowed_fields: tuple[str, ...] = ()
    # Conferences in flight: where the run settled, and its range (one value if pinned).
    concurrency: int | None = None
    concurrency_min: int | None = None
    concurrency_max: int | None = None
    # Restore: journal records dropped because the journal's last line was torn.
    journal_dropped: int = 0
