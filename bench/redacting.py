"""`python -m bench.redacting`: what the last log processor costs a typical line.

Renders 100,000 `conference.updated` events (id, name, changes) with the JSON renderer
(bytes, as off a terminal), the same lines as text, and the console renderer, each alone
and behind `redacting`, and prints the time per line of each and of the scrub between. Best of five rounds: the machine is shared.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson
import structlog

from worker.credentials import Credentials
from worker.run.logs import redacting

LINES = 100_000
ROUNDS = 5
SECRETS = Credentials("3f1c2a9e-5b7d-4c1e-9a2b-8d6f0e4c7b21",
                      "PT9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4").secrets


def _events() -> list[dict[str, Any]]:
    return [{"event": "conference.updated", "conference_id": str(uuid.UUID(int=i + 1)),
             "name": f"sales-room-{i}", "attempts": 1, "level": "info",
             "timestamp": "2025-06-01T12:00:00.123456Z",
             "changes": {"light_primary": {"old": "#000000", "new": "#0A84FF"},
                         "dark_primary": {"old": "#111111", "new": "#409CFF"}}}
            for i in range(LINES)]


def _best(processor: Callable[..., Any], events: list[dict[str, Any]]) -> float:
    """Seconds per line, best of ROUNDS."""
    best = float("inf")
    for _ in range(ROUNDS):
        batch = [dict(e) for e in events]
        start = time.perf_counter()
        for event in batch:
            processor(None, "info", event)
        best = min(best, time.perf_counter() - start)
    return best / len(events)


def _as_text(renderer: Callable[..., Any]) -> Callable[..., Any]:
    def render(logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        return renderer(logger, method, event).decode()  # type: ignore[no-any-return]
    return render


def main() -> None:
    events = _events()
    json_renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    console = structlog.dev.ConsoleRenderer(colors=False)
    for kind, renderer in (("json", json_renderer), ("text", _as_text(json_renderer)),
                           ("console", console)):
        alone = _best(renderer, events)
        scrubbed = _best(redacting(renderer, SECRETS), events)
        print(f"{kind:7}  render {alone * 1e9:6.0f} ns/line   render+redacting "
              f"{scrubbed * 1e9:6.0f} ns/line   scrub {(scrubbed - alone) * 1e9:5.0f} ns/line")


if __name__ == "__main__":
    main()
