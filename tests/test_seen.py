"""The producer's memory of listed ids: exact for realistic ids, across merges."""

from __future__ import annotations

import tracemalloc
import uuid

from hypothesis import given
from hypothesis import strategies as st

from worker.seen import SeenIds


@given(st.lists(st.text(min_size=1, max_size=40), max_size=300), st.integers(1, 17))
def test_an_id_is_new_exactly_once_whatever_the_batching(ids: list[str], batch: int) -> None:
    seen = SeenIds(batch=batch)
    accepted = [cid for cid in ids if seen.add(cid)]
    assert accepted == list(dict.fromkeys(ids))
    assert len(seen) == len(accepted)


def test_ids_from_every_merged_batch_are_still_recognised() -> None:
    ids = [str(uuid.UUID(int=i * 7919 + 1, version=4)) for i in range(20_000)]
    seen = SeenIds(batch=1000)
    assert all(seen.add(cid) for cid in ids)
    assert not any(seen.add(cid) for cid in ids[::97])
    assert len(seen) == 20_000


def test_a_merge_keeps_every_id_in_order_whatever_falls_between() -> None:
    """Recent ids landing before, between and after the merged ones, and beside each other:
    the merged array stays sorted and whole, so bisection finds every one."""
    ids = [str(uuid.UUID(int=i, version=4)) for i in range(5_000)]
    seen = SeenIds(batch=333)
    for cid in ids:
        seen.add(cid)
    held = seen._merged  # what bisection searches: it must be sorted, with nothing lost
    assert list(held) == sorted(held) and len(set(held)) == len(held)
    assert len(seen) == 5_000 and not any(seen.add(cid) for cid in ids)


def test_a_merge_grows_the_held_ids_in_place_not_beside_them() -> None:
    """A million-conference plan's peak memory: a merge must not hold the ids twice.
    tracemalloc counts a realloc once, at its new size; a second array beside the
    first would show as a peak as large as the ids held."""
    seen = SeenIds(batch=4096)
    for i in range(200 * 4096 - 1):
        seen.add(f"conference-{i}")
    held_bytes = len(seen._merged) * seen._merged.itemsize
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        seen.add("the id that starts a merge")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(seen._merged) == 200 * 4096
    assert peak - before < held_bytes / 4, (peak - before, held_bytes)
