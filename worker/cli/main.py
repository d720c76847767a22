"""The command line: parse the flags, dispatch to a command, exit with its code.
The words of `--help` live in helptext.py."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from worker.cli import commands, helptext, streams
from worker.cli.argtypes import concurrency, non_negative, positive_float, positive_int
from worker.cli.entry import outputs_cleared
from worker.config import DEFAULTS
from worker.credentials import environment_secrets
from worker.errors import ConfigError, ExitCode, RebrandError
from worker.run.logs import lose_stdout, scrub, secret_forms
from worker.space import ALLOW_FLAG, is_loopback
from worker.text import printable
from worker.version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with a message that says what to change."""

    # Where --summary-md points in the arguments being parsed, so that a usage error
    # still leaves the CI job a plan.md that says what is wrong.
    summary_md: Path | None = None
    # The environment whose credentials a usage error (which quotes the bad value) hides.
    env: Mapping[str, str] = {}

    def error(self, message: str) -> None:  # type: ignore[override]
        message = _without_secrets(message, _Parser.env)
        self.print_usage(sys.stderr)
        commands.write_error_summary(_Parser.summary_md, ExitCode.BAD_INPUT, message)
        self.exit(ExitCode.BAD_INPUT, f"rebrand: error: {message}\n")


def _without_secrets(message: str, env: Mapping[str, str]) -> str:
    """An error message with the environment's credentials hidden: a value quoted as
    wrong (in the config file, on the command line) may be the token, pasted there."""
    return scrub(message, secret_forms(environment_secrets(env)))


def _summary_md_in(args: Sequence[str]) -> Path | None:
    for i, arg in enumerate(args):
        if arg == "--summary-md" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--summary-md="):
            return Path(arg.split("=", 1)[1])
    return None


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


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    """How a person at a terminal sees the run; off a terminal every event is JSON."""
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="at a terminal, a line for every conference, not only those "
                           "that need attention")
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="at a terminal, only failures and the summary")
    p.add_argument("--no-color", action="store_true",
                   help="no colors (also when NO_COLOR is set or stdout is not a terminal)")


def _add_job_flags(p: argparse.ArgumentParser) -> None:
    _add_output_flags(p)
    # A flag left out is None: the config file's value, or the default Settings writes, stands.
    p.add_argument("--log-format", choices=("json", "console", "auto"), default="auto",
                   help="JSON lines, lines for a person, or JSON unless stdout is a terminal "
                        "(the default)")
    p.add_argument("--backup-dir", type=Path, default=None,
                   help="where the backup journal is written "
                        f"(default ./{DEFAULTS['backup_dir']})")
    p.add_argument("--grace-seconds", dest="grace_s", type=positive_float, default=None,
                   metavar="SECONDS",
                   help="on SIGTERM/SIGINT, time in-flight writes get to finish "
                        f"(default {DEFAULTS['grace_s']:g})")
    p.add_argument("--deadline", dest="deadline_s", type=positive_float, default=None,
                   metavar="SECONDS",
                   help="stop cleanly after this long and exit 5 (the next run resumes)")
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
    p.add_argument("--max-pages", type=positive_int, default=None, metavar="N",
                   help="stop the listing with exit 4 past N pages, a `next` that never ends "
                        f"(default {DEFAULTS['max_pages']:,})")
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
                   help="with a fleet config (`targets:`): run only this target (repeatable). "
                        "The other flags act per target; --preview is refused for a fleet")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    """What `run` and `plan` share: they differ only in whether writes are sent."""
    p.add_argument("--config", type=Path, required=True, metavar="PATH",
                   help="the config file: space, theme, limits (see config.example.yaml)")
    _add_job_flags(p)
    _add_allow_flag(p)
    _add_ops_flags(p)
    _add_selection_flags(p)


def _command(sub: argparse._SubParsersAction[_Parser], name: str) -> argparse.ArgumentParser:
    words = helptext.COMMANDS[name]
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=words.summary, description=words.description(), epilog=words.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from worker.sandbox.cli import add_sandbox_arguments

    parser = _Parser(prog="rebrand", description=helptext.OVERVIEW,
                     epilog=helptext.GETTING_STARTED,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version,
                        help="show the version and the API spec it carries, and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                title="commands", metavar="COMMAND")

    run = _command(sub, "run")
    run.add_argument("--dry-run", action="store_true", help="same as `plan`: send no writes")
    run.add_argument("--yes", action="store_true",
                     help="do not ask at a terminal, however many conferences would change")
    # After a run that ended well (exit 0); never the newest journal, nor one a restore
    # has not finished with.
    run.add_argument("--keep-days", type=positive_float, default=None, metavar="DAYS",
                     help="after a run that ended well, delete journals older than this (a "
                          "fleet: in each target's folder, after that target ended well)")
    run.add_argument("--keep-last", type=positive_int, default=None, metavar="N",
                     help="after a run that ended well, delete all but the newest N journals "
                          "(a fleet: per target, as --keep-days)")
    run.add_argument("--compress-journals", action="store_true",
                     help="after a run that ended well, gzip the older journals (restore "
                          "reads them as they are; a fleet: per target, as --keep-days)")
    _add_run_flags(run)

    plan = _command(sub, "plan")
    _add_run_flags(plan)
    plan.add_argument("--preview", type=Path, default=None, metavar="FILE.html",
                      help="also write an HTML preview: the theme, and each current "
                           "palette before and after, with its count (one Space's: not with "
                           "a fleet config)")

    restore = _command(sub, "restore")
    restore.add_argument("journal", type=Path, nargs="?", default=None,
                         help="the journal of the run to undo (or --latest)")
    restore.add_argument("more_journals", nargs="*", type=Path, metavar="JOURNAL",
                         help="with a fleet --config: more journals, or directories standing "
                              "for each target's newest run journal")
    restore.add_argument("--latest", action="store_true",
                         help="the newest journal a `run` wrote in --backup-dir")
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

    validate = _command(sub, "validate")
    validate.add_argument("--config", type=Path, required=True, metavar="PATH",
                          help="the config file: space, theme, limits (see config.example.yaml)")
    _add_allow_flag(validate)
    validate.add_argument("--online", action="store_true",
                          help="also read one listing page and one conference and check them "
                               "against the API spec this rebrand carries (writes nothing; "
                               "exit 4 on a mismatch)")
    validate.add_argument("--allow-field", action="append", metavar="NAME",
                          help="with --online: a property beyond the spec that is allowed "
                               "(as for run)")

    preview = _command(sub, "preview")
    preview.add_argument("--config", type=Path, required=True, metavar="PATH",
                         help="the config file whose theme to show (no credentials needed)")
    preview.add_argument("--out", type=Path, required=True, metavar="FILE.html")

    sandbox = _command(sub, "sandbox")
    add_sandbox_arguments(sandbox)

    demo = _command(sub, "demo")
    demo.add_argument("--count", type=positive_int, default=500)
    demo.add_argument("--latency", type=non_negative, default=0.005)
    demo.add_argument("--no-faults", dest="faults", action="store_false")
    demo.add_argument("--fleet", action="store_true",
                      help="three sandbox Spaces, each its own credentials, and two rules")
    demo.add_argument("--config", type=Path, default=None,
                      help="whose theme to apply (default ./config.example.yaml if present, "
                           "else the same brand built in)")
    demo.add_argument("--no-progress", dest="progress", action="store_false",
                      help="no live progress bar on stderr (it is drawn only on a terminal)")
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


def _outputs(ns: argparse.Namespace) -> list[tuple[str, Path]]:
    """The files the command writes, by flag."""
    flags = (("--report", "report"), ("--summary-md", "summary_md"),
             ("--metrics-file", "metrics_file"), ("--preview", "preview"), ("--out", "out"))
    return [(flag, path) for flag, name in flags
            if (path := getattr(ns, name, None)) is not None]


def _inputs(ns: argparse.Namespace, env: Mapping[str, str]) -> list[tuple[str, Path]]:
    """The files the command reads, each said as an output's error names it."""
    inputs = []
    if getattr(ns, "config", None) is not None:
        inputs.append((f"the --config {ns.config}", Path(ns.config)))
    if ns.command == "restore":
        journals = [ns.journal] if ns.journal is not None else []
        inputs += [(f"the journal {j}", Path(j)) for j in [*journals, *ns.more_journals]]
    if env.get("SIGNALWIRE_API_TOKEN_FILE"):
        inputs.append(("SIGNALWIRE_API_TOKEN_FILE", Path(env["SIGNALWIRE_API_TOKEN_FILE"])))
    return inputs


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    if "stdout" in streams.CLOSED:
        lose_stdout()
    try:
        return _main(argv, env)
    finally:
        commands.tell_stdout_lost()  # unless a command said where its events are


def _main(argv: Sequence[str] | None, env: Mapping[str, str] | None) -> int:
    _Parser.summary_md = _summary_md_in(sys.argv[1:] if argv is None else argv)
    environ = os.environ if env is None else env
    _Parser.env = environ
    ns = build_parser().parse_args(argv)
    try:
        for flag, path in (("--report", getattr(ns, "report", None)),
                           ("--summary-md", getattr(ns, "summary_md", None)),
                           ("--metrics-file", getattr(ns, "metrics_file", None)),
                           ("--preview", getattr(ns, "preview", None)),
                           ("--out", getattr(ns, "out", None))):
            if path is not None:
                commands.check_output_path(path, flag)
        commands.check_outputs_apart(_outputs(ns), _inputs(ns, environ))
        for flag, path in (("--report", getattr(ns, "report", None)),
                           ("--summary-md", getattr(ns, "summary_md", None))):
            if path is not None:
                commands.clear_earlier(path, flag)
        outputs_cleared()
        if ns.command in ("run", "plan"):
            return commands.run_command(ns, environ)
        simple = {"restore": commands.restore_command, "validate": commands.validate_command,
                  "preview": commands.preview_command}
        if ns.command in simple:
            return simple[ns.command](ns, environ)
        if ns.command == "sandbox":
            require_sandbox_extra("sandbox")
            from worker.sandbox.cli import config_from_args
            from worker.sandbox.server import ListenError, main_serve

            if not is_loopback(ns.host):
                raise ConfigError(f"--host {ns.host}: the sandbox serves loopback only; use "
                                  "127.0.0.1, ::1 or localhost")
            try:
                sandbox_config = config_from_args(ns)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            try:
                main_serve(sandbox_config, ns.host, ns.port, ns.spaces)
            except ListenError as exc:
                raise ConfigError(str(exc)) from exc
            return ExitCode.OK
        if ns.command == "demo":
            require_sandbox_extra("demo")
            from worker.cli.demo import run_demo

            return run_demo(ns, environ)
    except RebrandError as exc:
        # A message may quote the Space (a name, a server's words): never its control
        # bytes. Our own messages may run over several lines; each line is shown escaped.
        message = _without_secrets(str(exc), environ)
        shown = "\n".join(printable(line) for line in message.split("\n"))
        print(f"rebrand: error: {shown}", file=sys.stderr)
        commands.write_error_summary(getattr(ns, "summary_md", None), int(exc.exit_code),
                                     message)
        return int(exc.exit_code)
    raise ConfigError(f"unknown command {ns.command}")  # pragma: no cover - argparse guards
