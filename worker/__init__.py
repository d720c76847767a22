"""rebrand: re-theme every Video Conference in a SignalWire Space, safely and fast.

The package is layered (see README, "How it is built"):

    worker.cli      the command line: flags, terminal, signals, metrics files
    worker.run      one run's I/O: the HTTP client, producer, consumers, journal, reporter
    worker.*        pure rules and values: config, theme, select, shard, body, decide, retry

Importing `worker` loads none of them: the names below are resolved on first use, so
`import worker.theme` costs only the theme (and no HTTP stack).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from worker.version import __version__

if TYPE_CHECKING:
    from worker.config import Settings, load_settings
    from worker.credentials import Credentials, load_credentials
    from worker.errors import (
        AbortError,
        ApiError,
        AuthError,
        ConfigError,
        ExitCode,
        RebrandError,
        UnsafeLinkError,
    )
    from worker.outcome import Kind, Outcome, Summary
    from worker.run.job import JobResult, restore_job, run_job
    from worker.theme import Theme, parse_theme

_HOMES = {
    "worker.config": ("Settings", "load_settings"),
    "worker.credentials": ("Credentials", "load_credentials"),
    "worker.errors": ("AbortError", "ApiError", "AuthError", "ConfigError", "ExitCode",
                      "RebrandError", "UnsafeLinkError"),
    "worker.outcome": ("Kind", "Outcome", "Summary"),
    "worker.run.job": ("JobResult", "restore_job", "run_job"),
    "worker.theme": ("Theme", "parse_theme"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AbortError",
    "ApiError",
    "AuthError",
    "ConfigError",
    "Credentials",
    "ExitCode",
    "JobResult",
    "Kind",
    "Outcome",
    "RebrandError",
    "Settings",
    "Summary",
    "Theme",
    "UnsafeLinkError",
    "__version__",
    "load_credentials",
    "load_settings",
    "parse_theme",
    "restore_job",
    "run_job",
]


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
