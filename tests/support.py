"""Test support shared by modules: the brand theme, sandbox credentials, settings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from worker.config import Credentials, Settings, parse_settings
from worker.sandbox import RunningSandbox

BRAND = {
    "light": {"primary": "#0A84FF", "background": "#FFFFFF", "foreground": "#111827",
              "success": "#16A34A", "negative": "#DC2626"},
    "dark": {"primary": "#0A84FF", "background": "#0B1220", "foreground": "#F9FAFB",
             "success": "#22C55E", "negative": "#EF4444"},
}

SANDBOX_CREDENTIALS = Credentials("sandbox-project", "sandbox-token")
REPO = Path(__file__).resolve().parent.parent

SandboxFactory = Callable[..., AbstractAsyncContextManager[RunningSandbox]]


# Retries fast enough for a test; the same attempts as a real run would make.
FAST_RETRY = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "retry_after_cap_s": 0.05,
              "max_attempts": 8}
# Keywords of settings_for that are flags, not config keys.
_FLAGS = frozenset({"backup_dir", "dry_run", "force", "grace_s", "max_failures", "deadline_s",
                    "allow_field"})


def settings_for(url: str, theme: dict[str, Any] | None = None, **given: Any) -> Settings:
    """Settings as a config file naming this sandbox would give them (fast retries), with
    the flags among `given` (backup_dir=..., dry_run=True, ...) merged as the CLI does."""
    raw: dict[str, Any] = {
        "space": url,
        "theme": theme if theme is not None else BRAND,
        "concurrency": 8,
        "retry": FAST_RETRY,
        **{key: value for key, value in given.items() if key not in _FLAGS},
    }
    return parse_settings(raw, {}, {k: v for k, v in given.items() if k in _FLAGS})


def restore_settings(url: str, **flags: Any) -> Settings:
    """A restore's settings for this sandbox, as `rebrand restore` would merge them."""
    return parse_settings({"space": url, "concurrency": 8, "retry": FAST_RETRY}, {}, flags,
                          restoring=True)


def whole_conference(conference_id: str, **fields: Any) -> dict[str, Any]:
    """A conference answer as the spec describes it (every required property present),
    for small hand-written servers; `fields` override or add properties."""
    from worker.sandbox.data import seed_conferences

    [seeded] = seed_conferences(1, 0, 0.0).values()
    return {**seeded, "id": conference_id, **fields}


def json_events(text: str) -> list[dict[str, Any]]:
    """The JSON-lines events in captured output; every non-blank line must be one."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve a small aiohttp app on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = next(a[1] for a in runner.addresses if isinstance(a, tuple))
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def trap_app(seen: list[str]) -> web.Application:
    """A server that must never be reached: it records every request it gets."""

    async def record(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs} {request.headers.get('Authorization')}")
        return web.json_response({"links": {}, "data": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app
