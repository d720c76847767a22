"""The in-memory state of one sandbox Space: its conferences, what it saw, and test hooks.

Tests read and mutate it directly, `conferences` included; the list order catches up
with direct edits the next time a page is asked for.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from typing import Any

from worker.sandbox.config import SandboxConfig
from worker.sandbox.data import seed_conferences
from worker.sandbox.paging import SortKey, sort_key

# Bounds the memory a long benchmark run spends on the request log.
REQUEST_LOG_CAP = 200_000

Conference = dict[str, Any]


class SpaceState:
    """Conferences by id, the counters the server keeps, and hooks tests can set."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        self.conferences: dict[str, Conference] = self.seed_snapshot()
        self.put_count = 0
        self.puts_applied = 0
        self.get_count = 0
        self.list_count = 0
        self.unauthorized_count = 0
        self.foreign_authorizations: list[str] = []
        # Connections closed on purpose after applying a PUT; they have no status to count.
        self.dropped_count = 0
        self.status_counts: Counter[int] = Counter()
        self.puts_by_id: Counter[str] = Counter()
        # Time each API request spent in the Space (queue and service), by whole
        # millisecond: a median for the benchmark in constant memory.
        self.latency_ms: Counter[int] = Counter()
        self.requests: list[tuple[str, str]] = []
        # Called with the page's stored conferences after it has been serialised, so a
        # test can edit or delete one "after listing" without changing the answer.
        self.after_list_page: Callable[[SpaceState, list[Conference]], None] | None = None
        # Called with (space, id, body) just before a PUT is applied.
        self.before_put: Callable[[SpaceState, str, dict[str, Any]], None] | None = None
        self._order: list[SortKey] = sorted(sort_key(c) for c in self.conferences.values())
        self._ordered_ids: set[str] = set(self.conferences)

    def seed_snapshot(self) -> dict[str, Conference]:
        """The conferences as seeded, a fresh deep copy each call.

        Regenerated from the seed rather than kept, so a 100,000-conference Space
        does not hold its data twice.
        """
        return seed_conferences(
            self.config.count,
            self.config.seed,
            self.config.on_theme_fraction,
            dict(self.config.extra_fields),
        )

    def order(self) -> list[SortKey]:
        """The sort keys of all conferences, reconciled with direct edits to `conferences`.

        A changed size is the cheap sign of a direct add or delete; a page skips keys whose
        conference is gone, so only additions strictly need the reconciliation.
        """
        if len(self._ordered_ids) != len(self.conferences):
            self._reconcile()
        return self._order

    def add(self, conference: Conference) -> None:
        conference_id = conference["id"]
        self.conferences[conference_id] = conference
        if conference_id not in self._ordered_ids:
            bisect.insort(self._order, sort_key(conference))
            self._ordered_ids.add(conference_id)

    def remove(self, conference_id: str) -> bool:
        conference = self.conferences.pop(conference_id, None)
        if conference is None:
            return False
        key = sort_key(conference)
        index = bisect.bisect_left(self._order, key)
        if index < len(self._order) and self._order[index] == key:
            del self._order[index]
            self._ordered_ids.discard(conference_id)
        return True

    def record(self, method: str, path_qs: str) -> None:
        if len(self.requests) < REQUEST_LOG_CAP:
            self.requests.append((method, path_qs))

    def record_latency(self, seconds: float) -> None:
        self.latency_ms[int(seconds * 1000)] += 1

    def stats(self) -> dict[str, Any]:
        """The counters as plain JSON-able values, for the admin endpoint."""
        return {
            "put_count": self.put_count,
            "puts_applied": self.puts_applied,
            "get_count": self.get_count,
            "list_count": self.list_count,
            "unauthorized_count": self.unauthorized_count,
            "dropped_count": self.dropped_count,
            "status_counts": {str(status): n for status, n in sorted(self.status_counts.items())},
            "conference_count": len(self.conferences),
            "median_latency_ms": median_of_counts(self.latency_ms),
        }

    def _reconcile(self) -> None:
        current = set(self.conferences)
        if self._ordered_ids - current:
            self._order = [key for key in self._order if key[1] in current]
        for conference_id in current - self._ordered_ids:
            bisect.insort(self._order, sort_key(self.conferences[conference_id]))
        self._ordered_ids = current


def median_of_counts(counts: Counter[int]) -> float | None:
    """The median of values kept as value -> how often (None when there are none)."""
    total = sum(counts.values())
    if total == 0:
        return None
    # The middle one, or the mean of the middle two.
    middles = sorted({(total - 1) // 2, total // 2})
    picked: list[int] = []
    before = 0
    for value in sorted(counts):
        picked += [value for index in middles if before <= index < before + counts[value]]
        before += counts[value]
    return sum(picked) / len(picked)
