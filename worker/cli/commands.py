"""The commands behind the CLI: each builds settings and credentials from the parsed
flags and the environment, sets up logging, runs one job, and writes what was asked.

cli.py only parses and dispatches; this is the edge where files, terminals and the
environment meet the jobs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from worker.cli import confirm, loop
from worker.cli.metrics import export_metrics
from worker.cli.progress import ProgressBar
from worker.cli.signals import with_signals
from worker.cli.tables import plan_markdown, plan_table
from worker.config import Credentials, Settings, load_credentials, load_settings
from worker.errors import ConfigError, ExitCode
from worker.run.job import JobOptions, JobResult, RestoreSettings, restore_job, run_job
from worker.run.journal import read_journal
from worker.run.logs import configure_logging
from worker.run.producer import Selector
from worker.run.report import Reporter, write_report
from worker.run.stopping import Stop
from worker.select import all_of
from worker.shard import Shard, resolve_shard
from worker.space import NamedSpace, parse_space, restore_space


def _job_options(ns: argparse.Namespace, *, dry_run: bool) -> JobOptions:
    return JobOptions(dry_run=dry_run, backup_dir=ns.backup_dir, grace_s=ns.grace_seconds,
                      max_failures=ns.max_failures, deadline_s=ns.deadline)


def check_output_path(path: Path, flag: str) -> None:
    """Refuse, before anything is sent, an output file that could not be written later."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot create {path.parent} ({exc.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{flag} {path}: {path.parent} is not writable")


def _conclude(result: JobResult, ns: argparse.Namespace, reporter: Reporter,
              log_format: str, *, secrets: tuple[str, ...],
              shard: Shard | None = None) -> int:
    try:
        if getattr(ns, "report", None) is not None:
            write_report(ns.report, result.summary, reporter.failures, result.journal,
                         exit_code=int(result.exit_code), secrets=secrets)
        if getattr(ns, "summary_md", None) is not None:
            ns.summary_md.write_text(plan_markdown(reporter.planned, result.summary,
                                                   exit_code=int(result.exit_code)),
                                     encoding="utf-8")
    except OSError as exc:
        # The run itself is over and its outcome stands; say what could not be saved.
        print(f"rebrand: error: could not write {exc.filename}: {exc.strerror}",
              file=sys.stderr)
    if log_format == "console" and reporter.planned:
        print(plan_table(reporter.planned), file=sys.stdout)
    _export_metrics(result, ns, shard)
    return int(result.exit_code)


def _export_metrics(result: JobResult, ns: argparse.Namespace, shard: Shard | None) -> None:
    code = int(result.exit_code)
    export_metrics(
        result.summary, exit_code=code,
        success=code == ExitCode.OK or (code == ExitCode.CHANGES_PENDING and ns.command == "plan"),
        path=ns.metrics_file, pushgateway=ns.pushgateway,
        grouping_key={"command": ns.command, **({"shard": str(shard.index)} if shard else {})},
    )


def _progress(ns: argparse.Namespace, reporter: Reporter, credentials: Credentials,
              total: int | None) -> ProgressBar | None:
    """A live bar on a terminal's stderr; the console log then scrolls above it."""
    if not (ns.progress and sys.stderr.isatty()):
        return None
    bar = ProgressBar(reporter, sys.stderr, total=total).attach()
    if sys.stdout.isatty():
        configure_logging(ns.log_format, secrets=credentials.secrets,
                          stream=bar.log_stream(sys.stdout))
    return bar


def _ask_first(settings: Settings, credentials: Credentials, job: JobOptions,
               select: Selector | None) -> tuple[int | None, int | None]:
    """Plan, and above `confirm_above` changes ask. Returns (exit code to stop with, or
    None to go on; the number of conferences listed, for the progress bar)."""
    stop = Stop()  # its event belongs to this event loop, not the run's
    plan, planned = loop.run(with_signals, lambda: confirm.plan_quietly(
        settings, credentials, job, select=select, stop=stop), stop)
    if plan.exit_code not in (ExitCode.OK, ExitCode.CHANGES_PENDING):
        return int(plan.exit_code), None
    count = plan.summary.planned
    if confirm.needs_consent(count, settings.confirm_above):
        print(plan_table(planned.planned), file=sys.stdout)
        prompt = confirm.question(count, plan.summary.listed, settings.space.host,
                                  settings.confirm_above)
        if not confirm.ask(prompt, out=sys.stderr, read=sys.stdin.readline):
            print("rebrand: nothing was changed", file=sys.stderr)
            return int(ExitCode.ABORTED), None
    return None, plan.summary.listed


def run_command(ns: argparse.Namespace, env: Mapping[str, str], *, dry_run: bool) -> int:
    settings = load_settings(ns.config, env)
    if ns.concurrency:
        settings = _override_concurrency(settings, ns.concurrency)
    selection = settings.select.with_flags(ns.select, ns.exclude)
    shard = resolve_shard(ns.shard, env)
    if shard is not None:
        settings = replace(settings, rate_limit=shard.rate_limit(settings.rate_limit))
    select = all_of(selection.matches if selection.narrows else None,
                    shard.owns if shard else None)
    credentials = load_credentials(env)
    fmt = configure_logging(ns.log_format, secrets=credentials.secrets)
    job = replace(_job_options(ns, dry_run=dry_run), list_filters=selection.list_filters())
    total = None
    if confirm.plan_first(yes=getattr(ns, "yes", False), dry_run=dry_run, stdin=sys.stdin):
        code, total = _ask_first(settings, credentials, job, select)
        if code is not None:
            return code
    stop = Stop()
    reporter = Reporter(keep_plans=dry_run and (fmt == "console" or ns.summary_md is not None))
    bar = _progress(ns, reporter, credentials, total)
    try:
        result = loop.run(with_signals, lambda: run_job(
            settings, credentials, job, reporter=reporter, stop=stop, select=select,
            command="plan" if dry_run else "run"), stop)
    finally:
        if bar is not None:
            bar.close()
    return _conclude(result, ns, reporter, fmt, secrets=credentials.secrets, shard=shard)


def _override_concurrency(settings: Settings, concurrency: int) -> Settings:
    return replace(settings, concurrency=concurrency)


def _named_space(ns: argparse.Namespace, env: Mapping[str, str],
                 settings: Settings | None) -> NamedSpace | None:
    """The Space the operator named for a restore: --space, else SIGNALWIRE_SPACE, else
    the --config's `space` (the same order as for run, with the flag on top)."""
    if ns.space:
        return NamedSpace(parse_space(ns.space, key="--space"), "--space")
    if env.get("SIGNALWIRE_SPACE"):
        return NamedSpace(parse_space(env["SIGNALWIRE_SPACE"], key="SIGNALWIRE_SPACE"),
                          "SIGNALWIRE_SPACE")
    if settings is not None:
        return NamedSpace(settings.space, f"--config {ns.config}")
    return None


def restore_command(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    contents = read_journal(ns.journal)
    settings = load_settings(ns.config, env) if ns.config is not None else None
    # Checked before the credentials are even read: nothing goes anywhere unnamed.
    space = restore_space(_named_space(ns, env, settings), contents.header.get("space"),
                          str(ns.journal))
    credentials = load_credentials(env)
    fmt = configure_logging(ns.log_format, secrets=credentials.secrets)
    reporter = Reporter(keep_plans=ns.dry_run and fmt == "console")
    stop = Stop()
    restore_settings = RestoreSettings(space=space, force=ns.force)
    if settings is not None:
        # A config's limits are the Space's: a restore keeps to them as its run did.
        restore_settings = replace(
            restore_settings, concurrency=settings.concurrency,
            rate_limit=settings.rate_limit, request_timeout_s=settings.request_timeout_s,
            retry=settings.retry)
    if ns.concurrency:
        restore_settings = replace(restore_settings, concurrency=ns.concurrency)
    job = _job_options(ns, dry_run=ns.dry_run)
    bar = _progress(ns, reporter, credentials, None)
    try:
        result = loop.run(with_signals, lambda: restore_job(
            ns.journal, restore_settings, credentials, job, reporter=reporter, stop=stop),
            stop)
    finally:
        if bar is not None:
            bar.close()
    return _conclude(result, ns, reporter, fmt, secrets=credentials.secrets)


def validate_command(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = load_settings(ns.config, env)
    credentials: Credentials = load_credentials(env)
    print(f"rebrand: {ns.config} is valid: Space {settings.space.origin}, "
          f"{len(settings.theme.colors)} theme colors, credentials for project "
          f"{credentials.project_id} present")
    return ExitCode.OK
