"""`run`, `plan` and `restore` for a config with `targets:`: every target checked before
anything is sent, each run as its own pipeline, one `fleet.summary` at the end.

The exit code is the fleet's (worker.fleet.fleet_exit_code), and the summary names the
target that caused it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import structlog

from worker.cli import loop
from worker.cli.commands import Stating, tell_stdout_lost, write_all_stating
from worker.cli.gate import check_theme
from worker.cli.housekeeping import newest_run_journal, tidy_after_run
from worker.cli.progress import ProgressBar, terminal_width
from worker.cli.screen import draws_bar, terminal_can_redraw
from worker.cli.signals import with_signals
from worker.cli.tables import plan_markdown, plan_table
from worker.errors import ConfigError, ExitCode
from worker.fleet import (
    Fleet,
    TargetRun,
    fleet_exit_code,
    parse_fleet,
    plan_runs,
    unpicked_secrets,
)
from worker.outcome import Outcome
from worker.retention import Retention, run_id_of
from worker.run.fleet import TargetResult, run_fleet, totals
from worker.run.job import JobResult, restore_job
from worker.run.journal import JournalContents, read_journal
from worker.run.logs import Scrubber, configure_logging
from worker.run.report import (
    Reporter,
    lost_outputs,
    report_document,
    scrubbed,
    write_document,
)
from worker.run.stopping import Stop, StopReason
from worker.space import allowed_hosts
from worker.text import markdown_cell


def fleet_run_command(ns: argparse.Namespace, env: Mapping[str, str],
                      raw: Mapping[str, Any]) -> int:
    """`run`/`plan` over every target of the fleet (or those `--target` names)."""
    if getattr(ns, "preview", None) is not None:
        # Refused rather than ignored: a flag that is accepted must act.
        raise ConfigError(
            "--preview does not apply to a fleet config: its page shows one Space's "
            "palettes. Drop --preview; see each theme with `rebrand preview --config "
            "CONFIG --out FILE.html` on a single-Space config, or plan one target's Space "
            "with its own config and --preview")
    dry_run = ns.command == "plan" or bool(getattr(ns, "dry_run", False))
    whole = parse_fleet(raw, allow=_allowed(ns, env), env=env)
    fleet = whole.pick(tuple(getattr(ns, "target", None) or ()))
    runs = plan_runs(fleet, env, {**vars(ns), "dry_run": dry_run},
                     also_watch=unpicked_secrets(whole, fleet, env))
    for run in runs:  # every target's theme meets the level before any Space is asked
        check_theme(run.settings, ns.log_format, target=run.name)
    if not dry_run and not getattr(ns, "yes", False) and sys.stdin.isatty():
        raise ConfigError("a fleet run at a terminal changes several Spaces: run "
                          "`rebrand plan` first to see what would change, then `run --yes`")
    secrets = tuple(dict.fromkeys(s for run in runs for s in run.credentials.secrets))
    fmt = _configure_logging(ns, secrets)
    stop = Stop()
    keep = dry_run and (fmt == "console" or ns.summary_md is not None)
    bar = _start_bar(ns, env, secrets)
    try:
        results = loop.run(with_signals, lambda: run_fleet(
            runs, max_parallel=fleet.max_parallel, stop=stop,
            reporter_for=lambda _name: _counted(bar, Reporter(keep_plans=keep))), stop)
    finally:
        if bar is not None:
            bar.close()
    code = conclude(results, ns, stop, fmt, secrets=secrets, dry_run=dry_run)
    if not dry_run and signalled(results, stop) is None:
        # Retention is per Space: each target's folder, after that target ended well.
        folders = {run.name: run.settings.backup_dir for run in runs}
        policy = Retention(keep_days=getattr(ns, "keep_days", None),
                           keep_last=getattr(ns, "keep_last", None))
        for r in results:
            if r.result.exit_code == ExitCode.OK:
                tidy_after_run(folders[r.name], r.result.journal, policy,
                               compress_closed=bool(getattr(ns, "compress_journals", False)))
    return code


class _QuietConsole:
    """-q at a terminal: a fleet's failures and summaries only. (A fleet's console lines
    are structlog's own, one per event: the default and -v both show every conference.)"""

    def __init__(self) -> None:
        self._render = structlog.dev.ConsoleRenderer(colors=False)

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        if (event.get("event") not in ("run.summary", "fleet.summary")
                and event.get("level") not in ("error", "critical")):
            raise structlog.DropEvent
        return self._render(logger, method, event)


def _configure_logging(ns: argparse.Namespace, secrets: tuple[str, ...],
                       stream: TextIO | None = None) -> str:
    console = _QuietConsole() if getattr(ns, "quiet", False) else None
    return configure_logging(ns.log_format, secrets=secrets, batched=True, console=console,
                             stream=stream)


def _start_bar(ns: argparse.Namespace, env: Mapping[str, str],
               secrets: tuple[str, ...]) -> ProgressBar | None:
    """The live bar a single Space's run draws (worker.cli.screen), here counting every
    target's conferences together; None with --no-progress, -q or off a terminal. The
    console log then goes through the bar, which wipes itself before each line."""
    if not draws_bar(getattr(ns, "progress", True), quiet=getattr(ns, "quiet", False),
                     can_redraw=terminal_can_redraw(env)):
        return None
    bar = ProgressBar(None, sys.stderr)
    if sys.stdout.isatty():
        _configure_logging(ns, secrets, stream=bar.log_stream(sys.stdout))
    return bar


def _counted(bar: ProgressBar | None, reporter: Reporter) -> Reporter:
    """A target's reporter, counted on the fleet's bar when there is one."""
    return reporter if bar is None else bar.follow(reporter)


def fleet_restore_command(ns: argparse.Namespace, env: Mapping[str, str],
                          raw: Mapping[str, Any]) -> int:
    """`restore --config FLEET JOURNAL|DIR ...`: each journal back into its own target,
    with that target's credentials; a journal no target names is refused before anything
    is sent. A directory stands for the newest run journal of each target under it."""
    fleet = parse_fleet(raw, allow=_allowed(ns, env), env=env)
    runs = plan_runs(fleet, env, {**vars(ns), "dry_run": bool(ns.dry_run)})
    journals = [read_journal(path) for path in _journal_paths(_paths(ns))]
    chosen: dict[str, tuple[JournalContents, TargetRun]] = {}
    for journal in journals:
        run = _target_for(journal, runs, fleet)
        if run.name in chosen:
            raise ConfigError(
                f"restore: {chosen[run.name][0].path} and {journal.path} are both for target "
                f"{run.name}; restore one run at a time, the newest first")
        chosen[run.name] = (journal, run)
    secrets = tuple(dict.fromkeys(s for run in runs for s in run.credentials.secrets))
    fmt = _configure_logging(ns, secrets)
    stop = Stop()
    restores = [replace(run, settings=replace(run.settings, theme=None, rules=None,
                                              target_select=None))
                for _, run in chosen.values()]

    async def one(target: TargetRun, reporter: Reporter, own: Stop) -> JobResult:
        # What to put back is the journal's to say, never the config's theme or rules.
        return await restore_job(target.settings, target.credentials,
                                 chosen[target.name][0], reporter=reporter, stop=own)

    bar = _start_bar(ns, env, secrets)
    try:
        results = loop.run(with_signals, lambda: run_fleet(
            restores, max_parallel=fleet.max_parallel, stop=stop, job=one,
            reporter_for=lambda _name: _counted(bar, Reporter())), stop)
    finally:
        if bar is not None:
            bar.close()
    return conclude(results, ns, stop, fmt, secrets=secrets, dry_run=bool(ns.dry_run))


def _allowed(ns: argparse.Namespace, env: Mapping[str, str]) -> frozenset[str]:
    return allowed_hosts(env, getattr(ns, "allow_space_host", None))


def _journal_paths(paths: Sequence[Path]) -> list[Path]:
    """The journals named; a directory (a fleet's backup directory, one folder per target)
    stands for the journal `restore --latest` would take in each folder under it (the
    newest of a `run` with a pre-image; each passed over is named on stderr)."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        folders: dict[Path, list[Path]] = {}
        for entry in sorted(path.rglob("*")):
            if run_id_of(entry) is not None:
                folders.setdefault(entry.parent, []).append(entry)
        found += filter(None, map(newest_run_journal, folders.values()))
    if not found:
        raise ConfigError(f"restore: no journal of a `rebrand run` with a write to undo "
                          f"found under {', '.join(str(p) for p in paths)}")
    return found


def _paths(ns: argparse.Namespace) -> list[Path]:
    journal = ns.journal
    return list(journal) if isinstance(journal, list) else [journal]


def _target_for(journal: JournalContents, runs: Sequence[TargetRun], fleet: Fleet) -> TargetRun:
    """The target whose Space the journal's header names (and whose name, when it names
    one): the only credentials that may go where that journal points."""
    space = journal.header.get("space")
    name = journal.header.get("target")
    matches = [run for run in runs if run.settings.space.origin == space
               and (name is None or run.name == name)]
    if len(matches) != 1:
        named = ", ".join(f"{t.name} ({t.space.origin})" for t in fleet.targets)
        why = "no target names" if not matches else "more than one target names"
        raise ConfigError(f"restore {journal.path}: {why} its Space {space!r}"
                          f"{f' for target {name!r}' if name else ''}; the config's targets "
                          f"are {named}. Restore it with the config of the fleet that wrote "
                          "it, or with --space and that Space's credentials")
    return matches[0]


def conclude(results: list[TargetResult], ns: argparse.Namespace, stop: Stop, fmt: str, *,
             secrets: tuple[str, ...], dry_run: bool) -> int:
    """The fleet's exit code and `fleet.summary`, then the report, Markdown and metrics
    that were asked for."""
    codes = {r.name: int(r.result.exit_code) for r in results}
    # Names and colors come from each Space (or journal): scrubbed before the Markdown
    # and the table escape them past recognising.
    clean = Scrubber(secrets)
    planned = {r.name: [scrubbed(o, clean) for o in r.reporter.planned] for r in results}
    code, cause = fleet_exit_code(codes, signalled=signalled(results, stop),
                                  dry_run=dry_run)
    per_target = {r.name: {"exit_code": codes[r.name],
                           "journal": str(r.result.journal) if r.result.journal else None,
                           **_counts(r)} for r in results}
    structlog.get_logger("rebrand").info(
        "fleet.summary", exit_code=code, cause=cause, targets=per_target,
        totals=totals(results))
    outputs: list[Stating] = []
    if getattr(ns, "report", None) is not None:
        # A code a lost output made (4) was caused by no target: the report names the output.
        outputs.append((ns.report, lambda stated, lost: write_document(ns.report, {
            "exit_code": stated, "cause": cause if stated == decided else None,
            "totals": totals(results),
            "targets": {r.name: report_document(
                r.result.summary, r.reporter.failures, r.result.journal,
                exit_code=codes[r.name]) for r in results},
            **lost_outputs(lost)}, secrets=secrets)))
    if getattr(ns, "summary_md", None) is not None:
        outputs.append((ns.summary_md, lambda stated, lost: ns.summary_md.write_text(
            _fleet_headline(stated, cause if stated == decided else None, lost)
            + _markdown(results, codes, planned), encoding="utf-8")))
    decided = code
    code, failures = write_all_stating(outputs, code)
    for failure in failures:
        print(f"rebrand: error: {failure}; the fleet's outcome is in the log above",
              file=sys.stderr)
    if fmt == "console":
        for r in results:
            if planned[r.name]:
                table = plan_table(planned[r.name], width=terminal_width(sys.stdout),
                                   encoding=getattr(sys.stdout, "encoding", None))
                print(f"target {r.name}:\n{table}\n")
    if cause is not None and code == decided:
        print(f"rebrand: target {cause} decided the exit code {code} "
              f"(it exited {codes[cause]})", file=sys.stderr)
    path, pushgateway = getattr(ns, "metrics_file", None), getattr(ns, "pushgateway", None)
    if path is not None or pushgateway is not None:
        # prometheus_client costs ~10 ms of start-up: only a run that exports loads it.
        from worker.cli.metrics import Run, export_runs

        export_runs([Run({"target": r.name}, r.result.summary, codes[r.name],
                         codes[r.name] == ExitCode.OK
                         or (dry_run and codes[r.name] == ExitCode.CHANGES_PENDING))
                     for r in results],
                    path=path, pushgateway=pushgateway, grouping_key={"command": ns.command})
    tell_stdout_lost([*((f"target {r.name}'s journal", r.result.journal) for r in results),
                      ("the report", getattr(ns, "report", None)),
                      ("the Markdown summary", getattr(ns, "summary_md", None)),
                      ("the metrics file", path)])
    return code


def signalled(results: Sequence[TargetResult], stop: Stop) -> int | None:
    """The exit code of the signal that stopped the fleet, if it stopped any target: one
    that left nothing undone anywhere (each target's work done or finishing when it came,
    and finished) stopped nothing, as for one Space (worker.run.job.left_undone), and the
    targets' outcomes decide. A target the signal did stop ends with its code."""
    if stop.reason not in (StopReason.SIGINT, StopReason.SIGTERM):
        return None
    code = int(stop.reason.exit_code)
    return code if any(r.result.exit_code == code for r in results) else None


def _counts(result: TargetResult) -> dict[str, Any]:
    summary = result.result.summary
    return {k: getattr(summary, k) for k in summary.__dataclass_fields__}


def _fleet_headline(code: int, cause: str | None, lost: Sequence[str]) -> str:
    """The fleet's own lines atop its plan.md: the exit code the process ends with (a
    signal after this file is written exits with it too), and which target decided it,
    or which output made it 4. Each target's plan follows, with that target's code."""
    line = f"## rebrand fleet: exit {code}"
    if cause is not None:
        line += f" (decided by target `{cause}`)"
    lines = [line, ""]
    if lost:
        lines += ["**Not written:** " + "; ".join(markdown_cell(text) for text in lost), ""]
    return "\n".join(lines) + "\n"


def _markdown(results: list[TargetResult], codes: Mapping[str, int],
              planned: Mapping[str, list[Outcome]]) -> str:
    parts = []
    for r in results:
        body = plan_markdown(planned[r.name], r.result.summary, exit_code=codes[r.name])
        parts.append(body.replace("### rebrand plan:", f"### rebrand plan for target "
                                                      f"`{r.name}`:", 1))
    return "\n".join(parts)
