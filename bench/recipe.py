"""The published recipe's approach, corrected so that it succeeds.

List every conference into memory with `requests`, following `links.next`, then PUT them
one at a time. The published recipe sent only the ten colors, which a full-replacement
PUT refuses; this sends every writable field, nulls dropped, `display_name` falling back
to `name`. Run: `python bench/recipe.py '<theme colors as JSON>'`, with SIGNALWIRE_SPACE
(a URL), SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN set. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urljoin

import requests

# The update schema's fields: the one correction the recipe needs to succeed at all.
from worker.body import WRITABLE_FIELDS


def main() -> int:
    theme = json.loads(sys.argv[1])
    space = os.environ["SIGNALWIRE_SPACE"].rstrip("/")
    session = requests.Session()
    session.auth = (os.environ["SIGNALWIRE_PROJECT_ID"], os.environ["SIGNALWIRE_API_TOKEN"])

    conferences = []
    url: str | None = f"{space}/api/video/conferences?page_size=1000"
    while url:
        answer = session.get(url, timeout=30)
        answer.raise_for_status()
        payload = answer.json()
        conferences.extend(payload["data"])
        link = payload.get("links", {}).get("next")
        url = urljoin(url, link) if link else None

    updated = failed = 0
    for conference in conferences:
        body = {f: conference[f] for f in WRITABLE_FIELDS if conference.get(f) is not None}
        body.setdefault("display_name", conference["name"])
        body.update(theme)
        answer = session.put(f"{space}/api/video/conferences/{conference['id']}", json=body,
                             timeout=30)
        if answer.ok:
            updated += 1
        else:
            failed += 1
            print(f"{conference['id']}: {answer.status_code} {answer.text[:200]}", file=sys.stderr)
    print(json.dumps({"listed": len(conferences), "updated": updated, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
