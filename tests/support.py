"""Test support, in one place: the brand theme, the sandbox's credentials and environment,
settings and config files naming a sandbox, and the CLI run in a child process or against a
sandbox served from another thread."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import yaml
from aiohttp import web
from anyio.from_thread import start_blocking_portal

from worker.body import echo_mismatches, writable_state
from worker.config import Settings, parse_settings
from worker.credentials import Credentials
from worker.sandbox import RunningSandbox, SandboxConfig, serve
from worker.theme import COLOR_FIELDS

BRAND = {
    "light": {"primary": "#0A84FF", "background": "#FFFFFF", "foreground": "#111827",
              "success": "#16A34A", "negative": "#DC2626"},
    "dark": {"primary": "#0A84FF", "background": "#0B1220", "foreground": "#F9FAFB",
             "success": "#22C55E", "negative": "#EF4444"},
}

SANDBOX_CREDENTIALS = Credentials(SandboxConfig().project_id, SandboxConfig().api_token)
# The environment a CLI needs for the sandbox's credentials (see sandbox_env for a child's).
SANDBOX_ENV = {"SIGNALWIRE_PROJECT_ID": SANDBOX_CREDENTIALS.project_id,
               "SIGNALWIRE_API_TOKEN": SANDBOX_CREDENTIALS.api_token}
REPO = Path(__file__).resolve().parent.parent

SandboxFactory = Callable[..., AbstractAsyncContextManager[RunningSandbox]]


# Retries fast enough for a test; the same attempts as a real run would make.
FAST_RETRY = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "retry_after_cap_s": 0.05,
              "max_attempts": 8}
# For a test that injects faults at tens of percent and expects every conference through:
# there a write fails about a third of its attempts (5xx, dropped answers, the Space's own
# 429s, which come in waves). In 30 runs of test_pipeline's every-fault Space (1,800
# conferences) two took 8 attempts, the most; CI once saw one fail at the 8th.
PATIENT_RETRY = {**FAST_RETRY, "max_attempts": 20}
# Keywords of settings_for that are flags, not config keys.
_FLAGS = frozenset({"backup_dir", "dry_run", "force", "grace_s", "max_failures", "deadline_s",
                    "allow_field", "max_pages"})


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


def write_config(directory: Path, space: str, **extra: Any) -> Path:
    """A config file naming this sandbox, as settings_for would build it; `extra` are
    config keys to add or replace."""
    raw = {"space": space, "theme": BRAND, "concurrency": 8, "retry": FAST_RETRY, **extra}
    path = directory / "rebrand.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def clean_env(**variables: str) -> dict[str, str]:
    """This process's environment without any SIGNALWIRE_ variable, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALWIRE_")}
    return {**env, "PYTHONUNBUFFERED": "1", **variables}


def sandbox_env(**variables: str) -> dict[str, str]:
    """A child process's environment with the sandbox's credentials, plus `variables`."""
    return clean_env(**{**SANDBOX_ENV, **variables})


class Ran:
    """A finished CLI process: exit code, stdout, stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def summary(self) -> dict[str, Any]:
        found = [e for e in self.events() if e["event"] == "run.summary"]
        assert len(found) == 1, self.out
        return found[0]


async def rebrand(*args: str | Path, env: dict[str, str], cwd: Path = REPO) -> Ran:
    """Run the CLI in a child process without blocking the loop the sandbox serves on."""
    process = await anyio.run_process(
        [sys.executable, "-m", "worker", *map(str, args)], env=env, cwd=cwd, check=False
    )
    return Ran(process.returncode, process.stdout.decode(), process.stderr.decode())


@contextmanager
def sandbox_in_thread(**knobs: Any) -> Iterator[RunningSandbox]:
    """A sandbox Space on loopback, served by an event loop in another thread (for tests
    that call the CLI's main(), which owns its own event loop)."""
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(serve(SandboxConfig(**knobs))) as running:
        yield running


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


def not_back(before: Mapping[str, Mapping[str, Any]], now: Mapping[str, Mapping[str, Any]],
             *, omitted_reset: bool = True) -> list[str]:
    """The conferences a restore did not put back, judged by what a PUT can carry: every
    field the pre-image has non-null reads as before (a null display_name as the name).
    A null cannot be sent, so a field null before reads what the Space makes of an
    omitted field; on a Space that resets them (`omitted_reset`), no theme color that
    was null before may still show a value."""
    out = []
    for cid, old in before.items():
        current = now[cid]
        if echo_mismatches(writable_state(old), writable_state(current)) or (omitted_reset and any(
                old.get(f) is None and current.get(f) is not None for f in COLOR_FIELDS)):
            out.append(cid)
    return out
