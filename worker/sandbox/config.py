"""The knobs of a sandbox Space: how much data it seeds, how fast and how badly it answers.

Everything random the sandbox does derives from `SandboxConfig.seed`, so a run with the
same configuration sees the same conferences and the same injected faults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from worker.openapi import conference_shape

DEFAULT_PROJECT_ID = "sandbox-project"
# What a PUT may do to the fields its body omits (see worker.sandbox.conference).
RESET_MODES: tuple[str, ...] = ("defaults", "nulls", "keep")
NEXT_FORMS: tuple[str, ...] = ("absolute", "relative", "query")
LAST_NEXT: tuple[str, ...] = ("absent", "empty")
# A fake credential the sandbox prints on purpose so a user can export it; never a secret.
DEFAULT_API_TOKEN = "sandbox-token"  # noqa: S105


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Probabilities of injected failures, drawn per request from a seeded RNG.

    The PUT faults are tried in the order of the fields: 500, 503, 429, then
    `drop_after_apply` (the update is applied, then the connection is closed unanswered).
    """

    error_500: float = 0.0
    error_503: float = 0.0
    error_429: float = 0.0
    drop_after_apply: float = 0.0
    get_500: float = 0.0
    # Sent with injected 429s; RFC 9110 delta-seconds are whole, so this is rounded up to >= 1.
    retry_after_s: float = 1.0
    retry_after_http_date: bool = False

    def __post_init__(self) -> None:
        for name in ("error_500", "error_503", "error_429", "drop_after_apply", "get_500"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"faults.{name}: {value} is not a probability between 0 and 1")
        put_total = self.error_500 + self.error_503 + self.error_429 + self.drop_after_apply
        if put_total > 1.0:
            raise ValueError(f"faults: the PUT fault probabilities add up to {put_total}, above 1")
        if self.retry_after_s < 0:
            raise ValueError(f"faults.retry_after_s: {self.retry_after_s} must not be negative")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How a sandbox Space is seeded and how it behaves on the wire."""

    count: int = 500
    seed: int = 0
    latency_s: float = 0.0
    # A Space that queues: at most `capacity` API requests are served at once, each for
    # `latency_s`; the rest wait their turn, so latency grows with what is in flight beyond
    # it. None serves every request at once (latency stays flat however many arrive).
    capacity: int | None = None
    # None means unlimited; the default mirrors a Space's published PUT budget.
    put_rate_limit: int | None = 13_800
    rate_window_s: float = 10.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    validate: bool = True
    project_id: str = DEFAULT_PROJECT_ID
    api_token: str = DEFAULT_API_TOKEN
    on_theme_fraction: float = 0.1
    # Tests point pagination links at a foreign host, to check that the worker refuses to
    # follow a link off the Space it was given.
    links_base: str | None = None
    # The spec says only that `links.next` is a string "link to the next page". The forms
    # a Space may write it in (NEXT_FORMS): a whole URL (`absolute`), a path and query
    # (`relative`), or a query alone (`query`, resolved against the page it came on); and
    # on the last page (LAST_NEXT): no `next` at all (`absent`), or an empty string
    # (`empty`). The worker must list the same conferences under each.
    next_form: str = "absolute"
    last_next: str = "absent"
    # Whether a 429 (the rate limit's, or an injected one) says when to come back. The spec
    # documents no 429 at all; a Space may send Retry-After, or not.
    retry_after: bool = True
    # A newer Space: properties the bundled spec does not name, on every conference with
    # these values. A PUT that omits one resets it to null, as a full replacement would
    # ("reset"), or leaves it alone ("keep", what --allow-field asserts of a Space).
    extra_fields: tuple[tuple[str, Any], ...] = ()
    extra_on_put: Literal["reset", "keep"] = "reset"
    # Refuse the credentials once this many PUTs have arrived, as a token revoked mid-run.
    revoke_after_puts: int | None = None
    # What a PUT does to a writable field its body omits: "defaults", "nulls" or "keep"
    # (worker.sandbox.conference.RESET_MODES). The spec leaves it open; the worker must be
    # right under each. The default, "nulls", changes nothing a seeded conference holds
    # beyond what its PUT carries (seeds never have a null size).
    reset: str = "nulls"

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count: {self.count} must not be negative")
        if self.latency_s < 0:
            raise ValueError(f"latency_s: {self.latency_s} must not be negative")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"capacity: {self.capacity} must be at least 1 or None")
        if self.put_rate_limit is not None and self.put_rate_limit < 1:
            raise ValueError(f"put_rate_limit: {self.put_rate_limit} must be at least 1 or None")
        if self.rate_window_s <= 0:
            raise ValueError(f"rate_window_s: {self.rate_window_s} must be positive")
        for name, allowed in (("reset", RESET_MODES), ("next_form", NEXT_FORMS),
                              ("last_next", LAST_NEXT)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: {getattr(self, name)!r} is not one of "
                                 f"{', '.join(allowed)}")
        if not 0.0 <= self.on_theme_fraction <= 1.0:
            raise ValueError(f"on_theme_fraction: {self.on_theme_fraction} is not between 0 and 1")
        names = [name for name, _ in self.extra_fields]
        for name in names:
            if name in conference_shape().known:
                raise ValueError(f"extra field {name}: the spec already names it; "
                                 "an extra field plays a property the spec does not know")
            if names.count(name) > 1:
                raise ValueError(f"extra field {name}: given twice; give it once")
        if self.extra_on_put not in ("reset", "keep"):
            raise ValueError(f"extra_on_put: {self.extra_on_put!r} is not reset or keep")
