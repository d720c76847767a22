"""The command line: parse, check, set up logging once, await one job, exit with its code.

    rebrand run --config PATH      re-theme every conference      (exit 0/1/2/3/4/130/143)
    rebrand plan --config PATH     show what run would change     (exit 0, or 10 if pending)
    rebrand restore JOURNAL        put a run's pre-images back
    rebrand validate --config PATH check config and credentials offline
    rebrand sandbox                serve a simulated Space on loopback
    rebrand demo                   the sandbox plus a run on it, no credentials needed
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from worker import __version__, confirm, loop
from worker.argtypes import concurrency, non_negative, positive_float, positive_int
from worker.config import Credentials, Settings, load_credentials, load_settings
from worker.errors import ConfigError, ExitCode, RebrandError, primary_error
from worker.job import JobOptions, JobResult, RestoreSettings, restore_job, run_job
from worker.journal import read_journal
from worker.logs import configure_logging
from worker.metrics import export_metrics
from worker.producer import Selector
from worker.progress import ProgressBar
from worker.report import Reporter, write_report
from worker.select import all_of
from worker.shard import Shard, resolve_shard
from worker.signals import with_signals
from worker.space import is_loopback, parse_space
from worker.stopping import Stop
from worker.tables import plan_markdown, plan_table


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with a message that says what to change."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitCode.BAD_INPUT, f"rebrand: error: {message}\n")


def _add_job_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=("json", "console", "auto"), default="auto",
                   help="JSON lines, the console renderer, or JSON unless stdout is a terminal")
    p.add_argument("--backup-dir", type=Path, default=Path("rebrand-backups"),
                   help="where the backup journal is written (default ./rebrand-backups)")
    p.add_argument("--grace-seconds", type=positive_float, default=20.0,
                   help="on SIGTERM/SIGINT, time in-flight writes get to finish (default 20)")
    p.add_argument("--deadline", type=positive_float, default=None, metavar="SECONDS",
                   help="stop cleanly after this long and exit 4")
    p.add_argument("--max-failures", type=positive_int, default=25, metavar="N",
                   help="abort with exit 4 once N conferences have failed (default 25)")
    p.add_argument("--report", type=Path, default=None, metavar="PATH",
                   help="write a JSON report (summary, failures, journal path) here")
    p.add_argument("--concurrency", type=concurrency, default=None,
                   help="override the config's concurrency")


def _add_ops_flags(p: argparse.ArgumentParser) -> None:
    """Progress and metrics: for run, plan and restore."""
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no live progress bar on stderr (it is drawn only on a terminal)")
    p.add_argument("--metrics-file", type=Path, default=None, metavar="PATH",
                   help="write Prometheus text format here (node-exporter textfile style)")
    p.add_argument("--pushgateway", default=None, metavar="URL",
                   help="push the same metrics to this Prometheus Pushgateway")


def _add_selection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--select", action="append", metavar="GLOB",
                   help="only conferences whose name matches (adds to select.include)")
    p.add_argument("--exclude", action="append", metavar="GLOB",
                   help="leave out conferences whose name matches (adds to select.exclude)")
    p.add_argument("--shard", default=None, metavar="INDEX/COUNT",
                   help="take slice INDEX of COUNT by conference id; INDEX defaults to "
                        "JOB_COMPLETION_INDEX, COUNT to REBRAND_SHARD_COUNT")
    p.add_argument("--summary-md", type=Path, default=None, metavar="PATH",
                   help="write the plan as Markdown here (for a CI job summary)")


def build_parser() -> argparse.ArgumentParser:
    from worker.sandbox.cli import add_sandbox_arguments

    parser = _Parser(prog="rebrand", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rebrand {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="re-theme every conference in the Space")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--dry-run", action="store_true", help="same as `plan`: send no writes")
    run.add_argument("--yes", action="store_true",
                     help="do not ask at a terminal, however many conferences would change")
    _add_job_flags(run)
    _add_ops_flags(run)
    _add_selection_flags(run)

    plan = sub.add_parser("plan", help="show what `run` would change; exit 10 if anything")
    plan.add_argument("--config", type=Path, required=True)
    _add_job_flags(plan)
    _add_ops_flags(plan)
    _add_selection_flags(plan)

    restore = sub.add_parser("restore", help="put a journal's pre-images back")
    restore.add_argument("journal", type=Path)
    restore.add_argument("--force", action="store_true",
                         help="restore conferences edited by someone else since our write")
    restore.add_argument("--dry-run", action="store_true", help="show, send no writes")
    _add_job_flags(restore)
    _add_ops_flags(restore)

    validate = sub.add_parser("validate", help="check the config and credentials offline")
    validate.add_argument("--config", type=Path, required=True)

    sandbox = sub.add_parser("sandbox", help="serve a simulated Space on loopback")
    add_sandbox_arguments(sandbox)

    demo = sub.add_parser("demo", help="run the job on an in-process sandbox")
    demo.add_argument("--count", type=positive_int, default=500)
    demo.add_argument("--latency", type=non_negative, default=0.005)
    demo.add_argument("--no-faults", dest="faults", action="store_false")
    demo.add_argument("--config", type=Path, default=None,
                      help="whose theme to apply (default ./config.example.yaml if present, "
                           "else the same brand built in)")
    _add_job_flags(demo)
    return parser


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


def _run(ns: argparse.Namespace, env: Mapping[str, str], *, dry_run: bool) -> int:
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


def _restore(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    contents = read_journal(ns.journal)
    space_text = env.get("SIGNALWIRE_SPACE") or str(contents.header.get("space", ""))
    space = parse_space(space_text, key="SIGNALWIRE_SPACE" if env.get("SIGNALWIRE_SPACE")
                        else "journal header space")
    credentials = load_credentials(env)
    fmt = configure_logging(ns.log_format, secrets=credentials.secrets)
    reporter = Reporter(keep_plans=ns.dry_run and fmt == "console")
    stop = Stop()
    settings = RestoreSettings(space=space, concurrency=ns.concurrency or 16, force=ns.force)
    job = _job_options(ns, dry_run=ns.dry_run)
    bar = _progress(ns, reporter, credentials, None)
    try:
        result = loop.run(with_signals, lambda: restore_job(
            ns.journal, settings, credentials, job, reporter=reporter, stop=stop), stop)
    finally:
        if bar is not None:
            bar.close()
    return _conclude(result, ns, reporter, fmt, secrets=credentials.secrets)


def _validate(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = load_settings(ns.config, env)
    credentials: Credentials = load_credentials(env)
    print(f"rebrand: {ns.config} is valid: Space {settings.space.origin}, "
          f"{len(settings.theme.colors)} theme colors, credentials for project "
          f"{credentials.project_id} present")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    environ = os.environ if env is None else env
    try:
        for flag, path in (("--report", getattr(ns, "report", None)),
                           ("--summary-md", getattr(ns, "summary_md", None)),
                           ("--metrics-file", getattr(ns, "metrics_file", None))):
            if path is not None:
                check_output_path(path, flag)
        if ns.command in ("run", "plan"):
            return _run(ns, environ, dry_run=ns.command == "plan" or ns.dry_run)
        if ns.command == "restore":
            return _restore(ns, environ)
        if ns.command == "validate":
            return _validate(ns, environ)
        if ns.command == "sandbox":
            from worker.sandbox.cli import config_from_args
            from worker.sandbox.server import main_serve

            if not is_loopback(ns.host):
                raise ConfigError(f"--host {ns.host}: the sandbox serves loopback only; use "
                                  "127.0.0.1, ::1 or localhost")
            try:
                sandbox_config = config_from_args(ns)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            main_serve(sandbox_config, ns.host, ns.port)
            return ExitCode.OK
        if ns.command == "demo":
            from worker.demo import run_demo

            return run_demo(ns)
    except RebrandError as exc:
        print(f"rebrand: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except BaseExceptionGroup as group:
        # An error of ours raised inside the event loop arrives wrapped by a task group.
        error = primary_error(group)
        if not isinstance(error, RebrandError):
            raise
        print(f"rebrand: error: {error}", file=sys.stderr)
        return int(error.exit_code)
    raise ConfigError(f"unknown command {ns.command}")  # pragma: no cover - argparse guards
