"""The standard streams as a caller may hand them over: closed (`<&-`, `>&-`, `2>&-`).

Python leaves sys.stdin, sys.stdout or sys.stderr None when its descriptor is closed,
and the next file opened takes that descriptor: a journal opened as descriptor 1 would
also receive whatever is written to stdout. So each closed one is opened on the null
device first, as daemons do: a closed stdin reads as empty and is no terminal (no
question is asked, as in CI); a closed stdout or stderr takes what is written and keeps
it nowhere. Standard library only: the console script calls this before the CLI loads.
"""

from __future__ import annotations

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
