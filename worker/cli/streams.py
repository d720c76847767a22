"""The standard streams as a caller may hand them over: closed (`<&-`, `>&-`, `2>&-`), or
in an encoding that cannot show every character (`LC_ALL=C` without UTF-8 mode, a Latin-1
terminal).

Python leaves sys.stdin, sys.stdout or sys.stderr None when its descriptor is closed,
and the next file opened takes that descriptor: a journal opened as descriptor 1 would
also receive whatever is written to stdout. So each closed one is opened on the null
device first, as daemons do: a closed stdin reads as empty and is no terminal (no
question is asked, as in CI); a closed stdout or stderr takes what is written and keeps
it nowhere. A character stdout or stderr cannot encode (a conference named 会议室 on an
ASCII terminal) is written as its escape, `\\u4f1a`, as control characters are: Python
would raise UnicodeEncodeError mid-table, or mid-run from a log line. Standard library
only: the console script calls this before the CLI loads.
"""

from __future__ import annotations

import codecs
import io
import os
import sys

_NAMES = ("stdin", "stdout", "stderr")  # by descriptor
# The standard streams the caller closed: those `reopen_closed` put on the null device.
CLOSED: set[str] = set()


def reopen_closed() -> None:
    """Put each closed standard stream on the null device, and remember it in CLOSED."""
    for fd, name in enumerate(_NAMES):
        if getattr(sys, name) is None:
            setattr(sys, name, os.fdopen(_null_at(fd), "r" if fd == 0 else "w",
                                         encoding="utf-8"))
            CLOSED.add(name)


def _null_at(fd: int) -> int:
    """A descriptor open on the null device: `fd` itself when it is free."""
    null = os.open(os.devnull, os.O_RDWR)
    if null == fd or not _free(fd):
        return null  # something else holds `fd`: leave it alone
    os.dup2(null, fd)
    os.close(null)
    return fd


def _free(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


_ESCAPE_UNENCODABLE = "rebrand-escape"


def _escape_unencodable(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Bytes smuggled in as lone surrogates (undecodable bytes of a path read under the
    same locale) go out as those bytes, as surrogateescape does; anything else that the
    encoding lacks is written as its backslash escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    if all("\udc80" <= char <= "\udcff" for char in bad):
        return bytes(ord(char) - 0xDC00 for char in bad), exc.end
    return codecs.backslashreplace_errors(exc)


def escape_unencodable() -> None:
    """stdout and stderr write what their encoding cannot show as escapes, never fail."""
    try:
        codecs.lookup_error(_ESCAPE_UNENCODABLE)
    except LookupError:
        codecs.register_error(_ESCAPE_UNENCODABLE, _escape_unencodable)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper) and stream.errors != _ESCAPE_UNENCODABLE:
            stream.reconfigure(errors=_ESCAPE_UNENCODABLE)
