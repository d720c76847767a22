"""The output of one command, set up for whoever reads it: JSON lines for a pipe; for a
person at a terminal, the progress bar, a line per event that needs them, and the
closing summary in words.

`-v`, `-q` and `--no-color` change only the terminal side: off a terminal every event is
a JSON line on stdout whatever the flags, because CI and log pipelines depend on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from worker.cli.human import Ending, HumanRenderer, Verbosity, summary_lines
from worker.cli.progress import ProgressBar, terminal_width
from worker.cli.style import Palette, choose_palette
from worker.outcome import Summary
from worker.run.logs import configure_logging
from worker.run.report import Reporter


def verbosity(ns: argparse.Namespace) -> Verbosity:
    if getattr(ns, "verbose", False):
        return Verbosity.VERBOSE
    if getattr(ns, "quiet", False):
        return Verbosity.QUIET
    return Verbosity.NORMAL


@dataclass
class Screen:
    """Where a command's events go, and the bar while it runs."""

    fmt: Literal["json", "console"]
    palette: Palette
    verbosity: Verbosity
    log_format: Literal["json", "console", "auto"]
    secrets: tuple[str, ...] = ()
    # Whether the terminal can erase a line, as the bar must to redraw: not TERM=dumb.
    can_redraw: bool = True
    bar: ProgressBar | None = field(default=None)

    @property
    def for_a_person(self) -> bool:
        return self.fmt == "console"

    def _renderer(self) -> HumanRenderer:
        return HumanRenderer(self.palette, self.verbosity, terminal=sys.stdout.isatty())

    def start_progress(self, reporter: Reporter, *, total: int | None, enabled: bool) -> None:
        """A live bar on a terminal's stderr (not with -q, nor on a terminal that cannot
        erase a line); the event lines scroll above it."""
        if not draws_bar(enabled, quiet=self.verbosity is Verbosity.QUIET,
                         can_redraw=self.can_redraw):
            return
        self.bar = ProgressBar(reporter, sys.stderr, total=total).attach()
        if sys.stdout.isatty():
            configure_logging(self.log_format, secrets=self.secrets,
                              stream=self.bar.log_stream(sys.stdout), console=self._renderer())

    def stop_progress(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def width(self) -> int:
        """The columns of the window stdout shows in (COLUMNS or 80 when none)."""
        return terminal_width(sys.stdout)

    @property
    def encoding(self) -> str | None:
        """stdout's encoding: what it cannot show, it writes as escapes."""
        return getattr(sys.stdout, "encoding", None)

    def show(self, lines: Iterable[str]) -> None:
        """Lines for the person (nothing when the output is JSON)."""
        if self.for_a_person:
            for line in lines:
                print(line, file=sys.stdout)
            sys.stdout.flush()

    def conclude(self, summary: Summary, ending: Ending) -> None:
        """The summary in words, last, for a person; the JSON `run.summary` already
        closed the event stream otherwise."""
        if self.for_a_person:
            self.show(["", *summary_lines(summary, ending, self.palette)])


def terminal_can_redraw(env: Mapping[str, str]) -> bool:
    """Whether the terminal can erase a line, as the bar must to redraw."""
    return env.get("TERM", "") != "dumb"


def draws_bar(enabled: bool, *, quiet: bool, can_redraw: bool) -> bool:
    """Whether a command draws the live bar: not turned off (--no-progress, -q), and
    stderr a terminal that can erase a line (not TERM=dumb)."""
    return enabled and not quiet and can_redraw and sys.stderr.isatty()


def open_screen(ns: argparse.Namespace, env: Mapping[str, str], *,
                secrets: tuple[str, ...] = ()) -> Screen:
    """Configure logging for this command's reader and say how to reach them."""
    palette = choose_palette(isatty=sys.stdout.isatty(), env=env,
                             no_color=getattr(ns, "no_color", False))
    level = verbosity(ns)
    fmt = configure_logging(ns.log_format, secrets=secrets,
                            console=HumanRenderer(palette, level,
                                                  terminal=sys.stdout.isatty()),
                            batched=True)
    return Screen(fmt, palette, level, ns.log_format, secrets,
                  can_redraw=terminal_can_redraw(env))
