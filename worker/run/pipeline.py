"""The job's shape: a producer fills a bounded stream, consumers empty it.

    producer ──(bounded memory object stream)──▶ consumers ──Outcome──▶ reporter

The stream's bound keeps memory flat whatever the Space's size, and lets the consumers
start on the first page while later pages are still being listed. With `concurrency:
auto` the number of consumers follows the controller's limit: one more is started when
the limit rises, and one retires between conferences when it falls. A stop request (or a
listing that fails) ends the listing, starts no new conference, and gives those in flight a grace period (none
before the first write: then it stops everything at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream

from worker.errors import AbortError, single_error
from worker.run.api import Conference
from worker.run.consumer import ConferenceUpdater, consume
from worker.run.producer import Source
from worker.run.report import Reporter
from worker.run.stopping import Stop, StopReason


class Limit(Protocol):
    """How many conferences may be in flight now (worker.concurrency's controller)."""

    @property
    def limit(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Fixed:
    """A pinned `concurrency`."""

    limit: int


async def run_pipeline(
    source: Source,
    updater: ConferenceUpdater,
    reporter: Reporter,
    stop: Stop,
    *,
    concurrency: Limit,
    queue_size: int,
    grace_s: float,
    deadline_s: float | None = None,
) -> bool:
    """Run the source and `concurrency.limit` consumers (read again after each
    conference) to completion or to a stop (asked for,
    or `deadline_s` reached). Returns whether the source was listed to its end (a stop
    may come after it was: then it cut no listing). Raises AuthError or AbortError (after
    cancelling everything) when the run cannot go on."""
    send, receive = anyio.create_memory_object_stream[Conference](queue_size)
    producer_scope = anyio.CancelScope()

    listing_failed: list[AbortError] = []
    listed_all = False

    async def producer() -> None:
        nonlocal listed_all
        with producer_scope:
            async with send:
                try:
                    await source(send)
                    listed_all = True
                except AbortError as exc:
                    # A stop like any other: what is in flight finishes within the grace
                    # period, nothing new starts; the error decides the exit afterwards.
                    listing_failed.append(exc)
                    stop.request(StopReason.LISTING_FAILED)

    async def on_stop() -> None:
        await stop.event.wait()
        producer_scope.cancel()
        updater.stop_waiting()
        if updater.writes_started:
            # In-flight conferences get the grace period, then everything stops.
            await anyio.sleep(grace_s)
        # Before the first write there is nothing to let finish: listing and reads stop
        # now, so a pod stopped while it lists is gone within moments.
        everything.cancel_scope.cancel()

    async def deadline(seconds: float) -> None:
        await anyio.sleep(seconds)
        stop.request(StopReason.DEADLINE)

    try:
        with single_error():
            async with anyio.create_task_group() as everything:
                everything.start_soon(on_stop)
                if deadline_s is not None:
                    everything.start_soon(deadline, deadline_s)
                async with anyio.create_task_group() as work:
                    work.start_soon(producer)
                    # `receive` stays open while the work runs, for consumers started
                    # later to clone; `finally` closes it.
                    Consumers(work, receive, updater, reporter, stop, concurrency).match_limit()
                everything.cancel_scope.cancel()  # the work is done: end the watchers
    finally:
        send.close()
        receive.close()
    if listing_failed:
        raise listing_failed[0]
    return listed_all


@dataclass(eq=False, slots=True)
class Consumers:
    """As many consumer tasks as the limit allows, each with its own clone of the stream."""

    group: anyio.abc.TaskGroup
    receive: MemoryObjectReceiveStream[Conference]
    updater: ConferenceUpdater
    reporter: Reporter
    stop: Stop
    limit: Limit
    running: int = field(default=0, init=False)

    def match_limit(self) -> None:
        """Start consumers up to the limit (called after each conference: cheap)."""
        while self.running < self.limit.limit:
            self.running += 1
            self.group.start_soon(consume, self.receive.clone(), self.updater,
                                  self.reporter, self.stop, self)

    def retire(self) -> bool:
        """Should a consumer between conferences stop, the limit having fallen? The limit
        is at least 1, so the stream always keeps a reader."""
        if self.running > self.limit.limit:
            self.running -= 1
            return True
        return False
