"""`rebrand demo`: a sandbox Space in-process on a free port, and a real run against it.

It needs no credentials and no network: the sandbox's own fake credentials are used,
and the theme comes from config.example.yaml.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import anyio

from worker import loop
from worker.config import Credentials, load_settings
from worker.job import JobOptions, JobResult, run_job
from worker.logs import configure_logging
from worker.progress import ProgressBar
from worker.report import Reporter, write_report
from worker.sandbox import FaultConfig, SandboxConfig, serve
from worker.signals import watch_signals
from worker.stopping import Stop

# Enough of every fault kind to show the retries working, not so much it drags.
DEMO_FAULTS = FaultConfig(error_500=0.03, error_503=0.03, error_429=0.02,
                          drop_after_apply=0.02, retry_after_s=1.0)


def run_demo(ns: argparse.Namespace) -> int:
    fmt = configure_logging(ns.log_format)
    sandbox_config = SandboxConfig(count=ns.count, latency_s=ns.latency,
                                   faults=DEMO_FAULTS if ns.faults else FaultConfig())
    reporter = Reporter()
    # A person at a terminal gets the live bar, the console log scrolling above it.
    bar = None
    if getattr(ns, "progress", True) and sys.stderr.isatty():
        bar = ProgressBar(reporter, sys.stderr, total=ns.count).attach()
        if sys.stdout.isatty():
            configure_logging(ns.log_format, stream=bar.log_stream(sys.stdout))
    stop = Stop()
    job = JobOptions(backup_dir=ns.backup_dir, grace_s=ns.grace_seconds,
                     max_failures=ns.max_failures, deadline_s=ns.deadline)

    async def main() -> JobResult:
        async with serve(sandbox_config) as sandbox, anyio.create_task_group() as tg:
            tg.start_soon(watch_signals, stop)
            settings = load_settings(ns.config, {"SIGNALWIRE_SPACE": sandbox.url})
            if ns.concurrency:
                settings = replace(settings, concurrency=ns.concurrency)
            credentials = Credentials(sandbox_config.project_id, sandbox_config.api_token)
            result = await run_job(settings, credentials, job, reporter=reporter, stop=stop)
            tg.cancel_scope.cancel()
        return result

    try:
        result = loop.run(main)
    finally:
        if bar is not None:
            bar.close()
    if ns.report is not None:
        write_report(ns.report, result.summary, reporter.failures, result.journal,
                     exit_code=int(result.exit_code))
    del fmt
    return int(result.exit_code)
