"""The floor: the least a client can do for the same result, as a yardstick for rebrand.

A bare aiohttp loop: list every conference (following `links.next`), then C tasks each
take one, GET it, PUT every writable field with the theme's colors unless it wears them
already (as rebrand does: the same requests), and print one JSON line. No journal, no
rate limiter, no retries, no checks beyond the status. Run:
`python bench/floor.py '<theme colors as JSON>' C` with SIGNALWIRE_SPACE (a URL),
SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN set. Its last line is the count.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Any
from urllib.parse import urljoin

import aiohttp
import orjson

# The update schema's fields: without them a full-replacement PUT is refused.
from worker.body import WRITABLE_FIELDS


async def main(theme: dict[str, str], concurrency: int) -> int:
    space = os.environ["SIGNALWIRE_SPACE"].rstrip("/")
    pair = f"{os.environ['SIGNALWIRE_PROJECT_ID']}:{os.environ['SIGNALWIRE_API_TOKEN']}"
    headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
               "Content-Type": "application/json", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency + 1)
    counts = {"updated": 0, "unchanged": 0, "failed": 0}
    out = sys.stdout.buffer
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        queue: asyncio.Queue[str] = asyncio.Queue()
        url: str | None = f"{space}/api/video/conferences?page_size=1000"
        while url:
            async with session.get(url) as answer:
                page: Any = orjson.loads(await answer.read())
            for conference in page["data"]:
                queue.put_nowait(conference["id"])
            link = page["links"].get("next")
            url = urljoin(url, link) if link else None
        listed = queue.qsize()

        async def one(cid: str) -> str:
            target = f"{space}/api/video/conferences/{cid}"
            async with session.get(target) as answer:
                if answer.status != 200:
                    return "failed"
                fresh = orjson.loads(await answer.read())
            if all(str(fresh.get(f)).upper() == v.upper() for f, v in theme.items()):
                return "unchanged"
            body = {f: fresh[f] for f in WRITABLE_FIELDS if fresh.get(f) is not None}
            body.setdefault("display_name", fresh["name"])
            body.update(theme)
            async with session.put(target, data=orjson.dumps(body)) as answer:
                await answer.read()
                return "updated" if answer.status == 200 else "failed"

        async def consume() -> None:
            while not queue.empty():
                cid = queue.get_nowait()
                kind = await one(cid)
                counts[kind] += 1
                out.write(orjson.dumps({"event": kind, "id": cid}) + b"\n")

        await asyncio.gather(*(consume() for _ in range(concurrency)))
    out.write(orjson.dumps({"listed": listed, **counts}) + b"\n")
    out.flush()
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(orjson.loads(sys.argv[1]), int(sys.argv[2]))))
