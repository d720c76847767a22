"""The event loop the CLI runs jobs on: asyncio, on uvloop where it is installed.

uvloop runs the same asyncio code with its loop, transports and DNS in C: the benchmark
measured CPU per update fall from 0.73 to 0.64 ms with it (L = 0, N = 10,000) (see README, Benchmark).
It is optional: without it (e.g. on Windows) the standard loop runs the same code.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio

from worker.cli.signals import remembered

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def run(fn: Callable[[Unpack[Ts]], Awaitable[T]], *args: *Ts) -> T:
    """`anyio.run` on the fastest available asyncio loop; a signal that comes while it
    starts waits for the job's signal watcher (see worker.cli.signals)."""
    with remembered():
        return anyio.run(fn, *args, backend="asyncio",
                         backend_options={"use_uvloop": HAVE_UVLOOP})
