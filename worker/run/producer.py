"""The producer: the Space's listing, page by page, into the bounded stream.

It follows `links.next` (absolute or relative) only while it stays on the Space, stops
when `next` is absent or leads back to a page already read, and drops ids already seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import anyio
from anyio.abc import ObjectSendStream

from worker.errors import ApiError, RetryableApiError, UnreachableError
from worker.outcome import Kind, Outcome
from worker.retry import RetryPolicy, Sleep, with_retries
from worker.run.api import Conference, SpaceClient
from worker.run.report import Reporter
from worker.seen import SeenIds
from worker.select import Predicate
from worker.space import resolve_link

# A coroutine that fills the stream and returns when it has nothing more.
Source = Callable[[ObjectSendStream[Conference]], Awaitable[None]]


async def produce(
    client: SpaceClient,
    first_url: str,
    send: ObjectSendStream[Conference],
    reporter: Reporter,
    *,
    policy: RetryPolicy,
    sleep: Sleep,
    select: Predicate | None = None,
) -> None:
    """List every conference once, following `links.next`, into the bounded stream.
    Stops when `next` is absent or leads back to a page already read."""
    def on_retry(error: RetryableApiError) -> None:
        reporter.retried(error.status)

    async with send:
        url = first_url
        visited = {url}
        seen = SeenIds()
        while True:
            try:
                page = (await with_retries(partial(client.list_page, url), policy, sleep=sleep,
                                           on_retry=on_retry)).value
            except ApiError as exc:
                # A transport failure's message already says what could not be reached.
                raise UnreachableError("; ".join(exc.errors) if exc.status is None and exc.errors
                                       else f"listing conferences failed: {exc}") from exc
            next_link = page.next_link
            # Hand conferences over one by one and let go of each: the page's list would
            # otherwise keep every already-processed conference alive until the next
            # page arrives, doubling the producer's share of memory.
            conferences = page.conferences
            del page
            conferences.reverse()
            while conferences:
                conference = conferences.pop()
                cid = conference.get("id")
                if not isinstance(cid, str) or not seen.add(cid):
                    continue
                reporter.listed_one()
                if select is not None and not select(conference):
                    reporter.record(Outcome(Kind.EXCLUDED, cid, str(conference.get("name"))))
                    continue
                await send.send(conference)
                del conference
            if next_link is None:
                return
            url = resolve_link(client.space, url, next_link)
            if url in visited:
                return
            visited.add(url)


def listing(client: SpaceClient, reporter: Reporter, *, page_size: int,
            filters: Mapping[str, str], policy: RetryPolicy, select: Predicate | None = None,
            sleep: Sleep = anyio.sleep) -> Source:
    """The source for `run` and `plan`: the Space's own listing."""
    first_url = client.first_page_url(page_size, filters)

    async def source(send: ObjectSendStream[Conference]) -> None:
        await produce(client, first_url, send, reporter, policy=policy, sleep=sleep,
                      select=select)

    return source
