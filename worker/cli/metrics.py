"""A finished run's figures in the Prometheus text format: as a node-exporter textfile
(`--metrics-file`) or pushed to a Pushgateway (`--pushgateway`), for the CronJob's alerts.

They are gauges of the last run, as Prometheus advises for batch jobs. The last success
timestamp is written only by a successful run; a failed one keeps the previous value (read
back from the old file, or left in place by the Pushgateway's POST), so "no success for
two hours" can be alerted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from worker.cli.entry import settle, signals_held
from worker.outcome import Summary

JOB = "rebrand"
LAST_SUCCESS = "rebrand_last_success_timestamp_seconds"
_OUTCOMES = ("updated", "unchanged", "vanished", "failed", "planned", "conflict", "excluded",
             "not_started", "unknown")


def build_registry(summary: Summary, *, exit_code: int, success: bool, now: float,
                   last_success: float | None = None) -> CollectorRegistry:
    """A fresh registry holding the run's gauges (no I/O; the default registry and its
    process metrics are left out on purpose)."""
    return build_fleet_registry([Run({}, summary, exit_code, success, last_success)], now=now)


@dataclass(frozen=True, slots=True)
class Run:
    """One run's figures and the labels that tell it apart (a fleet's `target`)."""

    labels: Mapping[str, str]
    summary: Summary
    exit_code: int
    success: bool
    last_success: float | None = None


def build_fleet_registry(runs: Sequence[Run], *, now: float) -> CollectorRegistry:
    """One registry for several runs, each series labelled as its run is (a fleet's
    targets); with one unlabelled run, the single-Space gauges exactly."""
    registry = CollectorRegistry()
    names = sorted({k for run in runs for k in run.labels})

    def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, [*names, *extra], registry=registry)

    outcomes = gauge("rebrand_conferences", "Conferences by outcome in the last run",
                     ("outcome",))
    figures = [
        (gauge("rebrand_listed_conferences", "Conferences listed in the last run"), "listed"),
        (gauge("rebrand_retries", "Requests retried in the last run"), "retries"),
        (gauge("rebrand_throttled_responses", "429 answers in the last run"), "throttled"),
        (gauge("rebrand_duration_seconds", "Wall time of the last run"), "duration_s"),
    ]
    spread = (gauge("rebrand_concurrency", "Conferences in flight in the last run: where it "
                    "settled, and its lowest and highest", ("stat",))
              if any(run.summary.concurrency is not None for run in runs) else None)
    exit_codes = gauge("rebrand_exit_code", "Exit code of the last run")
    ended = gauge("rebrand_last_run_timestamp_seconds", "When the last run ended")
    stamps = [now if run.success else run.last_success for run in runs]
    # Only when some run has one: an unlabelled gauge would otherwise read 0, "1970".
    succeeded = (gauge(LAST_SUCCESS, "When the last successful run ended")
                 if any(s is not None for s in stamps) else None)
    for run, stamp in zip(runs, stamps, strict=True):
        labels = {k: run.labels.get(k, "") for k in names}
        for outcome in _OUTCOMES:
            outcomes.labels(**labels, outcome=outcome).set(getattr(run.summary, outcome))
        for metric, field in figures:
            _labelled(metric, labels).set(getattr(run.summary, field))
        summary = run.summary
        for stat, value in (("settled", summary.concurrency), ("min", summary.concurrency_min),
                            ("max", summary.concurrency_max)):
            if spread is not None and value is not None:
                spread.labels(**labels, stat=stat).set(value)
        _labelled(exit_codes, labels).set(run.exit_code)
        _labelled(ended, labels).set(now)
        if succeeded is not None and stamp is not None:
            _labelled(succeeded, labels).set(stamp)
    return registry


def _labelled(metric: Gauge, labels: Mapping[str, str]) -> Gauge:
    return metric.labels(**labels) if labels else metric


def previous_success(text: str) -> float | None:
    """The last success timestamp in an earlier metrics file's text, if any."""
    return previous_successes(text).get((), None)


def previous_successes(text: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each series' last success timestamp in an earlier metrics file's text, by its labels
    (a single Space's under `()`, a fleet's by target)."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    found[tuple(sorted(sample.labels.items()))] = float(sample.value)
    except ValueError:
        return {}  # a damaged file holds nothing worth keeping
    return found


def write_metrics_file(path: Path, summary: Summary, *, exit_code: int, success: bool,
                       clock: Callable[[], float] = time.time) -> None:
    write_runs_file(path, [Run({}, summary, exit_code, success)], clock=clock)


def write_runs_file(path: Path, runs: Sequence[Run],
                    clock: Callable[[], float] = time.time) -> None:
    """Write to a temporary file beside `path`, then rename it over: the textfile
    collector never reads half a file."""
    try:
        earlier = previous_successes(path.read_text(encoding="utf-8"))
    except OSError:
        earlier = {}
    runs = [replace(run, last_success=earlier.get(tuple(sorted(run.labels.items()))))
            for run in runs]
    registry = build_fleet_registry(runs, now=clock())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def push_runs(url: str, runs: Sequence[Run], *, grouping_key: Mapping[str, str],
              timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
    """POST (pushadd) to the Pushgateway: it replaces only the metrics sent, so a failed
    run leaves the previous last-success timestamp in place."""
    registry = build_fleet_registry(runs, now=clock())
    pushadd_to_gateway(url, job=JOB, registry=registry, grouping_key=dict(grouping_key),
                       timeout=timeout_s)


def push_metrics(url: str, summary: Summary, *, exit_code: int, success: bool,
                 grouping_key: Mapping[str, str], timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
    push_runs(url, [Run({}, summary, exit_code, success)], grouping_key=grouping_key,
              timeout_s=timeout_s, clock=clock)


def export_metrics(summary: Summary, *, exit_code: int, success: bool, path: Path | None,
                   pushgateway: str | None, grouping_key: Mapping[str, str]) -> bool:
    """One Space's metrics, whose `rebrand_exit_code` is the process's exit code: once
    they are out, a signal exits with that code, as after --report (worker.cli.entry)."""
    return export_runs([Run({}, summary, exit_code, success)], path=path,
                       pushgateway=pushgateway, grouping_key=grouping_key,
                       stating=exit_code)


def export_runs(runs: Sequence[Run], *, path: Path | None, pushgateway: str | None,
                grouping_key: Mapping[str, str], stating: int | None = None) -> bool:
    """Both exports, as asked. They are a side channel: a failure is logged as a warning
    and does not change the run's exit code (the run itself is over). Returns whether
    every export asked for was made. `stating`: the process's exit code, when the
    metrics state it (a fleet's state each target's, not the fleet's)."""
    log = structlog.get_logger("rebrand")
    made = True
    if path is not None:
        # The write and the settling hold signals back, as a report's do: none lands
        # between the file and the code it states.
        with signals_held():
            try:
                write_runs_file(path, runs)
            except OSError as exc:
                log.warning("metrics.write_failed", path=str(path), error=str(exc))
                made = False
            else:
                if stating is not None:
                    settle(stating, "the metrics file")
    if pushgateway is not None:
        if stating is not None:
            # Settled before the push, not after: a signal during it ends it, and by then
            # the gateway may hold the code already (the request out, its answer not in).
            # Held up to the push's timeout, a signal could not end it.
            with signals_held():
                settle(stating, "the Pushgateway")
        try:
            push_runs(pushgateway, runs, grouping_key=grouping_key)
        except (OSError, ValueError) as exc:
            log.warning("metrics.push_failed", url=pushgateway, error=str(exc))
            made = False
    return made
