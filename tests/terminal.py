"""Run the CLI in a subprocess as a person at a terminal would: on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class TerminalRun:
    code: int
    output: str  # everything the terminal showed: stdout, stderr and the echoed answer


def run_on_terminal(args: list[str], env: dict[str, str], *, answer: str | None = None,
                    prompt: str = "Re-theme them now?", timeout_s: float = 60.0,
                    stdin_tty: bool = True) -> TerminalRun:
    """`python -m worker ARGS` with stdout and stderr (and stdin unless `stdin_tty` is
    false) on a pty; `answer` is typed when `prompt` appears."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        stdin=slave if stdin_tty else subprocess.DEVNULL, stdout=slave, stderr=slave,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", **env}, close_fds=True)
    os.close(slave)
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
                if answer is not None and not answered and prompt.encode() in b"".join(chunks):
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return TerminalRun(code, b"".join(chunks).decode("utf-8", "replace"))
