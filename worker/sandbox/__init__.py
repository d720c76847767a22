"""The sandbox Space: a real aiohttp server on loopback that simulates SignalWire's
Video Conferences REST API, as the test fixture, demo and benchmark server of `rebrand`.
"""

from __future__ import annotations

from worker.sandbox.app import create_app
from worker.sandbox.config import DEFAULT_API_TOKEN, DEFAULT_PROJECT_ID, FaultConfig, SandboxConfig
from worker.sandbox.data import ON_THEME
from worker.sandbox.server import RunningSandbox, main_serve, serve
from worker.sandbox.space import Space

__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_PROJECT_ID",
    "ON_THEME",
    "FaultConfig",
    "RunningSandbox",
    "SandboxConfig",
    "Space",
    "create_app",
    "main_serve",
    "serve",
]
