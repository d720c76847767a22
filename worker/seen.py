"""Which conference ids the producer has already listed, at about 8 bytes an id.

A set of id strings costs ~130 bytes an id (14 MB at 100,000 conferences, measured), the
largest thing that grows with the Space. Ids are kept instead as 64-bit blake2b digests:
recent ones in a small set, the rest merged into one sorted `array('Q')` searched by
bisection. Two distinct ids share a digest with probability about n²/2⁶⁵ (3·10⁻¹⁰ at
100,000 ids); the cost of that is one conference listed as a duplicate and skipped.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from hashlib import blake2b


def digest(conference_id: str) -> int:
    return int.from_bytes(blake2b(conference_id.encode(), digest_size=8).digest(), "big")


class SeenIds:
    def __init__(self, batch: int = 8192) -> None:
        self._batch = batch
        self._recent: set[int] = set()
        self._merged = array("Q")

    def __len__(self) -> int:
        return len(self._recent) + len(self._merged)

    def add(self, conference_id: str) -> bool:
        """Remember the id; False if it was already seen."""
        key = digest(conference_id)
        if key in self._recent:
            return False
        merged = self._merged
        i = bisect_left(merged, key)
        if i < len(merged) and merged[i] == key:
            return False
        self._recent.add(key)
        if len(self._recent) >= self._batch:
            self._merge()
        return True

    def _merge(self) -> None:
        # heapq.merge streams both runs, so merging never holds a second list of ints.
        self._merged = array("Q", heapq.merge(self._merged, sorted(self._recent)))
        self._recent = set()
