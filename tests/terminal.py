"""Run the CLI in a subprocess as a person at a terminal would: on a pseudo-terminal."""

from __future__ import annotations

import fcntl
import math
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TerminalRun:
    code: int
    output: str  # everything the terminal showed: stdout, stderr and the echoed answer
    stdout: bytes = b""  # with `stdout_pipe`: what went to the pipe instead


COLUMNS = 120
SCREEN_ROWS = 24  # a screenful, as a terminal opens
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_CLEAR = "\r\x1b[2K"


def color_sequences(text: str) -> list[str]:
    return _SGR.findall(text)


def screen_lines(output: str) -> list[str]:
    """What stays on the screen once the progress bar is gone: the output without each
    drawing of the bar (which wipes itself before every other line), colors removed."""
    text = output.replace("\r\n", "\n")
    first, *rest = text.split(_CLEAR)
    # A drawing of the bar is a segment with no newline; anything else is a line kept.
    kept = first + "".join(segment for segment in rest if "\n" in segment)
    return _SGR.sub("", kept).rstrip("\n").split("\n")


def rows(lines: list[str]) -> int:
    """How many terminal rows the lines take, long ones wrapped at COLUMNS."""
    return sum(max(1, math.ceil(len(line) / COLUMNS)) for line in lines)


def _window(size: tuple[int, int] | None) -> tuple[int, int, dict[str, str]]:
    """A pty (master, slave) and the environment's COLUMNS: a window of `size` (columns,
    rows) as a terminal sets it, or no size and COLUMNS=120."""
    master, slave = pty.openpty()
    if size is None:
        return master, slave, {"COLUMNS": str(COLUMNS)}
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    return master, slave, {}


def _press(master: int, keys: bytes | tuple[int, int]) -> None:
    """Type `keys`, or resize the window to (columns, rows) as a person dragging it does:
    the kernel sends the terminal's foreground process SIGWINCH."""
    if isinstance(keys, bytes):
        os.write(master, keys)
    else:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", keys[1], keys[0], 0, 0))


def _take_terminal() -> None:
    """In the child: a session of its own, with its stdin (the pty) as the controlling
    terminal, so the line discipline turns Ctrl-C into SIGINT for it."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def as_seen(line: str) -> str:
    """A line as the terminal leaves it: colors gone, each carriage return moving back to
    its start, what follows overwriting what was there (`^C` then `\\rstopping` shows
    `stopping`), and `ESC[2K` erasing the whole line (the bar wiping itself)."""
    cells: list[str] = []
    column = 0
    for part in re.split(r"(\r|\x1b\[[0-9;]*[A-Za-z])", _SGR.sub("", line)):
        if part == "\r":
            column = 0
        elif part == _CLEAR[1:]:
            cells = [" "] * len(cells)
        elif not part.startswith("\x1b"):
            cells[column:column + len(part)] = part
            column += len(part)
    return "".join(cells).rstrip()


def _drain(proc: subprocess.Popen[bytes], into: list[bytes]) -> threading.Thread | None:
    """Read a piped stdout beside the pty, so a full pipe never stalls the child."""
    out = proc.stdout
    if out is None:
        return None

    def read() -> None:
        with out:
            into.append(out.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def run_on_terminal(args: list[str], env: dict[str, str], *, answer: str | None = None,
                    prompt: str = "Re-theme them now?", timeout_s: float = 60.0,
                    stdin_tty: bool = True, program: list[str] | None = None,
                    cwd: Path | None = None, keys: bytes | None = None,
                    size: tuple[int, int] | None = None,
                    stdout_pipe: bool = False, stderr_to: Path | None = None,
                    more_keys: tuple[tuple[str, bytes | tuple[int, int]], ...] = (),
                    ) -> TerminalRun:
    """`python -m worker ARGS` (or `program ARGS`) with stdout and stderr (and stdin
    unless `stdin_tty` is false) on a pty; `answer` is typed (with Enter) when `prompt`
    appears, or else `keys` as they are (b"\\x04" is Ctrl-D). `size` (columns, rows) is
    the window's, set as a terminal does and with no COLUMNS in the environment; without
    it the window has no size and COLUMNS says 120. `stdout_pipe`: stdout is a pipe, as
    in `rebrand run | jq`, while stderr stays on the terminal; `stderr_to`: stderr goes to
    that file (`2>err.log`). `more_keys`: (text, keys) typed once the text has appeared,
    in order; keys that are (columns, rows) resize the window instead (SIGWINCH). The pty is the child's controlling terminal, so Ctrl-C (b"\\x03") sends it
    SIGINT, as at a shell."""
    master, slave, columns = _window(size)
    err = slave if stderr_to is None else os.open(stderr_to, os.O_WRONLY | os.O_CREAT, 0o600)
    proc = subprocess.Popen(
        [*(program or [sys.executable, "-m", "worker"]), *args],
        stdin=slave if stdin_tty else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout_pipe else slave, stderr=err,
        env={"PATH": "/usr/bin:/bin", **columns, **env}, close_fds=True, cwd=cwd,
        preexec_fn=_take_terminal if stdin_tty else None)  # noqa: PLW1509 - no locks taken
    os.close(slave)
    if err != slave:
        os.close(err)
    piped: list[bytes] = []
    drain = _drain(proc, piped)
    typed = None if answer is None and keys is None else (
        answer.encode() + b"\n" if answer is not None else keys)
    later = list(more_keys)
    chunks: list[bytes] = []
    answered = False
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if typed is not None and not answered and prompt.encode() in b"".join(chunks):
                    os.write(master, typed)
                    answered = True
                while later and later[0][0].encode() in b"".join(chunks):
                    _press(master, later.pop(0)[1])
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if drain is not None:
            drain.join(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return TerminalRun(code, b"".join(chunks).decode("utf-8", "replace"), b"".join(piped))
