"""A stop meeting another stop, or a wait: a signal during the drain that the deadline or
the failure budget began, and SIGTERM while writers wait out a Retry-After or a pacing
slot. Each is a real `rebrand run` in a child process against a Space served here, which
holds its answers and tells the test what it saw, so every signal lands at a known moment.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from aiohttp import web
from anyio.abc import Process

from tests.support import FAST_RETRY, json_events, sandbox_env, serve_app, write_config
from tests.test_counts import check_counts
from tests.test_hostile_server import conference, ids, space_app

pytestmark = pytest.mark.anyio

Put = Callable[[web.Request], Awaitable[web.StreamResponse]]


def listed_space(count: int, put: Put, *, broken: int | None = None) -> web.Application:
    """`count` off-theme conferences on one page; PUTs go to `put`. Conference `broken`
    has no display name a PUT can carry, so it fails without a request."""
    rows = [conference(cid, n) for n, cid in enumerate(ids(count))]
    if broken is not None:
        rows[broken] = {**rows[broken], "display_name": None, "name": "n" * 250}

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": rows}

    return space_app(pages, [], put=put)


async def answer(request: web.Request) -> web.Response:
    """The Space's PUT: the conference with the body over it."""
    cid = request.match_info["id"]
    n = ids(100).index(cid)
    return web.json_response({**conference(cid, n), **await request.json()})


@asynccontextmanager
async def run_cli(tmp_path: Path, url: str, *flags: str, **config: Any
                  ) -> AsyncIterator[tuple[Process, list[bytes]]]:
    """`rebrand run` against `url`; yields the process and the stdout read so far (the
    test reads it with `read_until`)."""
    path = write_config(tmp_path, url, **{"concurrency": 2, **config})
    command = [sys.executable, "-m", "worker", "run", "--config", str(path),
               "--log-format", "json", "--backup-dir", str(tmp_path / "b"), *flags]
    async with await anyio.open_process(command, env=sandbox_env(), cwd=tmp_path) as proc:
        yield proc, []


async def read_until(proc: Process, out: list[bytes], needle: bytes) -> None:
    """Read stdout until `needle` or its end (the test's assertions say which)."""
    assert proc.stdout is not None
    with anyio.fail_after(30):
        while needle not in b"".join(out):
            try:
                out.append(await proc.stdout.receive())
            except anyio.EndOfStream:
                return


async def finish(proc: Process, out: list[bytes]) -> tuple[int, list[dict[str, Any]]]:
    assert proc.stdout is not None
    with anyio.fail_after(60):
        async for chunk in proc.stdout:
            out.append(chunk)
        code = await proc.wait()
    return code, json_events(b"".join(out).decode())


async def test_a_first_signal_during_the_failure_budgets_drain_lets_the_drain_finish(
    tmp_path: Path
) -> None:
    """--max-failures 1 starts a drain while a PUT is held open; a SIGTERM then is the
    first signal, not a second one: the held write finishes, the summary is the last
    line, and the stop that came first (the budget, exit 4) decides the exit code."""
    arrived, release = anyio.Event(), anyio.Event()
    applied: set[str] = set()

    async def held(request: web.Request) -> web.Response:
        applied.add(request.match_info["id"])
        arrived.set()
        await release.wait()
        return await answer(request)

    async with serve_app(listed_space(6, held, broken=1)) as url, \
            run_cli(tmp_path, url, "--max-failures", "1", "--grace-seconds", "30") as (proc, out):
        await arrived.wait()
        await read_until(proc, out, b'"conference.failed"')
        proc.send_signal(signal.SIGTERM)
        await read_until(proc, out, b'"run.stopping"')
        release.set()
        code, events = await finish(proc, out)
    assert events[-1]["event"] == "run.summary", events[-1]
    assert code == 4
    summary = events[-1]
    assert summary["stopped"] == "too many failures"
    assert (summary["updated"], summary["failed"], summary["unknown"]) == (1, 1, 0)
    check_counts(summary, events, tmp_path / "b", applied)


async def test_sigterm_while_a_write_waits_out_a_long_retry_after_stops_at_once(
    tmp_path: Path
) -> None:
    """A write told to come back in 30 s is not in flight: the stop ends its wait, sends
    no further attempt, and does not spend the 20 s grace period on it."""
    refused = anyio.Event()
    puts: list[str] = []

    async def throttled(request: web.Request) -> web.Response:
        puts.append(request.match_info["id"])
        if len(puts) == 2:  # both writers (concurrency 2) refused
            refused.set()
        return web.json_response({"errors": [{"code": "rate_limited"}]}, status=429,
                                 headers={"Retry-After": "30"})

    async with serve_app(listed_space(4, throttled)) as url, \
            run_cli(tmp_path, url, retry={**FAST_RETRY, "retry_after_cap_s": 60}) as (proc, out):
        await refused.wait()
        # Both writers are now asleep for 30 s (an instant after their 429).
        started = anyio.current_time()
        proc.send_signal(signal.SIGTERM)
        code, events = await finish(proc, out)
        took = anyio.current_time() - started
    assert code == 143
    assert took < 5, f"{took:.1f} s: the stop waited for the grace period"
    assert len(puts) == 2  # no attempt after the stop
    summary = events[-1]
    assert summary["event"] == "run.summary"
    # Both answers came (429): nothing landed, so nothing is unknown.
    assert (summary["updated"], summary["unknown"]) == (0, 0)
    check_counts(summary, events, tmp_path / "b", set())


async def test_sigterm_sends_no_write_that_was_still_waiting_for_its_pacing_slot(
    tmp_path: Path
) -> None:
    """At one PUT a second, writers queue for their slots with their pre-images journaled;
    the stop lets the one PUT in flight finish and sends none of the queued ones."""
    puts: list[str] = []
    first = anyio.Event()

    async def counted(request: web.Request) -> web.Response:
        puts.append(request.match_info["id"])
        first.set()
        return await answer(request)

    async with serve_app(listed_space(20, counted)) as url, \
            run_cli(tmp_path, url, concurrency=8, rate_limit=1) as (proc, out):
        await first.wait()
        started = anyio.current_time()
        proc.send_signal(signal.SIGTERM)
        code, events = await finish(proc, out)
        took = anyio.current_time() - started
    assert code == 143
    assert len(puts) == 1, puts
    assert took < 3, f"{took:.1f} s"
    summary = events[-1]
    assert summary["event"] == "run.summary"
    assert (summary["updated"], summary["unknown"]) == (1, 0)
    check_counts(summary, events, tmp_path / "b", set(puts))



# -- A stop that comes when nothing is left to start stops nothing ------------------------


@pytest.mark.parametrize(("broken", "code", "stopped", "not_started"),
                         [(2, 1, None, 0), (0, 4, "too many failures", 2)])
async def test_the_failure_budget_spent_on_the_last_conference_stops_nothing(
    tmp_path: Path, broken: int, code: int, stopped: str | None, not_started: int
) -> None:
    """One at a time, the budget is spent by conference `broken`: the last one leaves
    nothing to stop (its failure is exit 1, as without --max-failures); the first leaves
    two not started (exit 4, as before)."""
    async with serve_app(listed_space(3, answer, broken=broken)) as url, \
            run_cli(tmp_path, url, "--max-failures", "1", "--report",
                    str(tmp_path / "r.json"), concurrency=1) as (proc, out):
        exit_code, events = await finish(proc, out)
    summary = events[-1]
    assert (exit_code, summary["stopped"], summary["not_started"]) == (
        code, stopped, not_started), summary
    assert orjson.loads((tmp_path / "r.json").read_bytes())["exit_code"] == code


@pytest.mark.parametrize(("count", "code", "stopped", "not_started"),
                         [(1, 0, None, 0), (2, 5, "deadline reached", 1)])
async def test_a_deadline_that_passes_during_the_last_write_stops_nothing(
    tmp_path: Path, count: int, code: int, stopped: str | None, not_started: int
) -> None:
    """The deadline passes while the first PUT is held open, and the grace lets it finish:
    with nothing else listed the run is whole (exit 0); with one more conference still to
    start, the deadline stopped it (exit 5, as before)."""

    async def slow(request: web.Request) -> web.Response:
        await anyio.sleep(1.5)
        return await answer(request)

    async with serve_app(listed_space(count, slow)) as url, \
            run_cli(tmp_path, url, "--deadline", "0.5", concurrency=1) as (proc, out):
        exit_code, events = await finish(proc, out)
    summary = events[-1]
    assert (exit_code, summary["stopped"], summary["not_started"]) == (
        code, stopped, not_started), summary
    assert summary["updated"] == 1



# -- A signal after the work ended: report and exit code agree -----------------------------


def held_pushgateway(pushed: anyio.Event, release: anyio.Event) -> web.Application:
    """A Pushgateway that holds the push open until `release`: the run is then past its
    report, with its metrics still to send."""

    async def push(_request: web.Request) -> web.Response:
        pushed.set()
        await release.wait()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", push)
    return app


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGTERM, signal.SIGINT]])
async def test_a_signal_after_the_report_is_written_exits_with_the_reports_code(
    tmp_path: Path, signals: list[int]
) -> None:
    """Every conference is done and the report (and the Markdown summary) say exit 0 when
    SIGTERM comes, while the metrics are pushed: the signal ends the push, but the work was
    not interrupted, so the process exits 0 as its report says. A second signal at once
    after it ends the process with that code too."""
    pushed, release = anyio.Event(), anyio.Event()
    report, markdown = tmp_path / "r.json", tmp_path / "plan.md"
    async with serve_app(listed_space(3, answer)) as url, \
            serve_app(held_pushgateway(pushed, release)) as gateway, \
            run_cli(tmp_path, url, "--report", str(report), "--summary-md", str(markdown),
                    "--pushgateway", gateway) as (proc, out):
        with anyio.fail_after(30):
            await pushed.wait()
        for signum in signals:
            with suppress(ProcessLookupError):  # the first may have ended it already
                proc.send_signal(signum)
        code, events = await finish(proc, out)
        release.set()
        assert proc.stderr is not None
        err = b"".join([chunk async for chunk in proc.stderr]).decode()
    document = orjson.loads(report.read_bytes())
    assert document["exit_code"] == 0
    assert document["summary"]["updated"] == 3
    assert code == document["exit_code"], (events[-3:], err)
    assert "exit 0, as the report says" in err
    assert markdown.is_file()  # written before the metrics, with the same code


def exit_code_metric(path: Path) -> float:
    """`rebrand_exit_code` in a metrics file."""
    from prometheus_client.parser import text_string_to_metric_families

    return next(s.value for f in text_string_to_metric_families(path.read_text())
                for s in f.samples if s.name == "rebrand_exit_code")


@pytest.mark.parametrize("to_file", [True, False])
async def test_a_signal_after_the_metrics_state_the_exit_code_exits_with_it(
    tmp_path: Path, to_file: bool
) -> None:
    """No --report: the metrics are what states the exit code (a single Space's
    `rebrand_exit_code`). The file is written saying 0 (or the push that says 0 is on its
    way) when SIGTERM comes during the push: the work was not interrupted, and the process
    exits 0 as the metrics say, not 143."""
    pushed, release = anyio.Event(), anyio.Event()
    metrics = tmp_path / "rebrand.prom"
    async with serve_app(listed_space(3, answer)) as url, \
            serve_app(held_pushgateway(pushed, release)) as gateway, \
            run_cli(tmp_path, url, "--pushgateway", gateway,
                    *(("--metrics-file", str(metrics)) if to_file else ())) as (proc, out):
        with anyio.fail_after(30):
            await pushed.wait()
        proc.send_signal(signal.SIGTERM)
        code, events = await finish(proc, out)
        release.set()
        assert proc.stderr is not None
        err = b"".join([chunk async for chunk in proc.stderr]).decode()
    assert events[-1]["updated"] == 3
    if to_file:
        assert exit_code_metric(metrics) == 0
    assert code == 0, err
    assert f"exit 0, as the {'metrics file' if to_file else 'Pushgateway'} says" in err
