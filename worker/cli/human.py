"""What a person at a terminal reads: one line per event worth their attention, and a
closing summary in words with the next command to run (the undo first of all).

Off a terminal none of this is used: every event stays a JSON line. These are pure
functions of the events and the Summary, so the wording is tested without a terminal.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import structlog

from worker.cli.style import Palette
from worker.outcome import Outcome, Summary
from worker.run.stopping import StopReason
from worker.text import printable

_LABEL_WIDTH = 10
_SKIPPED = "(what is already done is skipped)"
_AGAIN = f"then run the same command again {_SKIPPED}"
_ALLOW = ("upgrade rebrand to a version whose API spec names it, or, if the Space's PUT "
          "leaves it alone, allow it with --allow-field NAME")
# Why a run stopped, in words, and what to do next. `stopped` in the summary is either a
# StopReason's value (already words) or, when an error ended the run, the error's class
# name (worker.errors): every class of that tree has its words here, a test walks it.
_STOP_WORDS: dict[str, tuple[str, str]] = {
    # StopReason values
    StopReason.SIGINT.value: ("interrupted (SIGINT)", f"run the same command again to finish "
                                                      f"{_SKIPPED}"),
    StopReason.SIGTERM.value: ("terminated (SIGTERM)", f"run the same command again to finish "
                                                       f"{_SKIPPED}"),
    StopReason.DEADLINE.value: ("--deadline reached", "the next run takes up the rest; if it "
                                                      "keeps happening, raise --deadline"),
    StopReason.MAX_FAILURES.value: ("--max-failures reached", "read the failures above, fix "
                                                              f"their cause, {_AGAIN}"),
    StopReason.UNKNOWN_PROPERTY.value: ("an answer held a property the API spec does not "
                                        "name", _ALLOW),
    StopReason.LISTING_FAILED.value: ("the listing failed", "the error above says why; "
                                                            + _AGAIN),
    # errors
    "AuthError": ("the Space refused the credentials", "check SIGNALWIRE_PROJECT_ID and "
                  "SIGNALWIRE_API_TOKEN (the token needs the Video scope)"),
    "UnreachableError": ("the Space could not be reached or listed",
                         f"check the Space's address and the network, {_AGAIN}"),
    "UnsafeLinkError": ("a pagination link led away from the Space",
                        "nothing was sent there; the error above names the link, for the "
                        "Space's owner"),
    "UnknownPropertyError": ("an answer held a property the API spec does not name", _ALLOW),
    "JournalError": ("the journal could not be written (disk full or read-only)",
                     "free space in {journal_dir} (or make it writable), " + _AGAIN
                     + "; what the journal holds can be restored"),
    "ListingError": ("the listing would not end (a page with no new conference, a page "
                     "read twice, or more than --max-pages)", f"the error above says which; "
                     f"{_AGAIN}"),
    "AbortError": ("the run could not go on safely", f"the error above says why; {_AGAIN}"),
    "ConfigError": ("bad input met during the run", f"fix what the error above names, "
                    f"{_AGAIN}"),
    "RebrandError": ("an error", f"the error above says which; {_AGAIN}"),
    "ApiError": ("a request failed", f"the error above says why; {_AGAIN}"),
    "RetryableApiError": ("a request kept failing", f"the error above says why; {_AGAIN}"),
    "NotFoundError": ("a request found nothing (404)", f"the error above says which; "
                      f"{_AGAIN}"),
    "RefusedRequestError": ("a request rebrand would not send", f"the error above says "
                            f"why; {_AGAIN}"),
}

class Verbosity(IntEnum):
    QUIET = -1  # failures and the summary
    NORMAL = 0  # what needs a person's attention, and the summary
    VERBOSE = 1  # every conference's event too


# Events the command line says in words of its own at a terminal: the closing summary,
# and the contrast audit (its warning names the rooms and what to do).
_TOLD_IN_WORDS = frozenset({"run.summary", "conferences.contrast"})


def shown(event: str, level: str, verbosity: Verbosity) -> bool:
    """Whether an event gets a line at the terminal. Those in _TOLD_IN_WORDS never do:
    the command line's own words take their place."""
    if event in _TOLD_IN_WORDS:
        return False
    if event == "listing.failed":
        # run.aborted says the same (path and reason) a line later: once is enough.
        return verbosity >= Verbosity.VERBOSE
    if level in {"error", "critical"} or verbosity >= Verbosity.VERBOSE:
        return True
    return level == "warning" and verbosity >= Verbosity.NORMAL


def _join(values: object) -> str:
    if isinstance(values, list | tuple):
        return "; ".join(printable(str(v)) for v in values)
    return printable(str(values))


def _changes(changes: object) -> str:
    if not isinstance(changes, Mapping):
        return ""
    parts = []
    for field, change in changes.items():
        old = change.get("old") if isinstance(change, Mapping) else None
        new = change.get("new") if isinstance(change, Mapping) else None
        parts.append(f"{field} {old or '(unset)'} -> {new}")
    return printable(", ".join(parts))


def conference_line(kind: str, event: Mapping[str, Any], palette: Palette) -> str:
    """`label  name  what happened`, the label colored by how much it matters."""
    name = printable(str(event.get("name") or event.get("conference_id") or "?"))
    errors = event.get("errors")
    mismatched = event.get("mismatched_fields")
    attempts = event.get("attempts")
    tries = f" (after {attempts} attempts)" if isinstance(attempts, int) and attempts > 1 else ""
    styles: tuple[str, ...] = ()
    detail = ""
    if kind == "failed":
        styles = ("red", "bold")
        status = event.get("status")
        prefix = f"HTTP {status}: " if isinstance(status, int) and status != 200 else ""
        detail = prefix + (_join(errors) if errors else "no detail given") + tries
    elif kind == "unknown":
        # The event's own errors say it at length; the summary below says what to do.
        styles = ("red", "bold")
        detail = "sent, but the answer never came: it may have landed"
    elif kind in {"conflict", "vanished"}:
        styles = ("yellow",)
        detail = _join(errors) if errors else (
            "deleted since it was listed" if kind == "vanished" else "")
    elif mismatched:
        styles = ("yellow",)
        detail = "the Space did not keep " + _join(mismatched)
    elif kind == "updated":
        styles = ("green",)
    elif kind == "planned":
        kind = "would change"
        detail = _changes(event.get("changes"))
    else:
        styles = ("dim",)
    label = palette.paint(kind.ljust(_LABEL_WIDTH), *styles)
    cid = printable(str(event.get("conference_id", "")))
    ident = palette.paint(f"[{cid}]", "dim") if kind in {"failed", "conflict"} and cid else ""
    return "  ".join(part for part in (label, name, detail, ident) if part)


def event_line(event: Mapping[str, Any], palette: Palette) -> str:
    """One event as a line for a person."""
    name = str(event.get("event", ""))
    if name.startswith("conference."):
        return conference_line(name.removeprefix("conference."), event, palette)
    if name == "run.aborted":
        return palette.paint("error:", "red", "bold") + " " + printable(str(event.get("error")))
    if name == "run.stopping":
        # A plan is stopped by the same signal and sends no writes: words true of both.
        return (palette.paint("stopping:", "yellow") + f" {event.get('reason')}; no "
                "new conference starts, and any write in flight gets its grace period to "
                "finish (a second signal exits at once)")
    if name == "run.killed":
        return (palette.paint("stopped at once:", "red", "bold") + " a second signal "
                "came during the grace period, so each write in flight may have landed or "
                "not. Next: run the same command again to finish (what took is skipped); the "
                "journal in the backup directory holds each pre-image, for `rebrand restore`")
    level = str(event.get("level", "info"))
    # An event that carries its own `message` is shown by it; its name then goes last.
    said = event.get("message")
    rest = "  ".join(f"{k}={printable(str(v))}" for k, v in event.items()
                     if k not in {"event", "level", "timestamp", "message"})
    styles = {"error": ("red", "bold"), "critical": ("red", "bold"), "warning": ("yellow",)}
    head = palette.paint(f"{level}:", *styles.get(level, ()))
    text = printable(str(said)) if said else printable(name)
    tail = "  ".join(part for part in (rest, f"({printable(name)})" if said else "") if part)
    return f"{head} {text}" + (f"  {tail}" if tail else "")


# Events a signal causes: at a terminal the `^C` it echoed sits where the cursor was.
_AFTER_A_SIGNAL = frozenset({"run.stopping", "run.killed"})


class HumanRenderer:
    """A structlog renderer for a terminal: `shown` decides, `event_line` words it."""

    def __init__(self, palette: Palette, verbosity: Verbosity, *,
                 terminal: bool = False) -> None:
        self._palette = palette
        self._verbosity = verbosity
        self._terminal = terminal

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> str:
        name = str(event.get("event"))
        if not shown(name, str(event.get("level")), self._verbosity):
            raise structlog.DropEvent
        line = event_line(event, self._palette)
        if self._terminal and name in _AFTER_A_SIGNAL:
            # Back to the line's start, over the echoed `^C`: with no bar there to wipe,
            # the line ran on after it (`^Cstopping: ...`).
            return "\r" + line
        return line


def undo_command(space: str, journal: Path) -> str:
    """The restore that undoes a run, quoted for a POSIX shell, ready to paste."""
    return shlex.join(["rebrand", "restore", "--space", space, str(journal)])


@dataclass(frozen=True, slots=True)
class Ending:
    """What the closing summary says besides the counts: where things are, what next."""

    command: str  # "run", "plan" or "restore"
    exit_code: int
    dry_run: bool = False
    space: str | None = None  # the Space's origin, for the undo command
    journal: Path | None = None
    journal_empty: bool = False  # the journal holds no pre-image: nothing was written
    config: Path | None = None
    report: Path | None = None
    metrics: Path | None = None
    pushgateway: str | None = None
    demo: bool = False


def _count(n: int) -> str:
    return f"{n:,} conference" + ("" if n == 1 else "s")


def _headline(s: Summary, end: Ending) -> str:
    of = f"{s.listed:,} conference" + ("" if s.listed == 1 else "s")
    if s.stopped and not s.listed:
        return "Nothing was done: no conference was listed"
    if end.command == "restore":
        if end.dry_run:
            return f"{s.planned:,} of {of} in the journal would be restored; nothing was sent"
        return f"Restored {s.updated:,} of {of} in the journal"
    if end.dry_run:
        if not s.planned:
            return f"Nothing would change: {of} checked"
        return f"{s.planned:,} of {of} would change; nothing was sent"
    if not (s.updated or s.failed or s.unknown or s.not_started):
        return f"Nothing to re-theme: {of} checked"
    return f"Re-themed {s.updated:,} of {of}"


def _breakdown(s: Summary, end: Ending, palette: Palette) -> str:
    same = "already as in the journal" if end.command == "restore" else "already on theme"
    parts = [
        (s.unchanged, same, ()),
        (s.failed, "failed", ("red", "bold")),
        (s.conflict, "left alone: edited by someone else since (--force restores them)",
         ("yellow",)),
        (s.vanished, "vanished (deleted meanwhile)", ("yellow",)),
        (s.excluded, "excluded by select or shard", ()),
        (s.not_started, "not started", ("yellow",)),
        (s.unknown, "unknown: sent, but the answer never came (each may have landed)",
         ("red", "bold")),
        (s.journal_dropped, "journal record lost to its torn last line (a crash mid-write)"
         if s.journal_dropped == 1 else
         "journal records lost to its torn last line (a crash mid-write)", ("yellow",)),
    ]
    return ", ".join(palette.paint(f"{n:,} {words}", *styles)
                     for n, words, styles in parts if n)


def _pace(s: Summary, end: Ending) -> str:
    text = f"took {s.duration_s:,.1f} s"
    if not end.dry_run and s.updated:
        text += f", {s.updates_per_s:,.1f} updates/s"
    if s.retries:
        text += f", {s.retries:,} " + ("retry" if s.retries == 1 else "retries")
        if s.throttled:  # each 429 was retried: the throttled are among the retries
            text += f" ({s.throttled:,} throttled by the Space)"
    return text


def _stopped(s: Summary, end: Ending) -> str | None:
    if s.stopped is None:
        return None
    reason, then = _STOP_WORDS.get(s.stopped, (s.stopped, f"the error above says why; {_AGAIN}"))
    if s.unknown_fields and s.stopped in ("UnknownPropertyError",
                                          StopReason.UNKNOWN_PROPERTY.value):
        reason += f" ({', '.join(printable(f) for f in s.unknown_fields)})"
    where = str(end.journal.parent) if end.journal is not None else "the backup directory"
    then = then.format(journal_dir=where)
    if end.dry_run:
        # A plan did nothing that a next one skips: it reads every conference again.
        then = then.replace(f"to finish {_SKIPPED}", _SKIPPED).replace(
            _SKIPPED, "for the whole plan")
    return f"Stopped early: {reason} (exit {end.exit_code}). Next: {then}."


def _unknown(s: Summary, end: Ending) -> str | None:
    """What to do about writes whose answer never came: they may have landed."""
    if not s.unknown:
        return None
    again = ("restore the same journal again (restoring twice is harmless)"
             if end.command == "restore" else "run again (what took is skipped)")
    return (f"{s.unknown:,} unknown: {again} to settle them"
            + (", or undo the run with the Undo command below" if end.journal else ""))


def summary_lines(s: Summary, end: Ending, palette: Palette) -> list[str]:
    """The closing summary: what happened in words and counts, the pace, why it stopped
    early if it did, and where the journal, report and metrics are, with the commands
    that come next (above all the one that undoes the run)."""
    lines = [palette.paint(_headline(s, end) + ".", "bold")]
    breakdown = _breakdown(s, end, palette)
    if breakdown:
        lines.append("  " + breakdown)
    lines.append("  " + _pace(s, end))
    stopped = _stopped(s, end)
    if stopped:
        lines.append(palette.paint(stopped, "yellow" if s.failed == 0 else "red"))
    unknown = _unknown(s, end)
    if unknown:
        lines.append(palette.paint(unknown, "yellow"))
    rows: list[tuple[str, str]] = []
    if end.journal is not None and end.journal_empty:
        # Its header alone: `restore --latest` passes it over for the run before.
        rows.append(("Journal", "nothing was written, so there is nothing to restore "
                                f"({end.journal} holds no pre-image)"))
    elif end.journal is not None:
        rows.append(("Journal", str(end.journal)))
        # Nothing to undo unless a write may have landed (a failed PUT may have, before
        # its answer was lost).
        if s.updated or s.failed or s.unknown or (s.stopped and s.listed):
            rows.append(("Undo", undo_command(end.space or "SPACE", end.journal)))
    if end.report is not None:
        rows.append(("Report", str(end.report)))
    if end.metrics is not None:
        rows.append(("Metrics", str(end.metrics)))
    if end.pushgateway is not None:
        rows.append(("Metrics", f"pushed to {end.pushgateway}"))
    # Not after a plan stopped early: the person has seen only part of what a run would do.
    if (end.config is not None and end.command == "run" and end.dry_run and s.planned
            and s.stopped is None):
        rows.append(("Apply", shlex.join(["rebrand", "run", "--config", str(end.config)])))
    if (end.config is not None and end.command == "run" and not end.dry_run
            and (s.failed or s.unknown)):
        rows.append(("Retry", shlex.join(["rebrand", "run", "--config", str(end.config)])
                     + "   (what is already on theme is skipped)"))
    lines += [f"{label + ':':9s}{value}" for label, value in rows]
    if end.demo and end.journal is not None:
        lines.append(palette.paint("(The demo's sandbox Space stopped with it; against a "
                                   "real Space, that command undoes the run.)", "dim"))
    return lines


def changes_by_field(planned: Sequence[Outcome], palette: Palette) -> list[str]:
    """A plan in a few lines, for the question before a big run: each color that would
    change, its new value, and how many conferences it changes in."""
    counts: dict[tuple[str, str], int] = {}
    for outcome in planned:
        for change in outcome.changes:
            counts[change.field, change.new] = counts.get((change.field, change.new), 0) + 1
    width = max((len(field) for field, _ in counts), default=0)
    return [f"  {field.ljust(width)}  {palette.swatch(new)}{printable(new)}  "
            f"in {_count(n)}" for (field, new), n in counts.items()]
