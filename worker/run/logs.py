"""structlog, configured once: JSON lines off a terminal, a renderer for people on one,
and a last processor that scrubs secrets from every rendered line whatever path they took."""

from __future__ import annotations

import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import orjson
import structlog

LogFormat = Literal["json", "console", "auto"]
REDACTED = "[REDACTED]"


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret as it may appear in a rendered line: raw, JSON-escaped, repr-escaped."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= {secret, orjson.dumps(secret).decode()[1:-1], repr(secret)[1:-1]}
    # Longest first, so a form containing another is replaced whole.
    return tuple(sorted(forms, key=len, reverse=True))


def redacting(renderer: structlog.types.Processor,
              secrets: Iterable[str]) -> structlog.types.Processor:
    """The renderer, then every secret scrubbed from the finished line. Scrubbing the
    rendered text catches a secret however deeply an event nests it, at the cost of one
    substring search per secret per line."""
    text_forms = secret_forms(secrets)
    byte_forms = tuple(f.encode() for f in text_forms)
    redacted = REDACTED.encode()

    def render(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        line = renderer(logger, method, event)
        if isinstance(line, bytes):
            for form in byte_forms:
                if form in line:
                    line = line.replace(form, redacted)
        elif isinstance(line, str):
            for text in text_forms:
                if text in line:
                    line = line.replace(text, REDACTED)
        return line

    return render


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
    fmt: LogFormat = "auto", *, secrets: Iterable[str] = (), stream: TextIO | None = None,
    console: structlog.types.Processor | None = None,
) -> Literal["json", "console"]:
    """Configure structlog for the process. Returns the format chosen. `console` renders
    for a person (the CLI's own renderer); without it, structlog's plain console renderer."""
    out = stream or sys.stdout
    chosen = resolve_format(fmt, out)
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if chosen == "json"
        else console or structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, redacting(renderer, secrets)],
        logger_factory=lambda *_args: _LineWriter(stream),
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return chosen
