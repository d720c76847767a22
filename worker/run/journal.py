"""The backup journal: every conference's pre-image, on disk before its PUT is sent.

JSON Lines. A header line (format, run id, Space, theme, tool version, start time; never
credentials), then per conference a `pre_image` record (the full GET body), synced to disk
before the PUT goes out, and a `written` record with the `updated_at` the PUT returned.
Syncs are shared: a consumer whose record was written before another consumer's fsync
started rides on that fsync, so many writers cost one disk flush, not one each. A paced
writer stages its pre-image first and asks for durability only once its pacing slot has
come, so the writers queued for slots share one flush too.
A torn last line (a crash mid-write) is tolerated on read.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import uuid
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import anyio
import anyio.to_thread
import orjson

from worker.configfile import open_input
from worker.errors import ConfigError, JournalError

FORMAT_VERSION = 1


def new_run_id(now: datetime) -> str:
    """Sortable and unique: `20261122T014309Z-3f9a1c`."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class Header:
    run_id: str
    space: str
    command: str
    theme: Mapping[str, Any] | None
    tool_version: str
    started_at: str
    format: int = FORMAT_VERSION
    # A run with rules: each rule's theme by name (and `theme` is None).
    rules: Mapping[str, Any] | None = None
    # A fleet's run: the target it was for, so a restore finds that target's credentials.
    target: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {
            "type": "header",
            "format": self.format,
            "run_id": self.run_id,
            "space": self.space,
            "command": self.command,
            "theme": self.theme,
            "tool_version": self.tool_version,
            "started_at": self.started_at,
            **({"rules": self.rules} if self.rules is not None else {}),
            **({"target": self.target} if self.target is not None else {}),
        }


def _datasync(fd: int) -> None:
    # fdatasync makes the appended bytes and the file's new size durable, all a reader
    # needs after a crash, and skips the inode's timestamps: about half fsync's cost here.
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


class JournalWriter:
    """Appends records and makes each pre-image durable before its write."""

    def __init__(self, path: Path, header: Header, *,
                 datasync: Callable[[int], None] = _datasync) -> None:
        self.path = path
        # Injected so a test can observe that no PUT leaves before its sync returned.
        self._datasync = datasync
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # "x": never append to, or overwrite, another run's journal.
            self._file: IO[bytes] = path.open("xb")
        except OSError as exc:
            raise ConfigError(
                f"--backup-dir: cannot create the journal {path} ({exc.strerror}); "
                "point --backup-dir at a writable directory"
            ) from exc
        self._fd = self._file.fileno()
        # Set while a sync runs: writers wait for it rather than queue on a lock, then
        # look again (it may have covered them).
        self._syncing: anyio.Event | None = None
        self._written = 0  # records handed to the file
        self.pre_images = 0  # none when the run sent no PUT: nothing to restore
        self._synced = 0  # records known to be on disk
        self.syncs = 0
        # Once a write to the journal fails, no PUT may go out (its pre-image could not be
        # kept): every later record raises this, and so does close().
        self._failure: JournalError | None = None
        try:
            self._append({**header.as_record()})
            self._file.flush()
            os.fsync(self._fd)
        except (OSError, JournalError) as exc:
            # No write was sent, so the file holds nothing to undo: left behind (empty,
            # or a torn header) it would be the newest journal, the one `--latest` means.
            self._discard()
            raise ConfigError(
                f"--backup-dir: cannot write the journal {path} ({exc}); nothing was sent "
                "and the unfinished journal was removed. Point --backup-dir at a writable "
                "directory with free space"
            ) from exc

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)

    def _failed(self, exc: OSError) -> JournalError:
        if self._failure is None:
            self._failure = JournalError(
                f"journal {self.path}: cannot be written ({exc.strerror or exc}); the run "
                "stopped before its next write. Free space (or make it writable) and run "
                "again: what the journal holds so far can still be restored")
        return self._failure

    def _append(self, record: Mapping[str, Any]) -> int:
        if self._failure is not None:
            raise self._failure
        try:
            self._file.write(orjson.dumps(record) + b"\n")
        except OSError as exc:
            raise self._failed(exc) from exc
        self._written += 1
        return self._written

    async def before_write(self, conference: Mapping[str, Any], rule: str | None = None) -> None:
        await self.durable(self.stage(conference, rule))

    def stage(self, conference: Mapping[str, Any], rule: str | None = None,
              sent: Mapping[str, Any] | None = None) -> int:
        """Append a pre-image without waiting for the disk; `durable(seq)` must return
        before its PUT is sent."""
        # The rule is kept so a restore knows which theme this run wrote here; the body,
        # when no theme tells it (a restore's), so a restore of this run knows our write.
        record: dict[str, Any] = {"type": "pre_image", "conference": conference}
        if rule is not None:
            record["rule"] = rule
        if sent is not None:
            record["sent"] = sent
        seq = self._append(record)
        self.pre_images += 1
        return seq

    async def durable(self, seq: int) -> None:
        """Return once record `seq` is on disk: at once if a sync already covered it."""
        while self._synced < seq:
            syncing = self._syncing
            if syncing is None:
                await self._sync()
            else:
                await syncing.wait()

    async def after_write(self, conference_id: str, updated_at: str | None, *,
                          applied: bool = True) -> bool:
        """Record a PUT's answer: `applied` when the conference counts as updated (the
        summary's `updated` is the number of these). False when it could not be kept."""
        # Not synced on its own: it rides on the next pre-image's sync or on close().
        # Without it, restore falls back to comparing contents (see decide.Restore).
        # Handed to the file now, not left in our buffer: a full disk is then learnt for
        # this record, whose conference must not count as `updated` without it, instead
        # of at a later flush that tears it. If it cannot be kept, the write itself still
        # happened: the next pre-image, or close(), stops the run.
        try:
            self._append({"type": "written", "id": conference_id, "updated_at": updated_at,
                          "applied": applied})
            self._file.flush()
        except JournalError:
            return False
        except OSError as exc:
            self._failed(exc)
            return False
        return True

    async def _sync(self) -> None:
        """Sync every record written so far (one sync at a time: see `durable`)."""
        if self._failure is not None:
            raise self._failure  # this pre-image may not be whole on disk
        self._syncing = done = anyio.Event()
        try:
            upto = self._written
            try:
                self._file.flush()
                await anyio.to_thread.run_sync(self._datasync, self._fd)
            except OSError as exc:
                raise self._failed(exc) from exc
            self.syncs += 1
            self._synced = upto
        finally:
            self._syncing = None
            done.set()

    def close(self) -> None:
        """Flush, sync and close. Raises JournalError if any record could not be kept."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._fd)
        except OSError as exc:
            self._failed(exc)
        finally:
            try:
                self._file.close()
            except OSError as exc:
                self._failed(exc)
        if self._failure is not None:
            raise self._failure


@dataclass(frozen=True, slots=True)
class JournalContents:
    """A journal read once: its header and what our writes returned. The pre-images stay
    on disk and are streamed by `pre_images()`, so a journal of any size fits in memory."""

    path: Path
    header: dict[str, Any]
    # Conference id -> the updated_at our PUT returned (None: no answer was recorded).
    written_at: dict[str, str | None]
    count: int
    # Records lost to a torn last line (a crash mid-append): 0 or 1, and line says where.
    dropped: int = 0
    torn_line: int | None = None
    # A run with rules: conference id -> the rule that wrote it (its first pre-image's).
    rule_of: dict[str, str] = field(default_factory=dict)
    # A restore's journal: conference id -> the body of its PUT, for the PUTs whose
    # answer was never recorded (the others are told by their updated_at). So only the
    # writes in flight at a crash are held, not the journal's bodies.
    unanswered: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def torn_tail(self) -> bool:
        return self.dropped > 0

    def pre_images(self) -> Iterator[dict[str, Any]]:
        """Each conference's first pre-image (the state before that run), in order."""
        return pre_images(self.path)


def _decompressed(path: Path, raw: IO[bytes]) -> IO[bytes]:
    """A journal compressed once closed (`compress`) reads the same, through gzip. Closing
    the GzipFile leaves `raw` open: its caller closes both."""
    if path.name.endswith(".gz"):
        return cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


# A journal line holds one pre-image: one conference's answer (a few KB; the spec bounds
# its text fields to a few thousand characters), and a little of our own around it.
MAX_LINE_BYTES = 16 << 20


def _records(path: Path) -> Generator[tuple[int, dict[str, Any] | None, bool], None, None]:
    """(line number, record or None if unreadable, is_last_line)."""
    try:
        # A pipe is refused: opening one would wait for a writer (see `open_input`).
        raw = open_input(path, f"journal {path}:")
    except OSError as exc:
        raise ConfigError(f"journal {path}: cannot read it ({exc.strerror})") from exc
    try:
        with raw, _decompressed(path, raw) as handle:
            previous: bytes | None = None
            number = 0
            # Bounded reads: a longer line (`/dev/zero`, a binary file) is not a journal,
            # and is refused without holding it.
            while line := handle.readline(MAX_LINE_BYTES + 1):
                if len(line) > MAX_LINE_BYTES:
                    raise ConfigError(f"journal {path}: line {number + 1} is longer than "
                                      f"{MAX_LINE_BYTES >> 20} MiB; this is not a rebrand "
                                      "journal")
                if previous is not None:
                    yield number, _parse(previous), False
                previous = line
                number += 1
            if previous is not None:
                yield number, _parse(previous), True
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ConfigError(f"journal {path}: the compressed file is damaged ({exc})") from exc


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def read_header(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A journal's header, read from its first line alone; or None and why there is no
    whole one (empty, torn, not a header). A run syncs its header before its first PUT,
    so a journal without one has no write behind it. A header of another format, or a
    file that cannot be read, is an error: it is a journal, just not one to pass over."""
    with contextlib.closing(_records(path)) as records:
        for _number, record, _last in records:
            if record is None:
                return None, "its first line is torn (not whole JSON): no header was written"
            if record.get("type") != "header":
                return None, "its first line is not a rebrand journal header"
            if record.get("format") != FORMAT_VERSION:
                raise ConfigError(f"journal {path}: its header is format "
                                  f"{record.get('format')!r}, not {FORMAT_VERSION}; restore it "
                                  "with the rebrand version that wrote it")
            return record, ""
    return None, "it is empty"


def read_journal(path: Path) -> JournalContents:
    """Scan a journal: its header and what our writes returned. Pre-images are streamed
    separately by `pre_images()` so a journal of any size fits in memory."""
    header: dict[str, Any] | None = None
    written_at: dict[str, str | None] = {}
    rule_of: dict[str, str] = {}
    unanswered: dict[str, dict[str, Any]] = {}
    count = 0
    torn_line: int | None = None
    for number, record, last in _records(path):
        if record is None:
            if last:
                torn_line = number  # a crash mid-append: everything before it is whole
                continue
            raise ConfigError(f"journal {path}: line {number} is not valid JSON; "
                              "the journal is damaged beyond its last line")
        kind = record.get("type")
        if number == 1:
            if kind != "header" or record.get("format") != FORMAT_VERSION:
                raise ConfigError(f"journal {path}: no rebrand journal header "
                                  f"(format {FORMAT_VERSION}) on its first line")
            header = record
        elif kind == "pre_image":
            conference = record.get("conference")
            if isinstance(conference, dict) and isinstance(conference.get("id"), str):
                written_at.setdefault(conference["id"], None)
                rule = record.get("rule")
                if isinstance(rule, str):
                    rule_of.setdefault(conference["id"], rule)
                sent = record.get("sent")
                if isinstance(sent, dict) and written_at[conference["id"]] is None:
                    unanswered.setdefault(conference["id"], sent)
                count += 1
        elif kind == "written" and isinstance(record.get("id"), str):
            value = record.get("updated_at")
            written_at[record["id"]] = value if isinstance(value, str) else None
            if written_at[record["id"]] is not None:
                unanswered.pop(record["id"], None)
    if header is None:
        raise ConfigError(f"journal {path}: no readable header line; this is not a whole "
                          "rebrand journal (or it is empty)")
    return JournalContents(path, header, written_at, count,
                           dropped=int(torn_line is not None), torn_line=torn_line,
                           rule_of=rule_of, unanswered=unanswered)


def pre_images(path: Path) -> Iterator[dict[str, Any]]:
    """Each conference's first pre-image in the journal (the state before this run)."""
    seen: set[str] = set()
    for _number, record, _last in _records(path):
        if record is None or record.get("type") != "pre_image":
            continue
        conference = record.get("conference")
        if isinstance(conference, dict):
            cid = conference.get("id")
            if isinstance(cid, str) and cid not in seen:
                seen.add(cid)
                yield conference


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")


def compress(path: Path) -> Path:
    """gzip a closed journal beside itself and remove the plain one; restore reads both.
    Pre-images are repetitive JSON: 6.8 times smaller at gzip's default level, for about
    13 ms of CPU per MB (measured on a sandbox run's journal). The plain file goes only
    once the compressed one is on disk under its final name."""
    target = path.with_name(path.name + ".gz")
    partial = path.with_name(path.name + ".gz.partial")
    with path.open("rb") as plain, partial.open("wb") as raw:
        with gzip.GzipFile(filename=path.name, mode="wb", fileobj=raw, mtime=0) as packed:
            shutil.copyfileobj(plain, packed, 1 << 20)
        raw.flush()
        os.fsync(raw.fileno())
    # Keep the plain file's times: retention orders runs of the same second by them.
    written = path.stat()
    os.utime(partial, ns=(written.st_atime_ns, written.st_mtime_ns))
    os.replace(partial, target)
    path.unlink()
    return target
