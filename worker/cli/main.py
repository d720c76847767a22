"""The command line: parse the flags, dispatch to a command, exit with its code.

    rebrand run --config PATH      re-theme every conference      (exit 0/1/2/3/4/130/143)
    rebrand plan --config PATH     show what run would change     (exit 0, or 10 if pending)
    rebrand restore JOURNAL        put a run's pre-images back (--space names the Space)
    rebrand validate --config PATH check config and credentials (--online: the Space too)
    rebrand preview --config PATH --out FILE.html   see the theme, no credentials needed
    rebrand sandbox                serve a simulated Space on loopback
    rebrand demo                   the sandbox plus a run on it, no credentials needed
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from worker.cli import commands
from worker.cli.argtypes import concurrency, non_negative, positive_float, positive_int
from worker.config import DEFAULTS
from worker.errors import ConfigError, ExitCode, RebrandError
from worker.space import ALLOW_FLAG, is_loopback
from worker.version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with a message that says what to change."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitCode.BAD_INPUT, f"rebrand: error: {message}\n")


class _Version(argparse.Action):
    """`--version`: the tool's version and the API spec it carries. The spec is read only
    when asked, so parsing any other command line costs nothing."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from worker.openapi import spec_version

        print(f"rebrand {__version__}\nAPI spec: {spec_version()}")
        parser.exit()


def _add_job_flags(p: argparse.ArgumentParser) -> None:
    # A flag left out is None: the config file's value, or the default Settings writes, stands.
    p.add_argument("--log-format", choices=("json", "console", "auto"), default="auto",
                   help="JSON lines, the console renderer, or JSON unless stdout is a terminal")
    p.add_argument("--backup-dir", type=Path, default=None,
                   help="where the backup journal is written "
                        f"(default ./{DEFAULTS['backup_dir']})")
    p.add_argument("--grace-seconds", dest="grace_s", type=positive_float, default=None,
                   metavar="SECONDS",
                   help="on SIGTERM/SIGINT, time in-flight writes get to finish "
                        f"(default {DEFAULTS['grace_s']:g})")
    p.add_argument("--deadline", dest="deadline_s", type=positive_float, default=None,
                   metavar="SECONDS", help="stop cleanly after this long and exit 4")
    p.add_argument("--max-failures", type=positive_int, default=None, metavar="N",
                   help="abort with exit 4 once N conferences have failed "
                        f"(default {DEFAULTS['max_failures']})")
    p.add_argument("--report", type=Path, default=None, metavar="PATH",
                   help="write a JSON report (summary, failures, journal path) here")
    p.add_argument("--concurrency", type=concurrency, default=None,
                   help="override the config's concurrency "
                        f"(default {DEFAULTS['concurrency']})")
    p.add_argument("--allow-field", action="append", metavar="NAME",
                   help="a property the API spec does not name, that the Space's PUT leaves "
                        "alone: go on when answers hold it (repeatable; also "
                        "REBRAND_ALLOW_FIELDS=a,b)")


def _add_allow_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(ALLOW_FLAG, action="append", default=[], metavar="HOST",
                   help="allow this host as the Space although it is not "
                        "<name>.signalwire.com or loopback (also REBRAND_ALLOW_SPACE_HOST)")


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
    p.add_argument("--target", action="append", metavar="NAME",
                   help="with a fleet config (`targets:`): run only this target (repeatable)")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """What `run` and `plan` share: they differ only in whether writes are sent."""
    p.add_argument("--config", type=Path, required=True)
    _add_job_flags(p)
    _add_allow_flag(p)
    _add_ops_flags(p)
    _add_selection_flags(p)


def build_parser() -> argparse.ArgumentParser:
    from worker.sandbox.cli import add_sandbox_arguments

    parser = _Parser(prog="rebrand", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version,
                        help="show the version and the API spec it carries, and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="re-theme every conference in the Space")
    run.add_argument("--dry-run", action="store_true", help="same as `plan`: send no writes")
    run.add_argument("--yes", action="store_true",
                     help="do not ask at a terminal, however many conferences would change")
    _add_run_flags(run)
    plan = sub.add_parser("plan", help="show what `run` would change; exit 10 if anything")
    _add_run_flags(plan)
    plan.add_argument("--preview", type=Path, default=None, metavar="FILE.html",
                      help="also write an HTML preview: the theme, and each current "
                           "palette before and after, with its count")

    restore = sub.add_parser("restore", help="put a journal's pre-images back")
    restore.add_argument("journal", type=Path)
    restore.add_argument("more_journals", nargs="*", type=Path, metavar="JOURNAL",
                         help="with a fleet --config: more journals, or directories standing "
                              "for each target's newest run journal")
    restore.add_argument("--force", action="store_true",
                         help="restore conferences edited by someone else since our write")
    restore.add_argument("--dry-run", action="store_true", help="show, send no writes")
    restore.add_argument("--space", default=None, metavar="SPACE",
                         help="the Space to restore (overrides SIGNALWIRE_SPACE); the "
                              "journal's header must name the same one")
    restore.add_argument("--config", type=Path, default=None,
                         help="take the Space (and its limits) from this config")
    _add_job_flags(restore)
    _add_allow_flag(restore)
    _add_ops_flags(restore)

    validate = sub.add_parser("validate", help="check the config and credentials offline; "
                                                "--online also checks the Space against the spec")
    validate.add_argument("--config", type=Path, required=True)
    _add_allow_flag(validate)
    validate.add_argument("--online", action="store_true",
                          help="also read one listing page and one conference and check them "
                               "against the API spec this rebrand carries (writes nothing; "
                               "exit 4 on a mismatch)")
    validate.add_argument("--allow-field", action="append", metavar="NAME",
                          help="with --online: a property beyond the spec that is allowed "
                               "(as for run)")

    preview = sub.add_parser("preview", help="write an HTML page showing the theme on a "
                             "conference room, its contrast and color-vision checks")
    preview.add_argument("--config", type=Path, required=True)
    preview.add_argument("--out", type=Path, required=True, metavar="FILE.html")

    sandbox = sub.add_parser("sandbox", help="serve a simulated Space on loopback")
    add_sandbox_arguments(sandbox)

    demo = sub.add_parser("demo", help="run the job on an in-process sandbox")
    demo.add_argument("--count", type=positive_int, default=500)
    demo.add_argument("--latency", type=non_negative, default=0.005)
    demo.add_argument("--no-faults", dest="faults", action="store_false")
    demo.add_argument("--fleet", action="store_true",
                      help="three sandbox Spaces, each its own credentials, and two rules")
    demo.add_argument("--config", type=Path, default=None,
                      help="whose theme to apply (default ./config.example.yaml if present, "
                           "else the same brand built in)")
    _add_job_flags(demo)
    return parser


SANDBOX_EXTRA = "conference-rebrand[sandbox]"


def require_sandbox_extra(command: str) -> None:
    """The sandbox validates requests with openapi-core, which only the `sandbox` extra
    installs: a production install (and the image) leaves it out."""
    if importlib.util.find_spec("openapi_core") is None:
        raise ConfigError(f"`rebrand {command}` needs the sandbox extra, which this install "
                          f"leaves out; add it with: {sys.executable} -m pip install "
                          f"'{SANDBOX_EXTRA}'")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    environ = os.environ if env is None else env
    try:
        for flag, path in (("--report", getattr(ns, "report", None)),
                           ("--summary-md", getattr(ns, "summary_md", None)),
                           ("--metrics-file", getattr(ns, "metrics_file", None)),
                           ("--preview", getattr(ns, "preview", None)),
                           ("--out", getattr(ns, "out", None))):
            if path is not None:
                commands.check_output_path(path, flag)
        if ns.command in ("run", "plan"):
            return commands.run_command(ns, environ)
        simple = {"restore": commands.restore_command, "validate": commands.validate_command,
                  "preview": commands.preview_command}
        if ns.command in simple:
            return simple[ns.command](ns, environ)
        if ns.command == "sandbox":
            require_sandbox_extra("sandbox")
            from worker.sandbox.cli import config_from_args
            from worker.sandbox.server import main_serve

            if not is_loopback(ns.host):
                raise ConfigError(f"--host {ns.host}: the sandbox serves loopback only; use "
                                  "127.0.0.1, ::1 or localhost")
            try:
                sandbox_config = config_from_args(ns)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            main_serve(sandbox_config, ns.host, ns.port)
            return ExitCode.OK
        if ns.command == "demo":
            require_sandbox_extra("demo")
            from worker.cli.demo import run_demo

            return run_demo(ns)
    except RebrandError as exc:
        print(f"rebrand: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    raise ConfigError(f"unknown command {ns.command}")  # pragma: no cover - argparse guards
