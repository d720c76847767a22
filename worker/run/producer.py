"""The producer: the Space's listing, page by page, into the bounded stream.

It follows `links.next` (absolute or relative) only while it stays on the Space, ends
when `next` is absent, drops ids already seen, and fails loudly on a listing that would
not end (a page with nothing new, a `next` back to a page already read, too many pages).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import NoReturn

import anyio
from anyio.abc import ObjectSendStream
from anyio.streams.memory import MemoryObjectSendStream

from worker.errors import (
    AbortError,
    ApiError,
    ListingError,
    RetryableApiError,
    UnreachableError,
    UnsafeLinkError,
)
from worker.outcome import Kind, Outcome
from worker.retry import RetryPolicy, Sleep, with_retries
from worker.run.api import Conference, SpaceClient, request_path
from worker.run.report import Reporter
from worker.seen import SeenIds
from worker.select import Predicate
from worker.space import resolve_link

# A coroutine that fills the stream and returns when it has nothing more.
Source = Callable[[ObjectSendStream[Conference]], Awaitable[None]]
# Conferences handed over between two scheduling points (see hand_over).
HAND_OVER_RUN = 256


async def produce(
    client: SpaceClient,
    first_url: str,
    send: ObjectSendStream[Conference],
    reporter: Reporter,
    *,
    policy: RetryPolicy,
    sleep: Sleep,
    select: Predicate | None = None,
    max_pages: int,
) -> None:
    """List every conference once, following `links.next`, into the bounded stream.
    Ends when `next` is absent; fails (exit 4, `listing.failed`) on a page that brings no
    conference not already listed yet links on, on a `next` to a page already read, and
    past `max_pages`. Memory grows only with new conferences: every page that goes on
    brought one, and each id and page URL is kept as an 8-byte digest."""
    def on_retry(error: RetryableApiError) -> None:
        reporter.retried(error.status)

    def fail(url: str, reason: str, error: type[AbortError] = ListingError, *,
             whole: bool = False) -> NoReturn:
        """Log `listing.failed` (path and reason) and stop; `whole`: the reason is a
        message of its own (it names what could not be reached), kept short."""
        path = request_path(url)
        reporter.listing_failed(path, reason)
        raise error(reason if whole else f"listing conferences failed at GET {path}: {reason}")

    async with send:
        url = first_url
        visited = SeenIds()
        visited.add(url)
        seen = SeenIds()
        pages = 0
        while True:
            pages += 1
            if pages > max_pages:
                fail(url, f"more than {max_pages:,} pages (--max-pages); if the Space "
                          "really holds more, raise it")
            try:
                page = (await with_retries(partial(client.list_page, url), policy, sleep=sleep,
                                           on_retry=on_retry)).value
            except ApiError as exc:
                # A transport failure's message already says what could not be reached.
                transport = exc.status is None and bool(exc.errors)
                fail(url, "; ".join(exc.errors) if transport else str(exc), UnreachableError,
                     whole=transport)
            next_link = page.next_link
            new = 0
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
                new += 1
                reporter.listed_one()
                if select is not None and not select(conference):
                    reporter.record(Outcome(Kind.EXCLUDED, cid, str(conference.get("name"))))
                    continue
                await hand_over(send, conference, new)
                del conference
            if next_link is None:
                return
            if not new:
                fail(url, "the page brought no conference not already listed, yet links to "
                          "another page: the listing would not end")
            try:
                next_url = resolve_link(client.space, url, next_link)
            except UnsafeLinkError as exc:
                fail(url, str(exc), UnsafeLinkError)
            if not visited.add(next_url):
                fail(url, f"links.next leads back to a page already read "
                          f"({request_path(next_url)}): the listing would not end")
            url = next_url


async def hand_over(send: ObjectSendStream[Conference], conference: Conference,
                    serial: int) -> None:
    """`send.send(conference)`, without its scheduling point when the stream has room,
    but for every HAND_OVER_RUN-th conference (`serial` counts them). anyio's send asks
    which event loop runs on every item (a checkpoint); for 10,000 conferences that was
    6 % of the run's CPU. The regular checkpoint lets consumers run before the stream
    fills: a plan's consumers do no I/O, and a producer running ahead to a full stream
    kept 512 more conferences alive (a million-conference plan peaked 5.5 MB higher). A
    full stream still waits, so cancellation is served as before."""
    if serial % HAND_OVER_RUN and isinstance(send, MemoryObjectSendStream):
        try:
            send.send_nowait(conference)
        except anyio.WouldBlock:
            pass
        else:
            return
    await send.send(conference)


def listing(client: SpaceClient, reporter: Reporter, *, page_size: int,
            filters: Mapping[str, str], policy: RetryPolicy, select: Predicate | None = None,
            sleep: Sleep = anyio.sleep, max_pages: int) -> Source:
    """The source for `run` and `plan`: the Space's own listing."""
    first_url = client.first_page_url(page_size, filters)

    async def source(send: ObjectSendStream[Conference]) -> None:
        await produce(client, first_url, send, reporter, policy=policy, sleep=sleep,
                      select=select, max_pages=max_pages)

    return source
