"""Support for tests that drive the real CLI: a sandbox served from a background thread
(the CLI owns its own event loop), and a config file naming it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from anyio.from_thread import start_blocking_portal

from tests.support import BRAND
from worker.sandbox import RunningSandbox, SandboxConfig, serve

SANDBOX_ENV = {"SIGNALWIRE_PROJECT_ID": SandboxConfig().project_id,
               "SIGNALWIRE_API_TOKEN": SandboxConfig().api_token}


@contextmanager
def sandbox_in_thread(**knobs: Any) -> Iterator[RunningSandbox]:
    """A sandbox Space on loopback, served by an event loop in another thread."""
    with start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(serve(SandboxConfig(**knobs))) as running:
        yield running


def write_config(directory: Path, url: str, **extra: Any) -> Path:
    raw: dict[str, Any] = {
        "space": url, "theme": BRAND, "concurrency": 8,
        "retry": {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "retry_after_cap_s": 0.05},
        **extra,
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path
