"""Signals at any moment: SIGINT and SIGTERM end rebrand promptly, whatever it is doing.

- Outside a job (start-up, loading the config, the confirmation prompt) nothing is in
  flight: the first signal ends the process at once with 130 or 143 and no traceback.
  Python would otherwise print a KeyboardInterrupt traceback for SIGINT and, as PID 1 in
  a container without an init, ignore SIGTERM altogether.
- Inside a job the first signal asks the run to stop (worker.run.stopping). Before any
  write that takes moments; once writes started, those in flight get the grace period.
  A second signal exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

import anyio
import structlog

from worker.cli.entry import SIGNALS, Interrupted, interrupt
from worker.errors import single_error
from worker.run.logs import flush_held
from worker.run.stopping import Stop, StopReason

T = TypeVar("T")

# Signals that arrived while an event loop was starting, before its watcher listened.
_pending: list[int] = []


def _remember(signum: int, _frame: FrameType | None) -> None:
    _pending.append(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def remembered() -> Iterator[None]:
    """Around an event loop: a signal that arrives before `watch_signals` listens is kept
    for it (raising inside the loop's start-up would leave it half-made), and the
    handlers that were there before come back afterwards."""
    if not _in_main_thread():  # signal handlers belong to the main thread
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _pending.clear()
    for signum in SIGNALS:
        signal.signal(signum, _remember)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        late = list(_pending)
        _pending.clear()
    # A signal after the watcher stopped listening, as the loop closed: honour it now.
    if late and previous[signal.Signals(late[0])] is interrupt:
        raise Interrupted(late[0])


def _on_signal(signum: int, stop: Stop) -> None:
    log = structlog.get_logger("rebrand")
    reason = StopReason.SIGINT if signum == signal.SIGINT else StopReason.SIGTERM
    if stop.request(reason):
        log.warning("run.stopping", reason=reason.value)
        return
    log.error("run.killed", reason="second signal: exiting at once")
    flush_held()
    sys.stdout.flush()
    os._exit(reason.exit_code)


async def watch_signals(stop: Stop) -> None:
    """First SIGINT/SIGTERM: stop cleanly. Second: exit at once (the journal is already
    durable, so nothing is lost by not waiting)."""
    with anyio.open_signal_receiver(*SIGNALS) as signals:
        while _pending:  # arrived while the loop was starting
            _on_signal(_pending.pop(0), stop)
        async for signum in signals:
            _on_signal(signum, stop)


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
