"""structlog, configured once: JSON lines off a terminal, a renderer for people on one,
and a last processor that scrubs secrets from every rendered line whatever path they took."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO
from urllib.parse import quote

import orjson
import structlog

from worker.text import printable

LogFormat = Literal["json", "console", "auto"]
REDACTED = "[REDACTED]"


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    r"""Each secret as it may appear in a rendered line or a server's echo of it: raw,
    without base64 padding (which also covers `=`, `%3D` and `\u003d` padding), JSON- and
    repr-escaped, with `/` escaped as `\/`, and percent-encoded in either hex case."""
    forms: set[str] = set()
    for secret in secrets:
        for variant in {secret, secret.rstrip("=")}:
            if not variant:
                continue
            encoded = quote(variant, safe="")
            forms |= {variant, orjson.dumps(variant).decode()[1:-1], repr(variant)[1:-1],
                      variant.replace("/", "\\/"), encoded,
                      re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    # Longest first, so a form containing another is replaced whole.
    return tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, forms: tuple[str, ...]) -> str:
    """`text` with every form (from `secret_forms`) replaced by [REDACTED]."""
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


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


class _Escaped:
    """A text value the console renderer shows by repr: escaped once, quoted as it
    quotes text (a str would be repr'd again, or sent raw if it holds no space)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = printable(text)

    def __repr__(self) -> str:
        return f"'{self.text}'" if any(c in self.text for c in " \t='\"") else self.text


def _printable_values(_logger: Any, _method: str,
                      event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every text value with its control characters shown escaped (a name from the Space
    may hold a terminal escape sequence); lists and mappings are shown by repr, which
    escapes them already."""
    for key, value in event.items():
        if isinstance(value, str) and not value.isprintable():
            event[key] = _Escaped(value)
    return event


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
    if chosen == "console":
        # JSON escapes control characters itself; the console renderer would send them.
        shared.append(_printable_values)
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
