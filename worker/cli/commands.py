"""The commands behind the CLI: each merges the config file, the flags and the environment
into one Settings (worker.config.parse_settings), reads the credentials, sets up logging,
runs one job, and writes what was asked.

main.py only parses and dispatches; this is the edge where files, terminals and the
environment meet the jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from worker.cli import confirm, loop
from worker.cli.entry import remove_earlier, settle, signals_held, unsettle
from worker.cli.gate import check_theme
from worker.cli.housekeeping import latest_run_journal, restoring, tidy_after_run
from worker.cli.human import Ending, Verbosity, changes_by_field
from worker.cli.screen import Screen, open_screen
from worker.cli.signals import end_if_signalled, with_signals
from worker.cli.tables import error_markdown, plan_markdown, plan_table
from worker.config import DEFAULTS, Settings, load_settings, parse_settings
from worker.configfile import read_config
from worker.contrast import check_palette
from worker.credentials import Credentials, load_credentials
from worker.errors import ConfigError, ExitCode
from worker.fleet import is_fleet, parse_fleet, plan_runs
from worker.openapi import conference_shape, spec_version
from worker.palettes import PlanAudit
from worker.retention import Retention
from worker.rules import Rules
from worker.run.job import JobResult, restore_job, run_job
from worker.run.journal import read_journal
from worker.run.logs import Scrubber, take_lost_stdout
from worker.run.report import Reporter, scrubbed, write_report
from worker.run.stopping import Stop
from worker.shard import Shard
from worker.space import NamedSpace, allowed_hosts, parse_space, restore_space
from worker.text import markdown_cell, printable
from worker.theme import COLOR_FIELDS

if TYPE_CHECKING:  # the probe loads the HTTP stack: only `validate --online` imports it
    from worker.run.probe import ProbeResult


def _warn_known_allowances(allowed: frozenset[str]) -> None:
    """An allowance for a property the spec names does nothing: say so, but go on (a job
    that kept its --allow-field after an upgrade that taught rebrand the property)."""
    known = sorted(allowed & conference_shape().known)
    if known:
        structlog.get_logger("rebrand").warning(
            "config.allow_field_known", fields=known,
            message="the API spec this rebrand carries names these properties, so "
                    "allowing them changes nothing; remove the --allow-field")


def check_output_path(path: Path, flag: str) -> None:
    """Refuse, before anything is sent, an output file that could not be written later."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file path")
    if path.exists() and not path.is_file():
        # The file is replaced by a rename when written: a device (/dev/null) or a pipe
        # would be replaced, not written to.
        raise ConfigError(f"{flag} {path}: is not a regular file; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot create {path.parent} ({exc.strerror})") from exc
    # Create a file there rather than ask os.access: root passes every permission check,
    # and a folder can take no new file whatever its mode says (/proc, a full inode table).
    probe = path.parent / f".{path.name}.{os.getpid()}.probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: {path.parent} takes no new file "
                          f"({exc.strerror}); give a path in a writable folder") from exc
    probe.unlink()


def check_outputs_apart(outputs: Sequence[tuple[str, Path]],
                        inputs: Sequence[tuple[str, Path]]) -> None:
    """Refuse an output path that names what the command reads (the config, a journal,
    the token file) or another output: removed as the run starts (clear_earlier) or
    written at its end, it would destroy the input, or one output the other."""
    given: list[tuple[str, Path]] = list(inputs)
    for flag, path in outputs:
        for what, other in given:
            if _same_file(path, other):
                raise ConfigError(f"{flag} {path}: is also {what}; give the output a path "
                                  "of its own")
        given.append((flag, path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is not there (yet): the same path is the same file
        return os.path.abspath(a) == os.path.abspath(b)


def clear_earlier(path: Path, flag: str) -> None:
    """Remove an earlier run's file at `path` (--report, --summary-md), before this run
    does anything: a run that ends before writing its own (a config error, a signal while
    it starts, SIGKILL) then leaves none, never the earlier run's exit code for CI to read
    as this one's. A symlink is left as it is: it points at a file someone else chose."""
    try:
        remove_earlier(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot remove the earlier run's file there "
                          f"({exc.strerror}); remove it, or give another path") from exc


def write_output(path: Path, write: Callable[[], object]) -> str | None:
    """Run `write`, which writes `path`: None when it did, else what went wrong, naming
    the file. The OSError of a full disk names none: it comes from write(), not open()."""
    try:
        write()
    except OSError as exc:
        return f"could not write {path} ({exc.strerror or exc})"
    return None


def write_stating(path: Path, write: Callable[[], object], exit_code: int) -> str | None:
    """`write_output` for a file that states the exit code (--report, --summary-md): once
    it is on disk, a signal still ends the process, but with that code (worker.cli.entry).
    The signal waits for the write: none lands between the file and the code it holds."""
    with signals_held():
        failure = write_output(path, write)
        if failure is None:
            settle(exit_code)
    return failure


# An output that states the exit code, and how to write it stating a code and naming the
# outputs lost before it (the report names them; a file that has no place for them need not).
Stating = tuple[Path, Callable[[int, Sequence[str]], object]]


def write_all_stating(outputs: Sequence[Stating], code: int) -> tuple[int, list[str]]:
    """Write each output stating the exit code, in order. One that cannot be written makes
    the code `after_lost_output`'s; an output written before with another code is then
    written again with this one and the lost output named, so that no file on disk states
    a code the process does not exit with (one that cannot be written again is removed).
    Returns the exit code and what could not be written."""
    lost: list[str] = []
    written: list[tuple[Stating, int, int]] = []  # each with the code and losses it states
    for path, write in outputs:
        failure = write_stating(path, _stating(write, code, lost), code)
        if failure is None:
            written.append(((path, write), code, len(lost)))
        else:
            lost.append(failure)
            code = after_lost_output(code)
    stale = [(path, write, stated) for (path, write), stated, named in written
             if (stated, named) != (code, len(lost))]
    for path, write, stated in stale:
        failure = write_stating(path, _stating(write, code, lost), code)
        if failure is not None:
            lost.append(failure)
            if stated != code:
                _withdraw(path, still_stating=[p for (p, _), s, _ in written
                                               if s == code and p != path])
    return code, lost


def _stating(write: Callable[[int, Sequence[str]], object], code: int,
             lost: Sequence[str]) -> Callable[[], object]:
    named = tuple(lost)  # as it is now: the list grows after this write
    return lambda: write(code, named)


def _withdraw(path: Path, *, still_stating: Sequence[Path]) -> None:
    """Remove an output that states a code the process no longer exits with: a missing
    report tells CI less than a wrong one. Best effort (it could not be written over)."""
    with signals_held():
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        if not still_stating:
            unsettle()


def tell_stdout_lost(places: Sequence[tuple[str, Path | None]] = ()) -> None:
    """Once, at the end: stdout was lost before it (its reader went away, or it was
    closed), so say on stderr where the events it did not get still are. `places`:
    (what, path) of each output the command wrote, a path None when not asked for."""
    if not take_lost_stdout():
        return
    held = [f"{what} {path}" for what, path in places if path is not None]
    where = (f"they are in {', '.join(held)}" if held else
             "no other output holds them (--report PATH would keep the outcome)")
    # stderr may be the same pipe (`2>&1 | head -1`): then this line is lost with it.
    with contextlib.suppress(OSError, ValueError):
        print("rebrand: stdout closed before the end (its reader went away, or it was "
              "never open); the command went on to its end without writing events there: "
              f"{where}", file=sys.stderr)


def write_error_summary(path: Path | None, exit_code: int, error: str) -> None:
    """--summary-md on an exit before any plan (bad input): the job still has a plan.md
    to show, with the error in it. Best effort: the error itself is on stderr."""
    # Not into what check_output_path refuses: opening a named pipe to write waits for a
    # reader, forever if none comes, and a device is no plan.md.
    if path is None or (path.exists() and not path.is_file()):
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(error_markdown(exit_code, error), encoding="utf-8")


# Exit codes a failed output file turns into 4: those that say the run went as asked.
_SOFT_CODES = frozenset({ExitCode.OK, ExitCode.FAILURES, ExitCode.CHANGES_PENDING})


def after_lost_output(code: int) -> int:
    """The exit code once an output file (--report, --summary-md) could not be written:
    CI reads that file, so a run whose file is missing did not succeed (4), unless it
    already failed harder."""
    return int(ExitCode.ABORTED) if code in _SOFT_CODES else code


def _conclude(result: JobResult, ns: argparse.Namespace, reporter: Reporter, screen: Screen,
              ending: Ending, *, secrets: tuple[str, ...], shard: Shard | None = None,
              audit: PlanAudit | None = None) -> int:
    # Names and colors come from the Space (or a journal), which may echo anything back:
    # they are scrubbed before Markdown, HTML or the table escapes them past recognising.
    clean = Scrubber(secrets)
    planned = [scrubbed(outcome, clean) for outcome in reporter.planned]
    if audit is not None:
        _report_audit(audit, screen.fmt, clean, done=ns.command == "run" and not ns.dry_run)
    outputs: list[Stating] = []
    if getattr(ns, "report", None) is not None:
        outputs.append((ns.report, lambda code, lost: write_report(
            ns.report, result.summary, reporter.failures, result.journal,
            exit_code=code, secrets=secrets, outputs_lost=lost)))
    if getattr(ns, "summary_md", None) is not None:
        error = clean(str(result.error)) if result.error else None
        # A code a lost output made (4) is no unfinished plan: the file says which it is.
        decided = int(result.exit_code)
        outputs.append((ns.summary_md, lambda code, lost: ns.summary_md.write_text(
            clean(plan_markdown(planned, result.summary, exit_code=code, error=error,
                                lost=lost if decided in _SOFT_CODES else (),
                                finished_with=decided)
                  + _audit_markdown(audit, ns, clean)), encoding="utf-8")))
    # The run is over and what it did stands, but CI reads these files: a run whose
    # report is missing did not succeed (exit 4, unless it already failed harder).
    code, failures = write_all_stating(outputs, int(result.exit_code))
    for failure in failures:
        print(f"rebrand: error: {failure}; the run's outcome is in the log above",
              file=sys.stderr)
    result = replace(result, exit_code=ExitCode(code))
    if planned and screen.verbosity is not Verbosity.QUIET:
        screen.show([clean(plan_table(planned, screen.palette, screen.width(),
                                      screen.encoding))])
    exported = _export_metrics(result, ns, shard)
    tell_stdout_lost([("the journal", result.journal),
                      ("the report", getattr(ns, "report", None)),
                      ("the Markdown summary", getattr(ns, "summary_md", None)),
                      ("the metrics file", ns.metrics_file if exported else None)])
    screen.conclude(result.summary, replace(
        ending, exit_code=int(result.exit_code),
        journal=result.journal.resolve() if result.journal else None,
        journal_empty=result.journal_empty,
        report=ns.report.resolve() if getattr(ns, "report", None) else None,
        metrics=ns.metrics_file.resolve() if exported and ns.metrics_file else None,
        pushgateway=ns.pushgateway if exported else None))
    return int(result.exit_code)


def _report_audit(audit: PlanAudit, log_format: str, clean: Scrubber, *, done: bool) -> None:
    """The merged palettes' contrast at a terminal (a warning, never an exit code: the
    theme itself passed)."""
    warning = audit.warning(done=done)
    if warning is not None and log_format == "console":
        # It names example rooms, whose names come from the Space: escaped, line by line.
        shown = "\n".join(printable(line) for line in clean(warning).split("\n"))
        print(f"rebrand: warning: {shown}", file=sys.stderr)


def _write_plan_preview(path: Path, audit: PlanAudit, rules: Rules, log_format: str,
                        clean: Scrubber) -> None:
    from worker.preview import Group, render_preview  # only for --preview: start-up cost

    # The rooms' names come from the Space: scrubbed before HTML escapes them.
    groups = [Group(g.count, tuple(map(clean, g.examples)), dict(g.before), dict(g.after))
              for g in audit.groups()]
    page = render_preview([(clean(rule.name), rule.theme) for rule in rules.rules], audit.level,
                          title="rebrand plan preview", groups=groups,
                          others=audit.others())
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"rebrand: error: could not write {path}: {exc.strerror}", file=sys.stderr)
        return
    if log_format == "console":
        print(f"rebrand: preview written to {path}", file=sys.stderr)


def _log_audit(audit: PlanAudit) -> None:
    """One `conferences.contrast` event, when the theme leaves colors to the conferences
    (a full theme's merged palette is the theme itself, checked before the run)."""
    if audit.partial and audit.checked:
        log = structlog.get_logger("rebrand")
        (log.warning if audit.failing else log.info)("conferences.contrast", **audit.event())


def _audit_markdown(audit: PlanAudit | None, ns: argparse.Namespace, clean: Scrubber) -> str:
    lines = []
    preview = getattr(ns, "preview", None)
    if preview is not None:
        lines.append(f"Preview of every palette before and after: `{preview}`")
    if audit is not None and audit.failing:
        lines.append(f"**Contrast:** {audit.failing:,} of {audit.checked:,} conferences would "
                     f"fail WCAG {audit.level.value} with the theme over their own colors, e.g.:")
        # Each names a room from the Space: text, not markup (worker.text.markdown_cell).
        lines += [f"- {markdown_cell(clean(e.line()))}" for e in audit.examples]
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def _export_metrics(result: JobResult, ns: argparse.Namespace, shard: Shard | None) -> bool:
    """The metrics asked for, if any; True when every export asked for was made."""
    if ns.metrics_file is None and ns.pushgateway is None:
        return True
    # prometheus_client costs ~10 ms of start-up: only a run that exports loads it.
    from worker.cli.metrics import export_metrics

    code = int(result.exit_code)
    return export_metrics(
        result.summary, exit_code=code,
        success=code == ExitCode.OK or (code == ExitCode.CHANGES_PENDING and ns.command == "plan"),
        path=ns.metrics_file, pushgateway=ns.pushgateway,
        grouping_key={"command": ns.command, **({"shard": str(shard.index)} if shard else {})},
    )


def _ask_first(settings: Settings, credentials: Credentials,
               screen: Screen) -> tuple[int | None, int | None]:
    """Plan, and above `confirm_above` changes ask. Returns (exit code to stop with, or
    None to go on; the number of conferences listed, for the progress bar)."""
    stop = Stop()  # its event belongs to this event loop, not the run's
    plan, planned = loop.run(with_signals, lambda: confirm.plan_quietly(
        settings, credentials, stop=stop), stop)
    if plan.exit_code not in (ExitCode.OK, ExitCode.CHANGES_PENDING):
        return int(plan.exit_code), None
    end_if_signalled(stop)
    count = plan.summary.planned
    if confirm.needs_consent(count, settings.confirm_above):
        # A few lines, one per color, whatever the count: `plan` lists each conference.
        prompt = confirm.question(count, plan.summary.listed, settings.space.host,
                                  settings.confirm_above,
                                  details=changes_by_field(planned.planned, screen.palette))
        where = confirm.asking_stream(sys.stderr, sys.stdout)
        if where is None:
            print(f"rebrand: error: {count:,} conferences would change (more than "
                  f"confirm_above: {settings.confirm_above}), and with stdout and stderr "
                  "redirected there is no terminal to ask on; nothing was changed. Run "
                  "`rebrand plan` to see what would change, then pass --yes to go on",
                  file=sys.stderr)
            return int(ExitCode.ABORTED), None
        if not confirm.ask(prompt, out=where, read=sys.stdin.readline):
            print("rebrand: nothing was changed", file=where)
            return int(ExitCode.ABORTED), None
    return None, plan.summary.listed


def run_command(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    """`run` and `plan` (and `run --dry-run`, which is `plan`)."""
    raw = read_config(ns.config)
    if is_fleet(raw):
        from worker.cli.fleet import fleet_run_command

        return fleet_run_command(ns, env, raw)
    if getattr(ns, "target", None):
        raise ConfigError(f"--target: {ns.config} names no `targets:`; --target picks "
                          "targets of a fleet config")
    flags = {**vars(ns), "dry_run": ns.command == "plan" or ns.dry_run}
    settings = parse_settings(raw, env, flags)
    check_theme(settings, ns.log_format)
    credentials = load_credentials(env)
    screen = open_screen(ns, env, secrets=credentials.secrets)
    _warn_known_allowances(settings.allow_fields)
    total = None
    if confirm.plan_first(yes=getattr(ns, "yes", False), dry_run=settings.dry_run,
                          stdin=sys.stdin):
        code, total = _ask_first(settings, credentials, screen)
        if code is not None:
            return code
    stop = Stop()
    reporter = Reporter(keep_plans=settings.dry_run
                        and (screen.for_a_person or ns.summary_md is not None))
    rules = settings.themes
    audit = None if rules is None else PlanAudit(
        settings.accessibility,
        partial=any(len(rule.theme.colors) < len(COLOR_FIELDS) for rule in rules.rules),
        group=getattr(ns, "preview", None) is not None)
    if audit is not None:
        reporter.listeners.append(audit.observe)
        reporter.before_summary.append(lambda: _log_audit(audit))
    screen.start_progress(reporter, total=total, enabled=ns.progress)
    try:
        result = loop.run(with_signals, lambda: run_job(
            settings, credentials, reporter=reporter, stop=stop), stop)
    finally:
        screen.stop_progress()
    ending = Ending("run", 0, dry_run=settings.dry_run, space=settings.space.origin,
                    config=ns.config)
    code = _conclude(result, ns, reporter, screen, ending, secrets=credentials.secrets,
                     shard=settings.shard, audit=audit)
    preview = getattr(ns, "preview", None)
    if preview is not None and audit is not None and rules is not None:
        _write_plan_preview(preview, audit, rules, screen.fmt, Scrubber(credentials.secrets))
    if code == ExitCode.OK and not settings.dry_run:
        _tidy(ns, settings.backup_dir, result.journal)
    return code


def _tidy(ns: argparse.Namespace, directory: Path, current: Path | None) -> None:
    tidy_after_run(directory, current, Retention(keep_days=ns.keep_days, keep_last=ns.keep_last),
                   compress_closed=ns.compress_journals)


def _named_space(ns: argparse.Namespace, env: Mapping[str, str],
                 settings: Settings | None, allow: frozenset[str]) -> NamedSpace | None:
    """The Space the operator named for a restore: --space, else SIGNALWIRE_SPACE, else
    the --config's `space` (the same order as for run, with the flag on top)."""
    if ns.space:
        return NamedSpace(parse_space(ns.space, key="--space", allow=allow), "--space")
    if env.get("SIGNALWIRE_SPACE"):
        return NamedSpace(parse_space(env["SIGNALWIRE_SPACE"], key="SIGNALWIRE_SPACE",
                                      allow=allow),
                          "SIGNALWIRE_SPACE")
    if settings is not None:
        return NamedSpace(settings.space, f"--config {ns.config}")
    return None


def _journal_to_restore(ns: argparse.Namespace) -> Path:
    """JOURNAL, or with --latest the newest run journal in --backup-dir."""
    if (ns.journal is None) == (not ns.latest):
        raise ConfigError("restore: give the JOURNAL to undo, or --latest for the newest "
                          "run's journal in --backup-dir (not both)")
    if ns.journal is not None:
        return Path(ns.journal)
    return latest_run_journal(ns.backup_dir or Path(DEFAULTS["backup_dir"]))


def restore_command(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    raw = read_config(ns.config) if ns.config is not None else None
    if is_fleet(raw):
        if ns.journal is None or ns.latest:
            raise ConfigError("restore with a fleet --config: name each target's journal "
                              "(or its directory, for its newest run journal); --latest is "
                              "for one Space")
        if ns.space:
            raise ConfigError("--space does not apply to a fleet config: each journal goes "
                              "to the target its header names. Drop --space, or restore "
                              "one Space without the fleet --config")
        from worker.cli.fleet import fleet_restore_command

        return fleet_restore_command(ns, env, raw)
    if ns.more_journals:
        raise ConfigError("restore: one journal at a time for one Space; several journals "
                          "need a fleet --config (with `targets:`) to say where each goes")
    ns.journal = _journal_to_restore(ns)
    journal = read_journal(ns.journal)  # the only read: the job streams from what it found
    flags = vars(ns)
    allow = allowed_hosts(env, ns.allow_space_host)
    from_config = (parse_settings(raw, env, flags, restoring=True)
                   if raw is not None else None)
    # Checked before the credentials are even read: nothing goes anywhere unnamed.
    space = restore_space(_named_space(ns, env, from_config, allow), journal.header.get("space"),
                          str(ns.journal))
    # A config's limits are the Space's: a restore keeps to them as its run did. What to
    # put back is the journal's to say, never a config's theme.
    settings = replace(from_config or parse_settings({"space": space.origin}, env, flags,
                                                     restoring=True), space=space, theme=None)
    credentials = load_credentials(env)
    screen = open_screen(ns, env, secrets=credentials.secrets)
    if ns.latest:
        structlog.get_logger("rebrand").info("restore.latest", journal=str(ns.journal))
    _warn_known_allowances(settings.allow_fields)
    reporter = Reporter(keep_plans=settings.dry_run and screen.for_a_person)
    stop = Stop()
    screen.start_progress(reporter, total=None, enabled=ns.progress)
    try:
        with (restoring(ns.journal) if not settings.dry_run
              else nullcontext(lambda: None)) as finished:
            result = loop.run(with_signals, lambda: restore_job(
                settings, credentials, journal, reporter=reporter, stop=stop), stop)
        if result.exit_code == ExitCode.OK:
            finished()  # else the mark stays, and retention keeps the journal
    finally:
        screen.stop_progress()
    ending = Ending("restore", 0, dry_run=settings.dry_run, space=space.origin)
    return _conclude(result, ns, reporter, screen, ending, secrets=credentials.secrets)


def preview_command(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Write the theme's preview page. Needs no credentials and sends nothing; a theme
    that fails the contrast check is still drawn (that is what the page is for)."""
    settings = load_settings(ns.config, env, vars(ns))
    level, rules = settings.accessibility, settings.themes
    if rules is None:
        raise ConfigError("theme: missing; add a `theme:` with `light` and/or `dark` colors")
    from worker.preview import render_preview  # only this command and --preview: start-up cost

    page = render_preview([(rule.name, rule.theme) for rule in rules.rules], level)
    failure = write_output(ns.out, lambda: ns.out.write_text(page, encoding="utf-8"))
    if failure is not None:
        # The page is all this command makes: without it, it failed (as a lost --report).
        print(f"rebrand: error: {failure}", file=sys.stderr)
        return ExitCode.ABORTED
    failing = [(f"rule {rule.name!r}: " if rules.named else "") + f.line()
               for rule in rules.rules
               for f in check_palette(rule.theme.as_dict(), level) if not f.ok]
    print(f"rebrand: preview written to {ns.out}", file=sys.stderr)
    for line in failing:
        print(f"rebrand: warning: {line}", file=sys.stderr)
    return ExitCode.OK


def validate_command(ns: argparse.Namespace, env: Mapping[str, str]) -> int:
    raw = read_config(ns.config)
    # As a run without --shard reads it: the shard the environment sets (an Indexed Job's
    # JOB_COMPLETION_INDEX, REBRAND_SHARD_COUNT), so what `run` refuses, validate refuses.
    flags = {**vars(ns), "shard": None}
    if is_fleet(raw):
        # Every target: its Space, its theme or rules, its credentials present.
        runs = plan_runs(parse_fleet(raw, allow=allowed_hosts(
            env, getattr(ns, "allow_space_host", None)), env=env), env, flags)
        for run in runs:
            check_theme(run.settings, "auto", verbose=True, target=run.name)
        print(f"rebrand: {ns.config} is valid: {len(runs)} targets")
        for run in runs:
            print(f"  {run.name}: Space {run.settings.space.origin}, {_themes(run.settings)}, "
                  f"credentials for project {run.credentials.project_id} present")
        return ExitCode.OK
    settings = parse_settings(raw, env, flags)
    check_theme(settings, "auto", verbose=True)
    credentials: Credentials = load_credentials(env)
    print(f"rebrand: {ns.config} is valid: Space {settings.space.origin}, "
          f"{_themes(settings)}, credentials for project {credentials.project_id} present")
    if not ns.online:
        return ExitCode.OK
    return _validate_online(settings, credentials)


def _validate_online(settings: Settings, credentials: Credentials) -> int:
    """One listing page and one conference against the spec; say what differs."""
    from worker.run.probe import probe

    return _report_probe(loop.run(probe, settings, credentials), settings.space.origin,
                         Scrubber(credentials.secrets))


def _report_probe(result: ProbeResult, origin: str, clean: Scrubber) -> int:
    """What `validate --online` found. Each problem quotes the Space's answer (a value of
    the wrong type, a property's name), which may echo what we sent, and may hold control
    characters: shown escaped, never sent to the terminal."""
    read = f"1 listing page ({result.listed} conferences)" + (
        f" and conference {printable(result.conference_id)}" if result.conference_id else
        " (no conference to read)")
    if result.allowed:
        print("rebrand: allowed properties beyond the spec met: "
              + ", ".join(printable(name) for name in result.allowed))
    if not result.problems:
        print(f"rebrand: {origin} answers as the API spec this rebrand carries "
              f"says ({spec_version()}): checked {read}; nothing was written")
        return ExitCode.OK
    print(f"rebrand: {origin} does not answer as the API spec this rebrand "
          f"carries says ({spec_version()}); checked {read}, nothing was written:")
    for problem in result.problems:
        print(f"  {printable(clean(problem))}")
    # Said of each kind of difference, not of the ones found: a list page's links that
    # break the spec's shape need no --allow-field, an unknown property does.
    print("rebrand: error: the Space's answers differ from the spec, as listed above. A run "
          "stops at a property the spec does not name and fails a conference whose answer "
          "lacks a required one; other differences may stop its listing. Upgrade rebrand to "
          "a version whose spec matches the Space, or, for a property the Space's PUT leaves "
          "alone, allow it with --allow-field NAME (or REBRAND_ALLOW_FIELDS)", file=sys.stderr)
    return ExitCode.ABORTED


def _themes(settings: Settings) -> str:
    themes = settings.themes
    if themes is None:
        return "no theme"
    if not themes.named:
        return f"{len(themes.rules[0].theme.colors)} theme colors"
    return f"{len(themes.rules)} rules ({', '.join(r.name for r in themes.rules)})"
