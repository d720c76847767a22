"""structlog, configured once: JSON lines off a terminal, the console renderer on one,
and a processor that scrubs secrets from every line whatever path they took."""

from __future__ import annotations

import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import orjson
import structlog

LogFormat = Literal["json", "console", "auto"]
REDACTED = "[REDACTED]"


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, list | tuple):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    return value


def redactor(secrets: Iterable[str]) -> structlog.types.Processor:
    """A processor that replaces every secret in every string of the event."""
    kept = tuple(s for s in secrets if s)

    def redact(
        _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if kept:
            for key, value in event.items():
                event[key] = _scrub(value, kept)
        return event

    return redact


def resolve_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    if fmt != "auto":
        return fmt
    return "console" if stream.isatty() else "json"


def _orjson_dumps(event: Any, **_kw: Any) -> bytes:
    return orjson.dumps(event, default=str)


class _LineWriter:
    """Writes each rendered line to `stream`, or to whatever `sys.stdout` is at that
    moment (test runners swap it); bytes go straight to its buffer when it has one.
    Flushed at once, so a log collector sees every line even if the process is killed."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def msg(self, message: str | bytes) -> None:
        out = self._stream or sys.stdout
        if isinstance(message, bytes):
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                out.flush()
                buffer.write(message + b"\n")
                buffer.flush()
                return
            message = message.decode()
        out.write(message + "\n")
        out.flush()

    info = warning = error = critical = debug = exception = log = msg


def configure_logging(
    fmt: LogFormat = "auto", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> Literal["json", "console"]:
    """Configure structlog for the process. Returns the format chosen."""
    out = stream or sys.stdout
    chosen = resolve_format(fmt, out)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor(secrets),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if chosen == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=lambda *_args: _LineWriter(stream),
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return chosen
