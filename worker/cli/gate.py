"""The contrast check at the command line: before `validate`, `plan` or `run` sends
anything, the theme meets the configured WCAG level or the command exits 2.

Off a terminal each finding is also a structured event (`theme.contrast`, and the
advisory `theme.apca` and `theme.cvd`), so a CI log shows the ratios that passed too.
"""

from __future__ import annotations

import sys
from typing import TextIO

import structlog

from worker.config import Settings
from worker.contrast import (
    Finding,
    Level,
    check_palette,
    distinctions,
    readability,
    refusal,
)
from worker.errors import ConfigError
from worker.run.logs import LogFormat, configure_logging, resolve_format


def check_theme(settings: Settings, log_format: LogFormat, *,
                out: TextIO | None = None, verbose: bool = False,
                target: str | None = None) -> None:
    """Raise ConfigError (exit 2) naming every pair below the level, in every rule's
    theme. `verbose` (validate) also prints each ratio and the advisories at a terminal.
    `target`: a fleet's target, named on each line and event, since each has its own."""
    level = settings.accessibility
    rules = settings.themes
    if level is Level.OFF or rules is None:
        return
    out = out or sys.stdout
    as_json = resolve_format(log_format, out) == "json"
    if as_json:
        configure_logging("json", stream=out)
    failures: list[str] = []
    for rule in rules.rules:
        # With `rules:`, each line and event says whose theme it is about.
        prefix = (f"target {target!r}: " if target is not None else "") + \
            (f"rule {rule.name!r}: " if rules.named else "")
        tag = ({"target": target} if target is not None else {}) | \
            ({"rule": rule.name} if rules.named else {})
        colors = rule.theme.as_dict()
        findings = check_palette(colors, level)
        failures += [prefix + f.line() for f in findings if not f.ok]
        if as_json:
            _log_findings(colors, findings, level, tag)
        elif verbose:
            lines = [f.line() for f in findings] + [r.line() for r in readability(colors)] + \
                [d.line() for d in distinctions(colors)]
            for line in lines:
                print(f"rebrand: {prefix}{line}", file=out)
    if failures:
        raise ConfigError(refusal(failures, level))


def _log_findings(colors: dict[str, str], findings: tuple[Finding, ...], level: Level,
                  tag: dict[str, str]) -> None:
    log = structlog.get_logger("rebrand")
    for finding in findings:
        (log.info if finding.ok else log.error)("theme.contrast", wcag_level=level.value,
                                                 **tag, **finding.event())
    for reading in readability(colors):
        log.info("theme.apca", **tag, mode=reading.mode.value, pair="foreground/background",
                 lc=round(reading.lc, 1))
    for apart in distinctions(colors):
        log.info("theme.cvd", **tag, mode=apart.mode.value,
                 deficiency=apart.deficiency.name.lower(), pair="success/negative",
                 delta_e=round(apart.delta_e, 1), distinct=apart.distinct)
