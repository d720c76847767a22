"""Command-line value types: numbers with bounds, refused with a message that says what
to give instead. Shared by `rebrand` and `python -m worker.sandbox`."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Literal, TypeVar

from worker.config import MAX_CONCURRENCY

N = TypeVar("N", int, float)


def bounded(kind: Callable[[str], N], *, low: float | None = None,
            high: float | None = None, above: bool = False) -> Callable[[str], N]:
    """A parser of `kind` in [low, high] (or (low, high] with `above`)."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value <= low if above else value < low):
            raise argparse.ArgumentTypeError(
                f"{text} must be above {low:g}" if above else f"{text} must be at least {low:g}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be at most {high:g}")
        return value

    return parse


positive_int = bounded(int, low=1)
port = bounded(int, low=0, high=65535)  # 0: the system picks a free one
# The config file's bound, so --concurrency and `concurrency:` refuse the same typos.
_pinned = bounded(int, low=1, high=MAX_CONCURRENCY)


def concurrency(text: str) -> int | Literal["auto"]:
    """`auto`, or a whole number of conferences in flight that pins it."""
    return "auto" if text.strip().lower() == "auto" else _pinned(text)


positive_float = bounded(float, low=0, above=True)
non_negative = bounded(float, low=0)
probability = bounded(float, low=0, high=1)


def limit_or_none(text: str) -> int | None:
    """A whole number of requests, or `none`/`off`/`0` for no limit."""
    if text.lower() in {"none", "off", "0"}:
        return None
    return bounded(int, low=0)(text)
