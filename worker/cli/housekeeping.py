"""The backup directory over months: which journal `restore --latest` means, journals a
restore still needs, and after a run that ended well, compressing and pruning old ones.

The rules are worker.retention's; this module lists, reads, writes and deletes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from worker.errors import ConfigError
from worker.retention import RESTORING, Retention, journals, prunable, run_id_of
from worker.run.journal import compress, pre_images, read_header


def say_skipped(path: Path, why: str) -> None:
    """On stderr, whatever the log format: the operator must know a journal was passed
    over, and a JSON log is for events of the run, which has not started."""
    print(f"rebrand: warning: skipped {path}: {why}", file=sys.stderr)


def latest_run_journal(directory: Path, *,
                       skipped: Callable[[Path, str], None] = say_skipped) -> Path:
    """The newest journal a `run` wrote in `directory`: what "undo last night's run"
    means, by the rule of `newest_run_journal`."""
    try:
        names = list(directory.iterdir())
    except OSError as exc:
        raise ConfigError(f"--latest: cannot list {directory} ({exc.strerror}); point "
                          "--backup-dir at the directory the runs wrote to") from exc
    found = newest_run_journal(names, skipped=skipped)
    if found is None:
        raise ConfigError(f"--latest: no journal of a `rebrand run` in {directory}; point "
                          "--backup-dir at the directory the runs wrote to")
    return found


def newest_run_journal(names: list[Path], *,
                       skipped: Callable[[Path, str], None] = say_skipped) -> Path | None:
    """The newest journal among `names` (one directory's entries) that a `run` wrote and
    that has something to restore, or None. A restore's own journal is passed over
    (restoring it would redo the run), and so is one without a whole header (a run that
    could not write it sent nothing) or without a pre-image (a run that sent no PUT:
    nothing to restore), the last two told to `skipped` with why. `restore --latest` and
    a fleet's directory restore (per target folder) both pick by this rule."""
    for path in reversed(journals(names, _mtimes(names))):
        header, why = read_header(path)
        if header is None:
            skipped(path, why)
        elif header.get("command") == "run":
            if next(pre_images(path), None) is not None:
                return path
            skipped(path, "it holds no pre-image (its run sent no write)")
    return None


def _mtimes(paths: list[Path]) -> dict[Path, int]:
    out = {}
    for path in paths:
        try:
            out[path] = path.stat().st_mtime_ns
        except OSError:  # gone meanwhile: it sorts first and is skipped later
            out[path] = 0
    return out


@contextmanager
def restoring(journal: Path) -> Iterator[Callable[[], None]]:
    """A `<journal>.restoring` mark while a restore works from `journal`, so retention
    keeps the journal. It yields `finished`, which takes the mark away: call it once the
    restore ended with exit 0, and only then. Where the mark cannot be written,
    retention cannot delete either."""
    mark = journal.with_name(journal.name + RESTORING)
    try:
        mark.touch()
    except OSError:
        yield lambda: None
        return
    yield lambda: mark.unlink(missing_ok=True)


def tidy_after_run(directory: Path, current: Path | None, policy: Retention, *,
                   compress_closed: bool) -> None:
    """--keep-days, --keep-last, --compress-journals: after a run (or a fleet's target)
    that ended well. A failure here is a warning: the run's own outcome stands."""
    if not (policy.active or compress_closed):
        return
    try:
        tidy(directory, current, policy, compress_closed=compress_closed)
    except (OSError, ConfigError) as exc:
        structlog.get_logger("rebrand").warning("journals.not_tidied", error=str(exc))


@dataclass(frozen=True, slots=True)
class Tidied:
    compressed: tuple[str, ...]
    pruned: tuple[str, ...]


def tidy(directory: Path, current: Path | None, policy: Retention, *, compress_closed: bool,
         now: datetime | None = None) -> Tidied:
    """After a run that ended well: gzip every other closed plain journal (not one a
    restore is reading), then delete what `policy` lets go. Never the run's own."""
    log = structlog.get_logger("rebrand")
    entries = list(directory.iterdir())
    busy = {p.name.removesuffix(RESTORING) for p in entries if p.name.endswith(RESTORING)}
    compressed = []
    if compress_closed:
        for path in journals(entries):
            if path.name.endswith(".jsonl") and path != current and path.name not in busy:
                compress(path)
                compressed.append(path.name)
        entries = list(directory.iterdir())
    keep = [current] if current is not None else []
    pruned = []
    for path in prunable(entries, policy, now=now or datetime.now(UTC), keep=keep,
                         mtimes=_mtimes(entries)):
        path.unlink(missing_ok=True)
        pruned.append(path.name)
    if compressed or pruned:
        log.info("journals.tidied", directory=str(directory), compressed=len(compressed),
                 pruned=[run_id_of(Path(name)) for name in pruned])
    return Tidied(tuple(compressed), tuple(pruned))
