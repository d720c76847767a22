"""Metrics: the Prometheus text file a textfile collector scrapes, and the Pushgateway push."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import SANDBOX_ENV, sandbox_in_thread, write_config
from worker.cli.main import main
from worker.cli.metrics import LAST_SUCCESS, write_metrics_file
from worker.outcome import Summary


def _samples(text: str) -> dict[str, float]:
    """`name{label="v"}` -> value, from a scrape of the text format."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def _summary(**counts: Any) -> Summary:
    base: dict[str, Any] = {"listed": 10, "updated": 6, "unchanged": 3, "vanished": 1,
                            "failed": 0, "retries": 4, "duration_s": 2.5, "updates_per_s": 2.4,
                            "throttled": 2, "excluded": 0}
    return Summary(**{**base, **counts})


def test_a_run_writes_a_metrics_file_a_scraper_can_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = tmp_path / "textfile" / "rebrand.prom"
    with sandbox_in_thread(count=40) as sb:
        config = write_config(tmp_path, sb.url, select={"exclude": ["room-0000*"]})
        code = main(["run", "--config", str(config), "--log-format", "json", "--backup-dir",
                     str(tmp_path / "b"), "--metrics-file", str(metrics)], SANDBOX_ENV)
        puts = sb.space.put_count
    summary = next(json.loads(line) for line in capsys.readouterr().out.splitlines()
                   if '"run.summary"' in line)
    samples = _samples(metrics.read_text(encoding="utf-8"))
    assert code == 0
    assert samples['rebrand_conferences{outcome="updated"}'] == puts == summary["updated"]
    assert samples['rebrand_conferences{outcome="unchanged"}'] == summary["unchanged"]
    assert samples['rebrand_conferences{outcome="excluded"}'] == 10
    assert samples['rebrand_conferences{outcome="failed"}'] == 0
    assert samples["rebrand_listed_conferences"] == 40
    assert samples["rebrand_retries"] == summary["retries"]
    assert samples["rebrand_throttled_responses"] == summary["throttled"]
    assert samples["rebrand_duration_seconds"] == summary["duration_s"]
    assert samples["rebrand_exit_code"] == 0
    # The concurrency the run settled at, and its range, as the summary says.
    for stat, key in (("settled", "concurrency"), ("min", "concurrency_min"),
                      ("max", "concurrency_max")):
        assert samples[f'rebrand_concurrency{{stat="{stat}"}}'] == summary[key] > 0
    assert samples[LAST_SUCCESS] == samples["rebrand_last_run_timestamp_seconds"] > 0
    assert [p.name for p in metrics.parent.iterdir()] == ["rebrand.prom"]  # no temp left


def test_a_failed_run_keeps_the_previous_success_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "rebrand.prom"
    write_metrics_file(path, _summary(), exit_code=0, success=True, clock=lambda: 1000.0)
    write_metrics_file(path, _summary(failed=2), exit_code=1, success=False,
                       clock=lambda: 2000.0)
    samples = _samples(path.read_text(encoding="utf-8"))
    assert samples[LAST_SUCCESS] == 1000.0
    assert samples["rebrand_last_run_timestamp_seconds"] == 2000.0
    assert samples["rebrand_exit_code"] == 1
    assert samples['rebrand_conferences{outcome="failed"}'] == 2


def test_a_first_failed_run_writes_no_success_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "rebrand.prom"
    write_metrics_file(path, _summary(failed=1), exit_code=1, success=False)
    assert LAST_SUCCESS not in _samples(path.read_text(encoding="utf-8"))


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]]

    def _take(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.received.append((self.command, self.path, self.rfile.read(length).decode()))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT = _take

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def pushgateway() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """A tiny Pushgateway on loopback that records every push."""
    received: list[tuple[str, str, str]] = []
    handler = type("Gateway", (_Gateway,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_pushgateway_receives_the_same_metrics_grouped_by_command_and_shard(
    tmp_path: Path, pushgateway: tuple[str, list[tuple[str, str, str]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, received = pushgateway
    with sandbox_in_thread(count=30) as sb:
        config = write_config(tmp_path, sb.url)
        code = main(["plan", "--config", str(config), "--log-format", "json",
                     "--shard", "1/2", "--pushgateway", url], SANDBOX_ENV)
    summary = next(json.loads(line) for line in capsys.readouterr().out.splitlines()
                   if '"run.summary"' in line)
    assert code == 10
    [(method, path, body)] = received
    # POST replaces only what is sent: an earlier success timestamp survives a failure.
    assert method == "POST"
    assert path == "/metrics/job/rebrand/command/plan/shard/1"
    samples = _samples(body)
    assert samples['rebrand_conferences{outcome="planned"}'] == summary["planned"] > 0
    assert samples['rebrand_conferences{outcome="excluded"}'] == summary["excluded"] > 0
    assert samples["rebrand_exit_code"] == 10
    assert LAST_SUCCESS in samples  # a plan that finds changes has succeeded
    assert not any(name.startswith(("process_", "python_")) for name in samples)


def test_an_unreachable_pushgateway_is_a_warning_not_a_failed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_in_thread(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        code = main(["plan", "--config", str(config), "--log-format", "json",
                     "--pushgateway", "http://127.0.0.1:9"], SANDBOX_ENV)
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code in (0, 10)
    assert any(e["event"] == "metrics.push_failed" and e["level"] == "warning" for e in events)


def test_a_fleet_writes_each_target_labelled_and_keeps_each_targets_last_success(
    tmp_path: Path,
) -> None:
    from worker.cli.metrics import Run, write_runs_file

    def summary(failed: int) -> Summary:
        return Summary(listed=5, updated=5 - failed, unchanged=0, vanished=0, failed=failed,
                       retries=0, duration_s=1.0, updates_per_s=5.0)

    path = tmp_path / "fleet.prom"
    write_runs_file(path, [Run({"target": "acme"}, summary(0), 0, True),
                           Run({"target": "globex"}, summary(0), 0, True)], clock=lambda: 100.0)
    write_runs_file(path, [Run({"target": "acme"}, summary(0), 0, True),
                           Run({"target": "globex"}, summary(2), 1, False)], clock=lambda: 200.0)
    samples = {(s.name, s.labels.get("target"), s.labels.get("outcome")): s.value
               for family in text_string_to_metric_families(path.read_text())
               for s in family.samples}
    assert samples[("rebrand_exit_code", "acme", None)] == 0
    assert samples[("rebrand_exit_code", "globex", None)] == 1
    assert samples[("rebrand_conferences", "globex", "failed")] == 2
    # Each target's own last success: acme's moved on, globex's failed run kept 100.
    assert samples[(LAST_SUCCESS, "acme", None)] == 200.0
    assert samples[(LAST_SUCCESS, "globex", None)] == 100.0


def test_a_single_spaces_metrics_file_settles_the_exit_code_it_states_a_fleets_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One Space's `rebrand_exit_code` is the process's: once the file is written, a signal
    exits with it, as after --report. A fleet's file states each target's code, not the
    fleet's, and settles nothing. A file that could not be written settles nothing."""
    from worker.cli import entry
    from worker.cli.metrics import Run, export_metrics, export_runs

    monkeypatch.setattr(entry, "_settled", [])
    export_runs([Run({"target": "acme"}, _summary(), 1, False)], path=tmp_path / "fleet.prom",
                pushgateway=None, grouping_key={})
    assert entry._settled == []
    (tmp_path / "not-a-folder").write_text("")
    assert not export_metrics(_summary(), exit_code=1, success=False,
                              path=tmp_path / "not-a-folder" / "rebrand.prom",
                              pushgateway=None, grouping_key={})
    assert entry._settled == []
    assert export_metrics(_summary(), exit_code=1, success=False,
                          path=tmp_path / "rebrand.prom", pushgateway=None, grouping_key={})
    assert entry._settled == [(1, "the metrics file")]
