"""structlog, configured once: JSON lines off a terminal, a renderer for people on one,
and a last processor that scrubs secrets from every rendered line whatever path they took."""

from __future__ import annotations

import asyncio
import atexit
import html
import os
import re
import sys
import time
from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar, Token
from typing import Any, Literal, TextIO
from urllib.parse import quote

import orjson
import structlog

from worker.text import markdown_cell, printable

LogFormat = Literal["json", "console", "auto"]
REDACTED = "[REDACTED]"


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    r"""Each secret as it may appear in a rendered line or a server's echo of it: raw,
    without base64 padding (which also covers `=`, `%3D` and `\u003d` padding), JSON- and
    repr-escaped, with `/` escaped as `\/`, percent-encoded in either hex case, and
    escaped as an HTML page or a Markdown table cell writes it."""
    forms: set[str] = set()
    for secret in secrets:
        for variant in {secret, secret.rstrip("=")}:
            if not variant:
                continue
            encoded = quote(variant, safe="")
            forms |= {variant, orjson.dumps(variant).decode()[1:-1], repr(variant)[1:-1],
                      variant.replace("/", "\\/"), encoded,
                      re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded),
                      html.escape(variant), markdown_cell(variant)}
    # Longest first, so a form containing another is replaced whole.
    return tuple(sorted(forms, key=len, reverse=True))


def scrub(text: str, forms: tuple[str, ...]) -> str:
    """`text` with every form (from `secret_forms`) replaced by [REDACTED], in any case:
    a message may show a value lower-cased (a host name, or a token pasted as one). So is
    each run of text that shows one once a browser or a Markdown viewer decodes it."""
    folded = text.lower()
    for form in forms:
        if form.lower() in folded:
            text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
            folded = text.lower()
    if "&" in text or "\\" in text:
        text = _unmasked(text, tuple({form.lower() for form in forms}))
    return text


# A stretch of text that a browser or a Markdown viewer shows as one: no white space, and
# no unescaped `"`, so that in a JSON line or document it never leaves its string; a
# backslash stays with the character it escapes.
_RUN = re.compile(r'(?:[^\s"\\]|\\\S)+')
# Markdown's backslash escapes: before ASCII punctuation, a backslash shows the mark alone.
_MARKDOWN_ESCAPE = re.compile(r"\\+(?=[!-/:-@\[-`{-~])")


def _unmasked(text: str, folded_forms: tuple[str, ...]) -> str:
    """`text` with every run that holds a character reference (`&#116;`, `&#x74;`,
    `&#X74`, `&lt;`) or a backslash escape (`\\_`), and that shows a form of a secret
    once they are decoded, replaced whole by [REDACTED]. Nothing we write decodes them,
    but a person pasting the text into a browser or a Markdown viewer would read it."""

    def redact(run: re.Match[str]) -> str:
        words = run.group()
        if "&" not in words and "\\" not in words:
            return words
        shown = html.unescape(_MARKDOWN_ESCAPE.sub("", words)).lower()
        return REDACTED if any(form in shown for form in folded_forms) else words

    return _RUN.sub(redact, text)


_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


class Scrubber:
    """`scrub` for many short texts, such as the names in a plan: each is searched for
    the secrets' cores first (see `secret_cores`), in any case, and for their forms only
    when it holds one. Apply it to text from the Space before it is escaped for Markdown,
    HTML or a terminal: escaped, a secret takes a form nobody searches for."""

    __slots__ = ("_cores", "_folded", "_forms")

    def __init__(self, secrets: Iterable[str]) -> None:
        secrets = tuple(secrets)
        self._forms = secret_forms(secrets)
        self._folded = tuple({form.lower() for form in self._forms})
        cores = secret_cores(secrets)
        self._cores = tuple(c.lower() for c in (self._forms if cores is None else cores))

    def __call__(self, text: str) -> str:
        if self._cores:
            folded = text.lower()
            if any(core in folded for core in self._cores):
                return scrub(text, self._forms)
            if "&" in text:  # `&#86;` hides a letter of a core
                return _unmasked(text, self._folded)
        return text


def secret_cores(secrets: Iterable[str]) -> tuple[str, ...] | None:
    """One substring per secret that every one of its `secret_forms` contains: its
    longest run of ASCII letters and digits, which no escaping or encoding there changes.
    None when a secret has no such run (then only the forms themselves can be searched)."""
    cores = []
    for secret in secrets:
        if not secret:  # no forms at all
            continue
        runs = _ALNUM_RUN.findall(secret)
        if not runs:
            return None
        cores.append(max(runs, key=len))
    return tuple(cores)


def redacting(renderer: structlog.types.Processor,
              secrets: Iterable[str]) -> structlog.types.Processor:
    """The renderer, then every secret scrubbed from the finished line, in any case (as
    `scrub` does: a server may echo the token upper-cased, in a field nobody cleaned).
    Scrubbing the rendered text catches a secret however deeply an event nests it. A line
    is searched for each secret's core first (see `secret_cores`), lower-cased: a line
    without any core holds no form of any secret, and nearly every line is such a line,
    so it costs one lower-casing and one substring search per core instead of a
    case-blind search per form (about a dozen per secret). A character reference can
    hide a letter of a core (`&#86;`): a line with an `&` is also searched decoded."""
    secrets = tuple(secrets)
    forms = secret_forms(secrets)
    folded_forms = tuple({form.lower() for form in forms})
    found = secret_cores(secrets)
    cores = _fewest({c.lower() for c in (forms if found is None else found)})

    def render(logger: Any, method: str, event: MutableMapping[str, Any]) -> Any:
        line = renderer(logger, method, event)
        if isinstance(line, bytes):
            # Searched as text: `in` on bytes first tries its operand as an integer, and
            # that failure costs more than decoding the line.
            text = line.decode("utf-8", "surrogateescape")
            folded = text.lower()
            for core in cores:
                if core in folded:
                    return scrub(text, forms).encode("utf-8", "surrogateescape")
            if cores and "&" in text:  # `&#86;` hides a letter of a core
                clean = _unmasked(text, folded_forms)
                return line if clean == text else clean.encode("utf-8", "surrogateescape")
        elif isinstance(line, str):
            folded = line.lower()
            for core in cores:
                if core in folded:
                    return scrub(line, forms)
            if cores and "&" in line:
                return _unmasked(line, folded_forms)
        return line

    return render


def _fewest(cores: set[str]) -> tuple[str, ...]:
    """The cores a line must be searched for: one that holds another is found whenever
    that one is (the header's two base64 forms often share theirs)."""
    return tuple(sorted(c for c in cores if not any(o != c and o in c for o in cores)))


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


# What every line logged in this task (and the tasks it starts) carries: the conference in
# hand, the fleet's target. One variable holding a small mapping: structlog's own
# contextvars cost a context copy per line and four context changes per binding.
_BOUND: ContextVar[dict[str, Any] | None] = ContextVar("rebrand_log_bound", default=None)


class _Bound:
    """`bound`'s block. A class, not a @contextmanager generator: entered once per
    conference, where the generator's machinery cost a few times its work."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._token: Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> None:
        outer = _BOUND.get()
        fields = self._fields
        self._token = _BOUND.set(fields if outer is None else {**outer, **fields})

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _BOUND.reset(self._token)
            self._token = None


def bound(**fields: Any) -> _Bound:
    """Every line logged inside the block (in this task) carries `fields`, unless it
    names them itself."""
    return _Bound(fields)


def _merge_bound(_logger: Any, _method: str,
                 event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    fields = _BOUND.get()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


class _UtcStamp:
    """`timestamp`: the time in UTC as ISO 8601 with a Z, as datetime's isoformat writes
    it (no fraction on a whole second). The date and time of day are formatted once per
    second: a run logs thousands of lines a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _method: str,
                 event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        micros = time.time_ns() // 1000
        second, fraction = divmod(micros, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = (f"{self._prefix}.{fraction:06d}Z" if fraction
                              else f"{self._prefix}Z")
        return event


class _Lost:
    """Whether stdout was lost before the command's end: its reader went away (a closed
    pipe, `| head -1`), or its caller closed it. The run goes on to its end all the same
    (journal, report, exit code); the CLI says once, at the end, where its events are."""

    __slots__ = ("stdout", "told")

    def __init__(self) -> None:
        self.stdout = False
        self.told = False


_LOST = _Lost()


def lose_stdout() -> None:
    """stdout is gone: its caller closed it (see worker.cli.streams), or its reader left."""
    _LOST.stdout = True


def take_lost_stdout() -> bool:
    """True once, when stdout was lost: whoever says so to the person asks here first."""
    if not _LOST.stdout or _LOST.told:
        return False
    _LOST.told = True
    return True


def _abandon(stream: TextIO) -> None:
    """`stream`'s reader went away (EPIPE): write to it no more, and go on. The null
    device takes its descriptor's place (Python's "Note on SIGPIPE"), so what is still
    buffered, each later write and the flush at exit go nowhere instead of failing again
    and tearing the run apart in the middle of a conference."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):  # no descriptor behind it: each write fails on its own
        return
    os.dup2(null, fd)
    os.close(null)
    if fd == 1:
        lose_stdout()


def _send(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        _abandon(stream)


# A turn that logs more lines than this without yielding writes them out as it goes.
_MAX_HELD = 256


class _TurnBuffer:
    """Lines logged in one event-loop turn, written to their stream in one write when the
    turn ends. A line per conference was a system call per conference (stdout is
    unbuffered in the image, PYTHONUNBUFFERED). A line is held no longer than the turn
    that logged it (the loop runs its callbacks before it closes), outside a running loop
    not at all; the one exit that skips the loop's end, a second signal, writes them
    first (worker.cli.signals), and so does the process's exit (atexit). Only a SIGKILL
    within those microseconds can lose one, as it could always land between a
    conference's write and its line. Nothing else writes to stdout while a job's loop
    runs."""

    __slots__ = ("_failure", "_lines", "_stream")

    def __init__(self) -> None:
        self._stream: TextIO | None = None  # whose lines are held, until the turn ends
        self._lines: list[str] = []
        # A write at a turn's end that failed (a full disk under a redirect): raised to
        # the next line's caller, as an unheld write would have been, rather than into the
        # event loop. A pipe whose reader left is no failure of the run (see _abandon).
        self._failure: OSError | ValueError | None = None

    def hold(self, stream: TextIO, line: str) -> None:
        """Write `line` to `stream` when this turn ends, or now outside a loop."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        # Only a line for another stream looks for the loop: asking for it is a getpid
        # system call in CPython, once per line otherwise.
        if self._stream is not stream and not self._start(stream):
            _send(stream, line)
            return
        self._lines.append(line)
        if len(self._lines) >= _MAX_HELD:
            self._write()

    def _start(self, stream: TextIO) -> bool:
        """Hold `stream`'s lines until this loop turn ends; False outside a running loop."""
        self.flush()  # another stream's lines go out first
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._stream = stream
        loop.call_soon(self.flush)
        return True

    def _write(self) -> None:
        lines, self._lines = self._lines, []
        if self._stream is not None and lines:
            _send(self._stream, "".join(lines))

    def flush(self) -> None:
        try:
            self._write()
        except (OSError, ValueError) as exc:
            self._failure = exc
        finally:
            self._stream = None


_TURN = _TurnBuffer()


def flush_held() -> None:
    """Write the lines held for this loop turn now (before exiting without the loop)."""
    _TURN.flush()


class _LineWriter:
    """Writes each rendered line to `stream`, or to whatever `sys.stdout` is at that
    moment (test runners swap it); bytes go straight to its buffer when it has one.
    Flushed at once, so a log collector sees every line even if the process is killed;
    `batched`, a stream that is not a terminal gets the lines of one loop turn together
    (see _TurnBuffer)."""

    def __init__(self, stream: TextIO | None, *, batched: bool = False) -> None:
        self._stream = stream
        self._batched = batched
        self._terminal: tuple[TextIO, bool] | None = None  # (stream, isatty) last seen

    def msg(self, message: str | bytes) -> None:
        out = self._stream or sys.stdout
        if self._batched and not self._is_terminal(out):
            _TURN.hold(out, (message.decode() if isinstance(message, bytes) else message)
                       + "\n")
            return
        _TURN.flush()
        if isinstance(message, bytes):
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                try:
                    out.flush()  # text written to `out` before this line goes first
                    buffer.write(message + b"\n")
                    buffer.flush()
                except BrokenPipeError:
                    _abandon(out)
                return
            message = message.decode()
        _send(out, message + "\n")

    def _is_terminal(self, out: TextIO) -> bool:
        # isatty is a system call: asked once per stream, not once per line.
        if self._terminal is None or self._terminal[0] is not out:
            self._terminal = (out, out.isatty())
        return self._terminal[1]

    info = warning = error = critical = debug = exception = log = msg


def configure_logging(
    fmt: LogFormat = "auto", *, secrets: Iterable[str] = (), stream: TextIO | None = None,
    console: structlog.types.Processor | None = None, batched: bool = False,
) -> Literal["json", "console"]:
    """Configure structlog for the process. Returns the format chosen. `console` renders
    for a person (the CLI's own renderer); without it, structlog's plain console renderer.
    `batched`: lines to a pipe or file are written once per event-loop turn (the CLI's
    jobs; see _TurnBuffer)."""
    out = stream or sys.stdout
    chosen = resolve_format(fmt, out)
    shared: list[structlog.types.Processor] = [
        _merge_bound,
        structlog.processors.add_log_level,
        _UtcStamp(),
    ]
    if chosen == "console":
        # JSON escapes control characters itself; the console renderer would send them.
        shared.append(_printable_values)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if chosen == "json"
        else console or structlog.dev.ConsoleRenderer(colors=False)
    )
    if batched:
        atexit.unregister(flush_held)  # once, however often logging is configured
        atexit.register(flush_held)
    structlog.configure(
        processors=[*shared, redacting(renderer, secrets)],
        logger_factory=lambda *_args: _LineWriter(stream, batched=batched),
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=True,
    )
    return chosen
