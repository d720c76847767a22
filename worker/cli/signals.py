"""Signals at any moment: SIGINT and SIGTERM end rebrand promptly, whatever it is doing.

- Outside a job (start-up, loading the config, the confirmation prompt) nothing is in
  flight: the first signal ends the process at once with 130 or 143 and no traceback.
  Python would otherwise print a KeyboardInterrupt traceback for SIGINT and, as PID 1 in
  a container without an init, ignore SIGTERM altogether.
- Inside a job the first signal asks the run to stop (worker.run.stopping). Before any
  write that takes moments; once writes started, those in flight get the grace period.
  A second signal exits at once.

From the first line of `main` to the last, SIGINT and SIGTERM always have a handler of
ours. The event loop's own signal handlers (`loop.add_signal_handler`, which anyio's
signal receiver uses) are not used: removing one sets the default disposition, and as
PID 1 the kernel drops a signal whose disposition is the default. Between a plan's event
loop and its run's, that dropped a SIGTERM, and the run went on to write.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TypeVar

import anyio
import structlog

from worker.cli.entry import SIGNALS, Interrupted, check_interrupted, interrupt
from worker.errors import single_error
from worker.run.logs import flush_held
from worker.run.stopping import Stop, StopReason

T = TypeVar("T")

# Signals that came while an event loop ran, for its watcher (or, after the watcher
# stopped, for `remembered` to honour as the loop closes).
_pending: list[int] = []
# How `_remember` wakes the watcher: one entry while it listens.
_wakers: list[Callable[[], None]] = []


def _remember(signum: int, _frame: FrameType | None) -> None:
    """The handler while an event loop runs. Python runs it in the main thread between
    two bytecodes, which may be inside the loop's own code: so it only records the
    signal and wakes the watcher the way another thread would."""
    _pending.append(signum)
    for wake in _wakers:
        wake()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def remembered() -> Iterator[None]:
    """Around an event loop: every signal is kept for `watch_signals` (raising inside
    the loop would leave it half-made), one that comes before it listens too, and the
    handlers that were there before come back afterwards, each replaced by the other
    with never a moment of the default disposition between."""
    if not _in_main_thread():  # signal handlers belong to the main thread
        yield
        return
    check_interrupted()  # a signal taken before, its exception swallowed: no job now
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
    already = stop.reason
    if stop.signalled(reason):
        if already is None:
            log.warning("run.stopping", reason=reason.value)
        else:
            # The drain under way goes on, and the stop that began it keeps its exit code.
            log.warning("run.stopping", reason=reason.value, already=already.value)
        return
    log.error("run.killed", reason="second signal: exiting at once")
    flush_held()
    sys.stdout.flush()
    os._exit(reason.exit_code)


async def watch_signals(stop: Stop) -> None:
    """First SIGINT/SIGTERM: stop cleanly. Second: exit at once (the journal is already
    durable, so nothing is lost by not waiting). Runs inside `remembered` (worker.cli.loop
    runs every job so), whose handler feeds it."""
    if not _in_main_thread():
        # Signals reach the main thread only: a job run elsewhere is stopped by its host.
        await anyio.sleep_forever()
    if any(signal.getsignal(signum) is not _remember for signum in SIGNALS):
        raise RuntimeError("watch_signals runs inside worker.cli.loop.run")
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()

    def wake() -> None:
        # Signal-safe, as asyncio's own signal handling does it: a callback for the loop
        # and a byte to its self-pipe.
        with suppress(RuntimeError):  # a loop closing under it: `remembered` honours it
            loop.call_soon_threadsafe(arrived.set)

    _wakers.append(wake)
    try:
        while True:
            while _pending:  # some may have come while the loop was starting
                _on_signal(_pending.pop(0), stop)
            await arrived.wait()
            arrived.clear()
    finally:
        _wakers.remove(wake)


def end_if_signalled(stop: Stop) -> None:
    """Between two jobs (a plan, then the run it asked about): a signal the first job's
    watcher took ends the process before the second starts, even one that came as the
    first finished, too late to change its result."""
    if stop.signal is StopReason.SIGINT:
        raise Interrupted(signal.SIGINT)
    if stop.signal is StopReason.SIGTERM:
        raise Interrupted(signal.SIGTERM)


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
