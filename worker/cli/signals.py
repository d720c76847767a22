"""Signals: the first SIGINT/SIGTERM asks the run to stop cleanly, a second exits at once."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import structlog

from worker.errors import single_error
from worker.run.stopping import Stop, StopReason

T = TypeVar("T")


async def watch_signals(stop: Stop) -> None:
    """First SIGINT/SIGTERM: stop cleanly. Second: exit at once (the journal is already
    durable, so nothing is lost by not waiting)."""
    log = structlog.get_logger("rebrand")
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            reason = StopReason.SIGINT if signum == signal.SIGINT else StopReason.SIGTERM
            if stop.request(reason):
                log.warning("run.stopping", reason=reason.value)
                continue
            log.error("run.killed", reason="second signal: exiting at once")
            sys.stdout.flush()
            os._exit(reason.exit_code)


async def with_signals(job: Callable[[], Awaitable[T]], stop: Stop) -> T:
    """Await `job` with signals turned into stop requests."""
    result: T | None = None
    with single_error():
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_signals, stop)
            result = await job()
            tg.cancel_scope.cancel()
    assert result is not None  # noqa: S101 - the job either returned or raised
    return result
