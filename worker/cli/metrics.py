"""A finished run's figures in the Prometheus text format: as a node-exporter textfile
(`--metrics-file`) or pushed to a Pushgateway (`--pushgateway`), for the CronJob's alerts.

They are gauges of the last run, as Prometheus advises for batch jobs. The last success
timestamp is written only by a successful run; a failed one keeps the previous value (read
back from the old file, or left in place by the Pushgateway's POST), so "no success for
two hours" can be alerted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog
from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from worker.outcome import Summary

JOB = "rebrand"
LAST_SUCCESS = "rebrand_last_success_timestamp_seconds"
_OUTCOMES = ("updated", "unchanged", "vanished", "failed", "planned", "conflict", "excluded",
             "not_started")


def build_registry(summary: Summary, *, exit_code: int, success: bool, now: float,
                   last_success: float | None = None) -> CollectorRegistry:
    """A fresh registry holding the run's gauges (no I/O; the default registry and its
    process metrics are left out on purpose)."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=registry).set(value)

    outcomes = Gauge("rebrand_conferences", "Conferences by outcome in the last run",
                     ["outcome"], registry=registry)
    for outcome in _OUTCOMES:
        outcomes.labels(outcome=outcome).set(getattr(summary, outcome))
    gauge("rebrand_listed_conferences", "Conferences listed in the last run", summary.listed)
    gauge("rebrand_retries", "Requests retried in the last run", summary.retries)
    gauge("rebrand_throttled_responses", "429 answers in the last run", summary.throttled)
    gauge("rebrand_duration_seconds", "Wall time of the last run", summary.duration_s)
    if summary.concurrency is not None:
        spread = Gauge("rebrand_concurrency", "Conferences in flight in the last run: where "
                       "it settled, and its lowest and highest", ["stat"], registry=registry)
        for stat, value in (("settled", summary.concurrency), ("min", summary.concurrency_min),
                            ("max", summary.concurrency_max)):
            if value is not None:
                spread.labels(stat=stat).set(value)
    gauge("rebrand_exit_code", "Exit code of the last run", exit_code)
    gauge("rebrand_last_run_timestamp_seconds", "When the last run ended", now)
    stamp = now if success else last_success
    if stamp is not None:
        gauge(LAST_SUCCESS, "When the last successful run ended", stamp)
    return registry


def previous_success(text: str) -> float | None:
    """The last success timestamp in an earlier metrics file's text, if any."""
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except ValueError:
        return None  # a damaged file holds nothing worth keeping
    return None


def write_metrics_file(path: Path, summary: Summary, *, exit_code: int, success: bool,
                       clock: Callable[[], float] = time.time) -> None:
    """Write to a temporary file beside `path`, then rename it over: the textfile
    collector never reads half a file."""
    try:
        earlier = previous_success(path.read_text(encoding="utf-8"))
    except OSError:
        earlier = None
    registry = build_registry(summary, exit_code=exit_code, success=success, now=clock(),
                              last_success=earlier)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def push_metrics(url: str, summary: Summary, *, exit_code: int, success: bool,
                 grouping_key: Mapping[str, str], timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
    """POST (pushadd) to the Pushgateway: it replaces only the metrics sent, so a failed
    run leaves the previous last-success timestamp in place."""
    registry = build_registry(summary, exit_code=exit_code, success=success, now=clock())
    pushadd_to_gateway(url, job=JOB, registry=registry, grouping_key=dict(grouping_key),
                       timeout=timeout_s)


def export_metrics(summary: Summary, *, exit_code: int, success: bool, path: Path | None,
                   pushgateway: str | None, grouping_key: Mapping[str, str]) -> None:
    """Both exports, as asked. They are a side channel: a failure is logged as a warning
    and does not change the run's exit code (the run itself is over)."""
    log = structlog.get_logger("rebrand")
    if path is not None:
        try:
            write_metrics_file(path, summary, exit_code=exit_code, success=success)
        except OSError as exc:
            log.warning("metrics.write_failed", path=str(path), error=str(exc))
    if pushgateway is not None:
        try:
            push_metrics(pushgateway, summary, exit_code=exit_code, success=success,
                         grouping_key=grouping_key)
        except (OSError, ValueError) as exc:
            log.warning("metrics.push_failed", url=pushgateway, error=str(exc))
