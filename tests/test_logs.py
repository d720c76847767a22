"""The log lines' plumbing: bound fields, the timestamp, and when lines reach the stream."""

from __future__ import annotations

import errno
import io
import signal
import time
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
import pytest
import structlog
from hypothesis import example, given
from hypothesis import strategies as st

from worker.run.logs import (
    REDACTED,
    Scrubber,
    bound,
    configure_logging,
    redacting,
    scrub,
    secret_cores,
    secret_forms,
)


class _Raw(io.RawIOBase):
    """A file that records each write that reaches it (a pipe or a file, or a terminal)."""

    def __init__(self, tty: bool = False) -> None:
        self.writes: list[bytes] = []
        self.tty = tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.tty

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in b"".join(self.writes).splitlines()]


def _stream(raw: _Raw) -> io.TextIOWrapper:
    # As stdout is in the image (PYTHONUNBUFFERED=1): every write reaches the file at once.
    return io.TextIOWrapper(raw, encoding="utf-8", write_through=True)  # type: ignore[arg-type]


@pytest.fixture
def restore_logging() -> Any:
    yield
    configure_logging("json")


def test_bound_fields_ride_on_each_line_inside_the_block_only(restore_logging: None) -> None:
    raw = _Raw()
    configure_logging("json", stream=_stream(raw))
    log = structlog.get_logger("rebrand")
    with bound(target="eu"):
        with bound(conference_id="c1"):
            log.info("inner")
            log.info("named", conference_id="given")
        log.info("outer")
    log.info("after")
    lines = {line["event"]: line for line in raw.lines()}
    assert (lines["inner"]["target"], lines["inner"]["conference_id"]) == ("eu", "c1")
    assert lines["named"]["conference_id"] == "given"  # the line's own value wins
    assert lines["outer"]["target"] == "eu" and "conference_id" not in lines["outer"]
    assert "target" not in lines["after"]


def test_bound_fields_stay_in_their_own_task(restore_logging: None) -> None:
    raw = _Raw()
    configure_logging("json", stream=_stream(raw))
    log = structlog.get_logger("rebrand")

    async def one(cid: str, wait: float) -> None:
        with bound(conference_id=cid):
            await anyio.sleep(wait)
            log.info("done", task=cid)

    async def both() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, "a", 0.02)
            tg.start_soon(one, "b", 0.0)

    anyio.run(both)
    assert {line["task"]: line["conference_id"] for line in raw.lines()} == {"a": "a", "b": "b"}


@pytest.mark.parametrize("nanoseconds", [1_764_867_607_000_000_000, 1_764_867_607_123_456_789])
def test_the_timestamp_is_iso_utc_as_datetime_writes_it(
        restore_logging: None, monkeypatch: pytest.MonkeyPatch, nanoseconds: int) -> None:
    raw = _Raw()
    configure_logging("json", stream=_stream(raw))
    monkeypatch.setattr(time, "time_ns", lambda: nanoseconds)
    structlog.get_logger("rebrand").info("stamped")
    moment = datetime.fromtimestamp(nanoseconds // 1000 / 1e6, UTC)
    expected = moment.isoformat().replace("+00:00", "Z")
    assert raw.lines()[0]["timestamp"] == expected
    # A later second is formatted afresh, not taken from the last line's.
    monkeypatch.setattr(time, "time_ns", lambda: nanoseconds + 61_000_000_000)
    structlog.get_logger("rebrand").info("later")
    assert raw.lines()[1]["timestamp"][:19] == (
        datetime.fromtimestamp(nanoseconds // 1_000_000_000 + 61, UTC).isoformat()[:19])


def test_batched_lines_of_one_loop_turn_reach_a_pipe_in_one_write_when_it_ends(
        restore_logging: None) -> None:
    raw = _Raw()
    configure_logging("json", stream=_stream(raw), batched=True)
    log = structlog.get_logger("rebrand")
    seen: list[int] = []

    async def job() -> None:
        for n in range(3):
            log.info("line", n=n)
        seen.append(len(raw.writes))  # still in the turn that logged them
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        seen.append(len(raw.writes))

    anyio.run(job)
    assert seen == [0, 1]
    assert [line["n"] for line in raw.lines()] == [0, 1, 2]


@pytest.mark.parametrize(("tty", "batched", "in_loop"), [
    (True, True, True), (False, True, False), (False, False, True)])
def test_lines_go_out_at_once_to_a_terminal_outside_a_loop_and_unbatched(
        restore_logging: None, tty: bool, batched: bool, in_loop: bool) -> None:
    raw = _Raw(tty=tty)
    configure_logging("json", stream=_stream(raw), batched=batched)
    log = structlog.get_logger("rebrand")
    counts: list[int] = []

    def two() -> None:
        log.info("one")
        counts.append(len(raw.writes))
        log.info("two")
        counts.append(len(raw.writes))

    async def in_a_loop() -> None:
        two()

    if in_loop:
        anyio.run(in_a_loop)
    else:
        two()
    assert counts == [1, 2]


def test_a_turn_that_logs_without_end_writes_its_lines_as_it_goes(
        restore_logging: None) -> None:
    raw = _Raw()
    configure_logging("json", stream=_stream(raw), batched=True)
    log = structlog.get_logger("rebrand")

    async def long_turn() -> None:
        for n in range(1000):
            log.info("line", n=n)
        assert 0 < len(raw.writes) <= 1000 // 256  # written in bounded batches meanwhile

    anyio.run(long_turn)
    assert [line["n"] for line in raw.lines()] == list(range(1000))


def test_a_second_signal_writes_the_held_lines_before_it_exits(
        restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.cli import signals
    from worker.run.stopping import Stop

    raw = _Raw()
    configure_logging("json", stream=_stream(raw), batched=True)
    exits: list[int] = []
    monkeypatch.setattr(signals.os, "_exit", exits.append)

    async def job() -> None:
        structlog.get_logger("rebrand").info("conference.updated", conference_id="c1")
        stop = Stop()
        signals._on_signal(signal.SIGTERM, stop)
        signals._on_signal(signal.SIGTERM, stop)  # the second: out at once
        assert exits and [line["event"] for line in raw.lines()] == [
            "conference.updated", "run.stopping", "run.killed"]

    anyio.run(job)


def test_a_write_that_fails_at_a_turns_end_is_raised_to_the_next_lines_caller(
        restore_logging: None) -> None:
    """A full disk under a redirect: the next log call fails as an unheld write would
    have, not the event loop's callback (which would only print and go on). (A pipe whose
    reader left ends only the writing: tests/test_output_failures.py.)"""

    class _Full(_Raw):
        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    configure_logging("json", stream=_stream(_Full()), batched=True)
    log = structlog.get_logger("rebrand")

    async def job() -> None:
        log.info("first")
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        with pytest.raises(OSError, match="No space left"):
            log.info("second")

    anyio.run(job)


@given(st.text(min_size=1, max_size=24))
@example("=")  # padding alone: forms of its own, no core (hypothesis found it)
def test_every_form_of_a_secret_holds_its_core(secret: str) -> None:
    """The renderer skips a line with no secret's core: sound only if no form can be
    there without its core."""
    cores = secret_cores([secret])
    if cores is None:  # no letter or digit: the forms themselves are searched
        return
    for form in secret_forms([secret]):
        assert any(core in form for core in cores), (secret, form)


@pytest.mark.parametrize("secret", ["PT0a/b+c=d==", "tok\"en\u00e9/=", "%2F-_~", "/+=!"])
def test_the_renderer_scrubs_a_line_as_a_search_for_every_form_does(secret: str) -> None:
    """Looking for the cores first changes no line: each comes out as `scrub`, which
    searches for every form of every secret, longest first, would leave it."""
    secrets = ["proj-1234", secret]
    every = secret_forms(secrets)
    for as_bytes in (True, False):
        def render(_logger: Any, _method: str, event: Any, as_bytes: bool = as_bytes) -> Any:
            line = orjson.dumps(event)
            return line if as_bytes else line.decode()

        redact = redacting(render, secrets)
        for form in every:
            for event in ({"event": "x", "said": f"<{form}>"}, {"event": form},
                          {"event": "conference.updated", "name": "room-1"},
                          {"event": "x", "said": "".join(f"&#{ord(c)};" for c in form)},
                          {"event": "x", "said": f"Sales & {form.upper()}"}):
                expected = scrub(orjson.dumps(event).decode(), every)
                line = redact(None, "info", dict(event))
                assert (line.decode() if as_bytes else line) == expected, (form, event)


@pytest.mark.parametrize("cased", [str.upper, str.lower, str.swapcase])
@pytest.mark.parametrize("as_bytes", [True, False])
def test_the_renderer_scrubs_a_secret_in_any_case(cased: Any, as_bytes: bool) -> None:
    """A server may echo the token upper-cased, into a field nobody cleaned: the line's
    last scrub ignores case, as `scrub` does."""
    secrets = ["proj-1234", "PT0a/b+c=d=="]

    def render(_logger: Any, _method: str, event: Any) -> Any:
        line = orjson.dumps(event)
        return line if as_bytes else line.decode()

    redact = redacting(render, secrets)
    line = redact(None, "info", {"event": "x", "said": f"<{cased('PT0a/b+c=d==')}>"})
    text = line.decode() if as_bytes else line
    assert orjson.loads(text)["said"] == f"<{REDACTED}>"
    assert redact(None, "info", {"event": "room-1"}) == render(None, "info", {"event": "room-1"})


@pytest.mark.parametrize("text", [
    "Sales & Marketing \\_draft\\_", "&#80;&#84;0a (part of it)", "PT0a\\/b but no more",
    "&amp; &lt;b&gt; C:\\rooms\\PT0a", "&#x50;&#X54;0A/B+C"])
def test_ordinary_text_with_references_or_escapes_is_left_alone(text: str) -> None:
    """Only a run that shows a whole form of a secret once decoded is redacted: a
    reference, an escape or a piece of the secret alone is ordinary text."""
    secrets = ["proj-1234", "PT0a/b+c=d=="]
    assert scrub(text, secret_forms(secrets)) == text
    assert Scrubber(secrets)(text) == text


@pytest.mark.parametrize("written", [
    "&#80;&#84;&#48;&#97;&#47;&#98;&#43;&#99;&#61;&#100;", "&#x50;&#X54;0a&#x2F;b&#43;c=D",
    "PT0a\\/b\\+c\\=d", "PT0a&sol;b&plus;c&equals;d"])
def test_a_secret_a_browser_or_markdown_viewer_would_decode_is_redacted(written: str) -> None:
    secrets = ["proj-1234", "PT0a/b+c=d=="]
    assert scrub(f"token {written}.", secret_forms(secrets)) == f"token {REDACTED}"
    assert Scrubber(secrets)(f"token {written}") == f"token {REDACTED}"
