"""The sandbox Space: a real aiohttp server on loopback that simulates SignalWire's
Video Conferences REST API, as the test fixture, demo and benchmark server of `rebrand`.

Its server half (aiohttp's web module, openapi-core) is loaded on first use, not on
import: `rebrand run` imports this package for the `sandbox` subcommand's flags only, and
should not pay ~30 MB and a quarter second for a server it never starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from worker.sandbox.config import DEFAULT_API_TOKEN, DEFAULT_PROJECT_ID, FaultConfig, SandboxConfig

if TYPE_CHECKING:
    from worker.sandbox.app import create_app
    from worker.sandbox.data import ON_THEME
    from worker.sandbox.server import RunningSandbox, main_serve, serve, serve_fleet
    from worker.sandbox.space import SpaceState

_LAZY = {
    "ON_THEME": "worker.sandbox.data",
    "create_app": "worker.sandbox.app",
    "RunningSandbox": "worker.sandbox.server",
    "main_serve": "worker.sandbox.server",
    "serve": "worker.sandbox.server",
    "serve_fleet": "worker.sandbox.server",
    "SpaceState": "worker.sandbox.space",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'worker.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_PROJECT_ID",
    "ON_THEME",
    "FaultConfig",
    "RunningSandbox",
    "SandboxConfig",
    "SpaceState",
    "create_app",
    "main_serve",
    "serve",
    "serve_fleet",
]
