"""The official SDK's way: signalwire-sdk 3.7.5's RestClient, `paginate()` then `update()`.

The SDK exposes the endpoints as `client.video.conferences` (a generated CrudResource
whose `update` is a PUT taking every writable field as a keyword and dropping `None`s).
It is synchronous and does not retry by default. Run: `python bench/sdk_peer.py
'<theme colors as JSON>'` with SIGNALWIRE_SPACE=127.0.0.1:PORT (the SDK speaks plain
http to loopback), SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys

from signalwire.rest import RestClient
from signalwire.rest._base import SignalWireRestError

# The update schema's fields: the one correction the recipe needs to succeed at all.
from worker.body import WRITABLE_FIELDS


def main() -> int:
    theme = json.loads(sys.argv[1])
    client = RestClient()  # project, token and host from the environment
    conferences = list(client.video.conferences.paginate(page_size=1000))
    updated = failed = 0
    for conference in conferences:
        fields = {f: conference.get(f) for f in WRITABLE_FIELDS}  # update() drops Nones
        if fields["display_name"] is None:
            fields["display_name"] = conference["name"]
        fields.update(theme)
        try:
            client.video.conferences.update(conference["id"], **fields)
        except SignalWireRestError as exc:
            failed += 1
            print(f"{conference['id']}: {exc}", file=sys.stderr)
        else:
            updated += 1
    print(json.dumps({"listed": len(conferences), "updated": updated, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
