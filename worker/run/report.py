"""The reporter: one structured event per conference, then one summary.

It is the only place outcomes are counted, so the summary always agrees with the lines
above it ("canonical log lines").
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import structlog

from worker.outcome import Kind, Outcome, Summary
from worker.run.logs import Scrubber, scrub, secret_forms

_ERROR_KINDS = frozenset({Kind.FAILED})
_WARNING_KINDS = frozenset({Kind.CONFLICT, Kind.VANISHED, Kind.UNKNOWN})
# Counted in the summary, logged only at debug: each of 4 shards leaves out 3/4 of the
# Space, and a line per left-out conference would bury the lines that matter.
_QUIET_KINDS = frozenset({Kind.EXCLUDED})


class Reporter:
    """Counts outcomes and logs each as `conference.<kind>`."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 keep_plans: bool = False) -> None:
        self._log = structlog.get_logger("rebrand")
        self._clock = clock
        self._started = clock()
        self.counts: Counter[Kind] = Counter()
        # PUT sent, outcome not yet recorded: id -> name, for the line `unanswered` logs.
        self._sending: dict[str, str] = {}
        self.listed = 0
        self.retries = 0
        self.journal_dropped = 0
        self.throttled = 0
        self.failures: list[Outcome] = []
        self.listeners: list[Callable[[Outcome], None]] = []
        # Called just before the summary is logged, so it stays the last line.
        self.before_summary: list[Callable[[], None]] = []
        # Planned outcomes, kept only when a table of them will be printed.
        self._keep_plans = keep_plans
        self.planned: list[Outcome] = []
        self._unknown: set[str] = set()
        self._allowed: set[str] = set()
        self._failure_budget: int | None = None
        self._on_budget_spent: Callable[[], object] | None = None

    def on_failures(self, budget: int, spent: Callable[[], object]) -> None:
        """Call `spent` once, when the `budget`-th conference has failed: the reporter
        counts, so the run learns it here instead of reading the count."""
        self._failure_budget = budget
        self._on_budget_spent = spent

    def listed_one(self) -> None:
        self.listed += 1

    def retried(self, status: int | None) -> None:
        self.retries += 1
        if status == 429:
            self.throttled += 1

    def sending(self, conference_id: str, name: str) -> None:
        """A PUT for this conference is about to go out: until its outcome is recorded,
        the write may land without our knowing (see `unanswered`)."""
        self._sending[conference_id] = name

    def answered(self, conference_id: str) -> None:
        """The Space answered this conference's PUT with a refusal: nothing landed, so the
        write is no longer in flight (a retry calls `sending` again)."""
        self._sending.pop(conference_id, None)

    def unanswered(self) -> int:
        """At the end of a run: each conference whose PUT went out but whose outcome never
        came (the grace period ran out, or an abort cut it) is `unknown`, not `not_started`:
        it may have landed. Its pre-image is in the journal, so a restore can undo it.
        Returns how many there were: writes the end of the run cut off."""
        cut = sorted(self._sending.items())
        for cid, name in cut:
            self.record(Outcome(Kind.UNKNOWN, cid, name, errors=(
                "its PUT was sent but the run ended before the answer came; it may have "
                "landed (the journal holds its pre-image; a new run or a restore settles it)",)))
        return len(cut)

    def record(self, outcome: Outcome) -> None:
        self._sending.pop(outcome.conference_id, None)
        self.counts[outcome.kind] += 1
        if outcome.unknown or outcome.allowed:
            self._unknown.update(outcome.unknown)
            self._allowed.update(outcome.allowed)
        fields = _event_fields(outcome)
        if self._keep_plans and outcome.kind is Kind.PLANNED:
            self.planned.append(outcome)
        event = f"conference.{outcome.kind.value}"
        if outcome.kind in _ERROR_KINDS:
            self.failures.append(outcome)
            self._log.error(event, **fields)
            if len(self.failures) == self._failure_budget and self._on_budget_spent:
                self._on_budget_spent()
        elif outcome.kind in _QUIET_KINDS:
            self._log.debug(event, **fields)
        elif outcome.kind in _WARNING_KINDS or outcome.mismatched:
            self._log.warning(event, **fields)
        else:
            self._log.info(event, **fields)
        for listener in self.listeners:
            listener(outcome)

    @property
    def not_started(self) -> int:
        """Listed conferences with no outcome (yet)."""
        return max(0, self.listed - sum(self.counts.values()))

    def summary(self, *, effective_rate: float | None = None,
                stopped: str | None = None,
                concurrency: tuple[int, int, int] | None = None) -> Summary:
        duration = max(self._clock() - self._started, 1e-9)
        c = self.counts
        return Summary(
            listed=self.listed,
            updated=c[Kind.UPDATED],
            unchanged=c[Kind.UNCHANGED],
            vanished=c[Kind.VANISHED],
            failed=c[Kind.FAILED],
            retries=self.retries,
            duration_s=round(duration, 3),
            updates_per_s=round(c[Kind.UPDATED] / duration, 1),
            planned=c[Kind.PLANNED],
            conflict=c[Kind.CONFLICT],
            excluded=c[Kind.EXCLUDED],
            unknown=c[Kind.UNKNOWN],
            not_started=self.not_started,
            throttled=self.throttled,
            effective_rate=None if effective_rate is None else round(effective_rate, 1),
            stopped=stopped,
            unknown_fields=tuple(sorted(self._unknown)),
            allowed_fields=tuple(sorted(self._allowed)),
            concurrency=concurrency[0] if concurrency else None,
            concurrency_min=concurrency[1] if concurrency else None,
            concurrency_max=concurrency[2] if concurrency else None,
            journal_dropped=self.journal_dropped,
        )

    def torn_journal(self, path: Path, line: int, dropped: int) -> None:
        """A journal whose last line a crash cut off: say so, and count what was lost."""
        self.journal_dropped += dropped
        self._log.warning(
            "journal.torn_tail", journal=str(path), line=line, dropped_records=dropped,
            detail="the last line was cut off mid-write (a crash) and is dropped; a "
                   "pre-image reaches disk before its PUT is sent, so a torn one was never "
                   "written, and a torn `written` record falls back to comparing contents")

    def listing_failed(self, path: str, reason: str) -> None:
        self._log.error("listing.failed", path=path, reason=reason)

    def aborted(self, error: Exception, exit_code: int) -> None:
        self._log.error("run.aborted", error=str(error), error_type=type(error).__name__,
                        exit_code=exit_code)

    def log_summary(self, summary: Summary) -> None:
        for hook in self.before_summary:
            hook()
        fields = {k: getattr(summary, k) for k in summary.__dataclass_fields__}
        self._log.info("run.summary", **fields)


def scrubbed(outcome: Outcome, clean: Scrubber) -> Outcome:
    """The outcome with every form of a secret hidden in the text it carries from the
    Space or a journal (id, name, errors, rule, old colors), for an output that escapes
    it: Markdown, HTML, a table."""
    return replace(
        outcome, conference_id=clean(outcome.conference_id), name=clean(outcome.name),
        errors=tuple(map(clean, outcome.errors)),
        rule=None if outcome.rule is None else clean(outcome.rule),
        changes=tuple(replace(c, old=None if c.old is None else clean(c.old))
                      for c in outcome.changes))


def _event_fields(outcome: Outcome) -> dict[str, Any]:
    """The fields of a `conference.<kind>` event: those the outcome has."""
    fields: dict[str, Any] = {
        "conference_id": outcome.conference_id,
        "name": outcome.name,
        "attempts": outcome.attempts,
    }
    if outcome.status is not None:
        fields["status"] = outcome.status
    if outcome.errors:
        fields["errors"] = list(outcome.errors)
    if outcome.mismatched:
        fields["mismatched_fields"] = list(outcome.mismatched)
    if outcome.unknown:
        fields["unknown_fields"] = list(outcome.unknown)
    if outcome.changes and outcome.kind is Kind.PLANNED:
        fields["changes"] = {c.field: {"old": c.old, "new": c.new} for c in outcome.changes}
    return fields


def write_report(path: Path, summary: Summary, failures: list[Outcome], journal: Path | None,
                 *, exit_code: int, secrets: tuple[str, ...] = (),
                 outputs_lost: Sequence[str] = ()) -> None:
    """One JSON document for CI artifacts: the summary, every failure, the journal, and
    the other outputs that could not be written (when one could not)."""
    document = report_document(summary, failures, journal, exit_code=exit_code)
    write_document(path, {**document, **lost_outputs(outputs_lost)}, secrets=secrets)


def lost_outputs(outputs_lost: Sequence[str]) -> dict[str, Any]:
    """The report's `outputs_lost` (what could not be written, which made the exit code
    4): only in a report of a run that lost one, so the others read as they did."""
    return {"outputs_lost": list(outputs_lost)} if outputs_lost else {}


def report_document(summary: Summary, failures: list[Outcome], journal: Path | None, *,
                    exit_code: int) -> dict[str, Any]:
    """A run's report as a JSON-ready mapping (a fleet's report holds one per target)."""
    return {
        "summary": {k: getattr(summary, k) for k in summary.__dataclass_fields__},
        "exit_code": exit_code,
        "journal": str(journal.resolve()) if journal else None,
        "failures": [
            {"conference_id": f.conference_id, "name": f.name, "status": f.status,
             "errors": list(f.errors), "attempts": f.attempts}
            for f in failures
        ],
    }


def write_document(path: Path, document: Mapping[str, Any], *,
                   secrets: tuple[str, ...] = ()) -> None:
    """A JSON document written whole (to a temporary file, then renamed), secrets scrubbed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    # Failures carry the server's own words, which may quote what we sent.
    rendered = scrub(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode(),
                     secret_forms(secrets))
    temporary.write_text(rendered, encoding="utf-8")
    os.replace(temporary, path)  # a reader never sees half a report
