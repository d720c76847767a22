"""rebrand: re-theme every Video Conference in a SignalWire Space, safely and fast."""

from __future__ import annotations

__version__ = "0.1.0"

from worker.config import Credentials, Settings, load_credentials, load_settings
from worker.errors import (
    AbortError,
    ApiError,
    AuthError,
    ConfigError,
    ExitCode,
    RebrandError,
    UnsafeLinkError,
)
from worker.job import JobOptions, JobResult, restore_job, run_job
from worker.outcome import Kind, Outcome, Summary
from worker.theme import Theme, parse_theme

__all__ = [
    "AbortError",
    "ApiError",
    "AuthError",
    "ConfigError",
    "Credentials",
    "ExitCode",
    "JobOptions",
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
