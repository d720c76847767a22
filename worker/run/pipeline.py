"""The job's shape: a producer fills a bounded stream, consumers empty it.

    producer ──(bounded memory object stream)──▶ consumers ──Outcome──▶ reporter

The stream's bound keeps memory flat whatever the Space's size, and lets the consumers
start on the first page while later pages are still being listed. A stop request ends
the listing, starts no new conference, and gives those in flight a grace period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio

from worker.errors import primary_error
from worker.retry import RetryPolicy
from worker.run.api import Conference
from worker.run.consumer import Worker, consume
from worker.run.producer import Source
from worker.run.report import Reporter
from worker.run.stopping import Stop


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    concurrency: int = 16
    queue_size: int = 512
    page_size: int = 1000
    retry: RetryPolicy = RetryPolicy()
    dry_run: bool = False
    grace_s: float = 20.0
    max_failures: int | None = None
    list_filters: Mapping[str, str] = field(default_factory=dict)


async def run_pipeline(
    source: Source,
    worker: Worker,
    reporter: Reporter,
    options: PipelineOptions,
    *,
    stop: Stop | None = None,
) -> None:
    """Run the source and the consumers to completion or to a stop. Raises AuthError or
    AbortError (after cancelling everything) when the run cannot go on."""
    stop = stop or Stop()
    send, receive = anyio.create_memory_object_stream[Conference](options.queue_size)
    producer_scope = anyio.CancelScope()

    async def producer() -> None:
        with producer_scope:
            async with send:
                await source(send)

    try:
        async with anyio.create_task_group() as everything:

            async def on_stop() -> None:
                await stop.event.wait()
                producer_scope.cancel()
                # In-flight conferences get the grace period, then everything stops.
                await anyio.sleep(options.grace_s)
                everything.cancel_scope.cancel()

            everything.start_soon(on_stop)
            async with anyio.create_task_group() as work:
                work.start_soon(producer)
                async with receive:
                    for _ in range(options.concurrency):
                        work.start_soon(consume, receive.clone(), worker, reporter, stop,
                                        options.max_failures)
            everything.cancel_scope.cancel()  # the work is done: end the stop watcher
    except BaseExceptionGroup as group:
        raise primary_error(group) from None
    finally:
        send.close()
        receive.close()
