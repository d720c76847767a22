"""`rebrand demo`: a sandbox Space in-process on a free port, and a real run against it.

It needs no credentials and no network: the sandbox's own fake credentials are used,
and the theme comes from config.example.yaml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from worker.cli import loop
from worker.cli.commands import write_all_stating
from worker.cli.human import Ending
from worker.cli.screen import open_screen
from worker.cli.signals import watch_signals
from worker.config import Settings, load_settings, parse_settings
from worker.credentials import Credentials
from worker.errors import single_error
from worker.run.job import JobResult, run_job
from worker.run.logs import configure_logging
from worker.run.report import Reporter, write_report
from worker.run.stopping import Stop
from worker.sandbox import ON_THEME, FaultConfig, SandboxConfig, serve
from worker.space import parse_space
from worker.theme import COLOR_FIELDS, Theme

# Enough of every fault kind to show the retries working, not so much it drags.
DEMO_MAX_ATTEMPTS = 12
DEMO_FAULTS = FaultConfig(error_500=0.03, error_503=0.03, error_429=0.02,
                          drop_after_apply=0.02, retry_after_s=1.0)


def demo_settings(config: Path | None, flags: Mapping[str, Any] | None = None) -> Settings:
    """The demo's settings: from `config`, else ./config.example.yaml when there is one,
    else the same brand built in (the sandbox's ON_THEME; a test keeps the two equal), so
    the demo runs from any directory and from the container image."""
    # Replaced by the sandbox's own address once it is listening.
    placeholder = {"SIGNALWIRE_SPACE": "http://127.0.0.1"}
    example = Path("config.example.yaml")
    path = config or (example if example.is_file() else None)
    if path is not None:
        return load_settings(path, placeholder, flags)
    theme = Theme(tuple((name, ON_THEME[name]) for name in COLOR_FIELDS))
    return parse_settings({"theme": theme.as_config()}, placeholder, flags)


def run_demo(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    if getattr(ns, "fleet", False):
        return run_fleet_demo(ns)
    screen = open_screen(ns, env)
    sandbox_config = SandboxConfig(count=ns.count, latency_s=ns.latency,
                                   faults=DEMO_FAULTS if ns.faults else FaultConfig())
    template = demo_settings(ns.config, vars(ns))
    reporter = Reporter()
    # A person at a terminal gets the live bar, the event lines scrolling above it.
    screen.start_progress(reporter, total=ns.count, enabled=getattr(ns, "progress", True))
    stop = Stop()
    space: list[str] = []

    async def main() -> JobResult:
        with single_error():
            async with serve(sandbox_config) as sandbox, anyio.create_task_group() as tg:
                tg.start_soon(watch_signals, stop)
                # The demo's faults come from one seeded sequence, and its densest stretch
                # can meet a run's last few conferences back to back: 6 faults in a row
                # failed one conference in 2 of 9 demos. A demo shows the retries winning.
                retry = replace(template.retry, max_attempts=max(template.retry.max_attempts,
                                                                 DEMO_MAX_ATTEMPTS))
                settings = replace(template, space=parse_space(sandbox.url), retry=retry)
                space.append(settings.space.origin)
                credentials = Credentials(sandbox_config.project_id, sandbox_config.api_token)
                result = await run_job(settings, credentials, reporter=reporter, stop=stop)
                tg.cancel_scope.cancel()
        return result

    try:
        result = loop.run(main)
    finally:
        screen.stop_progress()
    code = int(result.exit_code)
    if ns.report is not None:
        # As `run` writes it: a report that cannot be written is said, not a traceback,
        # and the exit code it states is the process's.
        code, failures = write_all_stating([(ns.report, lambda stated, lost: write_report(
            ns.report, result.summary, reporter.failures, result.journal, exit_code=stated,
            secrets=Credentials(sandbox_config.project_id, sandbox_config.api_token).secrets,
            outputs_lost=lost))], code)
        for failure in failures:
            print(f"rebrand: error: {failure}; the demo's outcome is in the log above",
                  file=sys.stderr)
    screen.conclude(result.summary, Ending(
        "run", code, space=space[0] if space else None,
        journal=result.journal.resolve() if result.journal else None,
        report=ns.report.resolve() if ns.report is not None else None, demo=True))
    return code


# The fleet demo: three customers' Spaces, and two rules within each.
FLEET = ("acme", "globex", "initech")
SALES_THEME = {"light": {"primary": "#E8590C", "background": "#FFFFFF",
                         "foreground": "#1F2937", "success": "#15803D", "negative": "#B91C1C"},
               "dark": {"primary": "#FD7E14", "background": "#111827",
                        "foreground": "#F9FAFB", "success": "#22C55E", "negative": "#EF4444"}}


def run_fleet_demo(ns: argparse.Namespace) -> int:
    """`rebrand demo --fleet`: three sandbox Spaces in this process, each with its own
    credentials and data, themed in one run by two rules (sales rooms in orange, every
    other room in the brand), each Space through its own pipeline and journal."""
    from worker.cli.fleet import conclude
    from worker.fleet import parse_fleet, plan_runs
    from worker.run.fleet import run_fleet
    from worker.sandbox import serve_fleet

    fmt = configure_logging(ns.log_format)
    brand = demo_settings(ns.config, vars(ns)).themes
    assert brand is not None  # noqa: S101 - demo_settings always has a theme
    configs = {name: SandboxConfig(count=ns.count, seed=i + 1, latency_s=ns.latency,
                                   faults=DEMO_FAULTS if ns.faults else FaultConfig(),
                                   project_id=f"{name}-project",
                                   api_token=f"{name}-demo-token")
               for i, name in enumerate(FLEET)}
    # Where each target's credentials live: named variables, as a real fleet config says.
    env = {}
    for name, config in configs.items():
        env[f"{name.upper()}_PROJECT_ID"] = config.project_id
        env[f"{name.upper()}_API_TOKEN"] = config.api_token
    rules = [{"name": "sales", "select": {"include": ["*-sales"]}, "theme": SALES_THEME},
             {"name": "everyone-else", "theme": brand.rules[0].theme.as_config()}]
    stop = Stop()

    async def main() -> list[Any]:
        with single_error():
            async with serve_fleet(configs) as spaces, anyio.create_task_group() as tg:
                tg.start_soon(watch_signals, stop)
                raw = {"targets": [{"name": name, "space": spaces[name].url,
                                    "project_id_env": f"{name.upper()}_PROJECT_ID",
                                    "token_env": f"{name.upper()}_API_TOKEN"}
                                   for name in FLEET],
                       "rules": rules, "max_parallel_targets": len(FLEET),
                       "retry": {"max_attempts": DEMO_MAX_ATTEMPTS}}
                fleet = parse_fleet(raw)
                runs = plan_runs(fleet, env, vars(ns))
                results = await run_fleet(runs, max_parallel=fleet.max_parallel, stop=stop)
                tg.cancel_scope.cancel()
        return results

    results = loop.run(main)
    return conclude(results, ns, stop, fmt, secrets=(), dry_run=False)
