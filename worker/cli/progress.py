"""A one-line live progress bar on stderr, with the console log scrolling above it.

Only for a person at a terminal: the CLI attaches it when stderr is a TTY. It is a
Reporter listener (redrawn as outcomes arrive, at most every `interval` seconds), and it
hands the logger a stream that wipes the bar before each log line, so the two never
interleave. Written here rather than taken from rich or tqdm: it is one line of ASCII, and
the image stays free of a dependency for it.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TextIO, cast

from worker.outcome import Kind, Outcome
from worker.run.report import Reporter

_CLEAR = "\r\x1b[2K"
_BAR_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Snapshot:
    done: int
    listed: int
    failed: int
    elapsed_s: float
    total: int | None = None


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render(s: Snapshot, width: int = 80) -> str:
    """The bar's text (pure): done/total, percent, rate, ETA and failures when there is
    a total; done, rate and listed-so-far when there is not. Never wider than `width`:
    a narrow window loses whole parts, the least needed first (the drawn bar, the clock,
    then ETA, rate, percent), never the count or the failures, and never half a part
    (`ETA 0:30` cut to `ETA 0` would lie)."""
    rate = s.done / s.elapsed_s if s.elapsed_s > 0 else 0.0
    parts: list[tuple[int, str]] = []  # (how much it is needed, its text), in display order
    if s.total:
        fraction = min(1.0, s.done / s.total)
        filled = int(fraction * _BAR_WIDTH)
        parts.append((0, "[" + "#" * filled + "." * (_BAR_WIDTH - filled) + "]"))
        parts.append((9, f"{s.done:,}/{s.total:,}"))
        parts.append((5, f"{fraction:6.1%}".strip()))
        parts.append((3, f"{rate:,.1f}/s"))
        if rate > 0 and s.done < s.total:
            parts.append((4, "ETA " + _clock_text((s.total - s.done) / rate)))
    else:
        parts.append((9, f"{s.done:,} done"))
        parts.append((3, f"{rate:,.1f}/s"))
        parts.append((2, f"{s.listed:,} listed so far"))
    parts.append((8, f"{s.failed:,} failed"))
    parts.append((1, _clock_text(s.elapsed_s)))
    room = max(width - 1, 0)
    for need in sorted({need for need, _ in parts}):
        text = "  ".join(part for _, part in parts)
        if len(text) <= room:
            return text
        parts = [(n, part) for n, part in parts if n != need]
    return ""


def terminal_width(stream: TextIO) -> int:
    """The width of the window `stream` shows in, asked each time so a resize is
    followed: its own size, not stdout's (`rebrand run | jq` draws on stderr); COLUMNS or
    80 when it has none."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        columns = 0
    return columns or shutil.get_terminal_size().columns


@dataclass(eq=False, slots=True)
class ProgressBar:
    """Draws `render(...)` of a Reporter's counts on `stream` (a terminal); a fleet's bar
    has no reporter of its own and counts each target's as `follow` adds it."""

    reporter: Reporter | None
    stream: TextIO
    _: KW_ONLY
    total: int | None = None
    interval: float = 0.1
    clock: Callable[[], float] = time.monotonic
    width: Callable[[], int] | None = None  # None: the window `stream` shows in
    _started: float = field(init=False)
    _drawn_at: float | None = field(default=None, init=False)  # None: nothing on screen
    _reporters: list[Reporter] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._started = self.clock()
        if self.reporter is not None:
            self._reporters.append(self.reporter)

    def snapshot(self) -> Snapshot:
        reporters = self._reporters
        return Snapshot(done=sum(sum(r.counts.values()) for r in reporters),
                        listed=sum(r.listed for r in reporters),
                        failed=sum(r.counts[Kind.FAILED] for r in reporters),
                        elapsed_s=self.clock() - self._started, total=self.total)

    def __call__(self, _outcome: Outcome) -> None:
        now = self.clock()
        if self._drawn_at is None or now - self._drawn_at >= self.interval:
            self.draw(now)

    def draw(self, now: float | None = None) -> None:
        width = self.width() if self.width is not None else terminal_width(self.stream)
        self.stream.write(_CLEAR + render(self.snapshot(), width))
        self.stream.flush()
        self._drawn_at = self.clock() if now is None else now

    def clear(self) -> None:
        if self._drawn_at is not None:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._drawn_at = None

    def log_stream(self, out: TextIO) -> TextIO:
        """A stream for the logger: each line first wipes the bar (redrawn by the next
        outcome), so log lines scroll above it."""
        return cast(TextIO, _AboveBar(self, out))

    def attach(self) -> ProgressBar:
        for reporter in self._reporters:
            reporter.listeners.append(self)
        return self

    def follow(self, reporter: Reporter) -> Reporter:
        """Count `reporter` on this bar too, redrawn as its outcomes arrive: a fleet's
        target, as it starts."""
        self._reporters.append(reporter)
        reporter.listeners.append(self)
        return reporter

    def close(self) -> None:
        for reporter in self._reporters:
            if self in reporter.listeners:
                reporter.listeners.remove(self)
        self.clear()


class _AboveBar:
    def __init__(self, bar: ProgressBar, out: TextIO) -> None:
        self._bar = bar
        self._out = out

    def write(self, text: str) -> int:
        self._bar.clear()
        return self._out.write(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()

