"""Which old journals a run may delete: a pure rule over names and times.

Journals are the undo, so the rule keeps more than it must:
- only after a run that ended well (the caller's decision), and never the newest journal;
- a journal goes when it is older than `keep_days` or beyond the newest `keep_last`
  (either limit alone, or both: whichever removes it);
- never one that a restore has not finished with (a `.restoring` mark beside it, left by
  a restore until it exits 0).
Several runs writing one directory at once (an Indexed Job's shards) must not use it: a
shard could count another's open journal among the oldest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Journals are named `<run id>.jsonl` (`.jsonl.gz` once compressed); the run id starts
# with its start time, `20261122T014309Z-3f9a1c`, so names sort by age.
SUFFIXES = (".jsonl", ".jsonl.gz")
RESTORING = ".restoring"


@dataclass(frozen=True, slots=True)
class Retention:
    keep_days: float | None = None
    keep_last: int | None = None

    @property
    def active(self) -> bool:
        return self.keep_days is not None or self.keep_last is not None


def run_id_of(path: Path) -> str | None:
    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def started_at(run_id: str) -> datetime | None:
    try:
        return datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def journals(names: Iterable[Path], mtimes: Mapping[Path, int] | None = None) -> list[Path]:
    """The journals among `names`, oldest first (anything else is not ours to touch).
    Run ids tell the second a run started; runs started within the same second are
    ordered by `mtimes` (each file's last write, kept through compression)."""
    found = [p for p in names if (rid := run_id_of(p)) is not None and started_at(rid)]
    return sorted(found, key=lambda p: (p.name.split("-", 1)[0], (mtimes or {}).get(p, 0),
                                        p.name))


def prunable(names: Iterable[Path], policy: Retention, *, now: datetime,
             keep: Iterable[Path] = (), mtimes: Mapping[Path, int] | None = None
             ) -> list[Path]:
    """The journals to delete among `names` (a directory's entries), oldest first.
    `keep` are journals that must stay whatever their age (the run's own)."""
    listed = list(names)
    if not policy.active:
        return []
    restoring = {p.name.removesuffix(RESTORING) for p in listed if p.name.endswith(RESTORING)}
    ordered = journals(listed, mtimes)
    protected = {p.name for p in keep} | restoring
    if ordered:
        protected.add(ordered[-1].name)  # the newest, always
    out = []
    for position, path in enumerate(ordered):
        if path.name in protected:
            continue
        newer = len(ordered) - 1 - position
        when = started_at(run_id_of(path) or "")
        too_old = (policy.keep_days is not None and when is not None
                   and now - when > timedelta(days=policy.keep_days))
        too_many = policy.keep_last is not None and newer >= policy.keep_last
        if too_old or too_many:
            out.append(path)
    return out


