"""The job's shape: a producer fills a bounded stream, consumers empty it.

    producer ──(bounded memory object stream)──▶ consumers ──Outcome──▶ reporter

The stream's bound keeps memory flat whatever the Space's size, and lets the consumers
start on the first page while later pages are still being listed. A stop request ends
the listing, starts no new conference, and gives those in flight a grace period.
"""

from __future__ import annotations

import anyio

from worker.errors import single_error
from worker.run.api import Conference
from worker.run.consumer import ConferenceUpdater, consume
from worker.run.producer import Source
from worker.run.report import Reporter
from worker.run.stopping import Stop, StopReason


async def run_pipeline(
    source: Source,
    updater: ConferenceUpdater,
    reporter: Reporter,
    stop: Stop,
    *,
    concurrency: int,
    queue_size: int,
    grace_s: float,
    deadline_s: float | None = None,
) -> None:
    """Run the source and `concurrency` consumers to completion or to a stop (asked for,
    or `deadline_s` reached). Raises AuthError or AbortError (after cancelling everything)
    when the run cannot go on."""
    send, receive = anyio.create_memory_object_stream[Conference](queue_size)
    producer_scope = anyio.CancelScope()

    async def producer() -> None:
        with producer_scope:
            async with send:
                await source(send)

    async def on_stop() -> None:
        await stop.event.wait()
        producer_scope.cancel()
        # In-flight conferences get the grace period, then everything stops.
        await anyio.sleep(grace_s)
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
                    async with receive:
                        for _ in range(concurrency):
                            work.start_soon(consume, receive.clone(), updater, reporter, stop)
                everything.cancel_scope.cancel()  # the work is done: end the watchers
    finally:
        send.close()
        receive.close()
