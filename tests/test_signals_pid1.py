"""SIGTERM and SIGINT at any moment before writes: the process ends within a second with
143 or 130 and no traceback, even as PID 1 of its own PID namespace (a container without
an init), where the kernel drops every signal a process has not installed a handler for.

Each test runs `python -m worker` under `unshare --pid --fork`, waits until the moment it
means to test (handlers installed, the listing under way, the confirmation prompt shown),
signals it and times the exit.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.support import SANDBOX_ENV, sandbox_in_thread, write_config

WITHIN_S = 1.0


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True,
                          timeout=10, check=False)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _can_unshare(),
                                reason="needs `unshare --pid` (root or user namespaces)")


def _child_of(pid: int, timeout_s: float = 10.0) -> int:
    """unshare --fork's child: the process that is PID 1 inside the new namespace."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.005)
    raise AssertionError("unshare started no child")


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _catches_sigterm(pid: int) -> bool:
    try:
        caught = int(_status(pid)["SigCgt"], 16)
    except (FileNotFoundError, KeyError):
        return False
    return bool(caught & (1 << (signal.SIGTERM - 1)))


class Pid1:
    """`python -m worker ARGS` as PID 1 of a fresh PID namespace, its output on a pty."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--kill-child",
             sys.executable, "-m", "worker", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=cwd, close_fds=True,
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", **env})
        os.close(slave)
        self.output = b""
        self.pid = _child_of(self.unshare.pid)

    def is_pid_1(self) -> bool:
        return _status(self.pid)["NSpid"].split()[-1] == "1"

    def read_until(self, predicate: object, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if callable(predicate) and predicate():
                return
            if isinstance(predicate, bytes) and predicate in self.output:
                return
            self._read(0.02)
        raise AssertionError(f"timed out; the terminal showed:\n{self.text}")

    def _read(self, wait_s: float) -> None:
        ready, _, _ = select.select([self.master], [], [], wait_s)
        if ready:
            with suppress(OSError):
                self.output += os.read(self.master, 65536)

    def signal_and_time(self, signum: int) -> tuple[int, float]:
        os.kill(self.pid, signum)
        sent = time.monotonic()
        while self.unshare.poll() is None and time.monotonic() - sent < 10:
            self._read(0.01)
        took = time.monotonic() - sent
        if self.unshare.poll() is None:  # what it did with the signal, for the failure
            raise AssertionError(
                f"still running {took:.0f} s after {signal.Signals(signum).name}: "
                f"{self._signal_state()}; the terminal showed:\n{self.text}")
        code = self.unshare.wait()
        self._drain()
        return code, took

    def _signal_state(self) -> str:
        try:
            status = _status(self.pid)
        except FileNotFoundError:
            return "PID 1 is gone"
        return ", ".join(f"{key} {status.get(key)}"
                         for key in ("State", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))

    def _drain(self) -> None:
        """Whatever the process wrote before it ended, still in the terminal's buffer."""
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def close(self) -> None:
        if self.unshare.poll() is None:
            self.unshare.kill()
            self.unshare.wait()
        os.close(self.master)


@contextmanager
def _pid1(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[Pid1]:
    proc = Pid1(args, env, cwd)
    try:
        yield proc
    finally:
        proc.close()


def _expect_prompt_end(proc: Pid1, signum: int, code: int, took: float) -> None:
    expected = 128 + signum
    assert code == expected, (code, proc.text)
    assert took < WITHIN_S, f"took {took:.2f} s"
    assert "Traceback" not in proc.text, proc.text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("after_s", [0.0, 0.1, 0.3])
def test_a_signal_at_start_up_ends_pid_1_within_a_second(
        tmp_path: Path, signum: int, after_s: float) -> None:
    """From the moment the handler is in (before the command line is even imported)
    through config loading and the first requests."""
    with sandbox_in_thread(count=50, latency_s=2.0) as sb:
        config = write_config(tmp_path, sb.url)
        with _pid1(["run", "--config", str(config), "--log-format", "json"], SANDBOX_ENV,
                   tmp_path) as proc:
            proc.read_until(lambda: _catches_sigterm(proc.pid))
            assert proc.is_pid_1()
            time.sleep(after_s)
            code, took = proc.signal_and_time(signum)
            _expect_prompt_end(proc, signum, code, took)
        assert sb.space.put_count == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_listing_ends_pid_1_within_a_second_with_a_summary(
        tmp_path: Path, signum: int) -> None:
    """The first list page takes 5 s to come: the run is listing when the signal comes
    (--yes: at a terminal the run would otherwise plan first, tested below)."""
    with sandbox_in_thread(count=50, latency_s=5.0) as sb:
        config = write_config(tmp_path, sb.url)
        with _pid1(["run", "--config", str(config), "--log-format", "json", "--yes"],
                   SANDBOX_ENV, tmp_path) as proc:
            proc.read_until(lambda: sb.space.list_count > 0)
            code, took = proc.signal_and_time(signum)
            _expect_prompt_end(proc, signum, code, took)
            assert b'"event":"run.summary"' in proc.output
        assert sb.space.put_count == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_planning_before_the_question_ends_pid_1_within_a_second(
        tmp_path: Path, signum: int) -> None:
    with sandbox_in_thread(count=50, latency_s=5.0) as sb:
        config = write_config(tmp_path, sb.url, confirm_above=5)
        with _pid1(["run", "--config", str(config), "--log-format", "json"], SANDBOX_ENV,
                   tmp_path) as proc:
            proc.read_until(lambda: sb.space.list_count > 0)
            code, took = proc.signal_and_time(signum)
            _expect_prompt_end(proc, signum, code, took)
            assert "Re-theme them now?" not in proc.text
        assert sb.space.put_count == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_the_confirmation_prompt_ends_pid_1_within_a_second(
        tmp_path: Path, signum: int) -> None:
    with sandbox_in_thread(count=60) as sb:
        config = write_config(tmp_path, sb.url, confirm_above=5)
        with _pid1(["run", "--config", str(config), "--log-format", "console"],
                   SANDBOX_ENV, tmp_path) as proc:
            proc.read_until(b"Re-theme them now?")
            code, took = proc.signal_and_time(signum)
            _expect_prompt_end(proc, signum, code, took)
        assert sb.space.put_count == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_reads_are_in_flight_ends_at_once_and_nothing_is_written(
        tmp_path: Path, signum: int) -> None:
    """The first page is listed and fresh GETs are on their way (3 s each), but no write
    has started: there is nothing to drain, so the run ends now and sends no PUT."""
    with sandbox_in_thread(count=50, latency_s=3.0) as sb:
        config = write_config(tmp_path, sb.url)
        with _pid1(["run", "--config", str(config), "--log-format", "json", "--yes"],
                   SANDBOX_ENV, tmp_path) as proc:
            proc.read_until(lambda: sb.space.get_count > 0)
            code, took = proc.signal_and_time(signum)
            _expect_prompt_end(proc, signum, code, took)
            assert b'"not_started":' in proc.output
        time.sleep(0.2)
        assert sb.space.put_count == 0


def test_the_entry_point_imports_only_the_standard_library_before_its_handlers() -> None:
    """The console script's module must be cheap: the handlers go in before aiohttp,
    anyio and the run are imported (a few hundred milliseconds)."""
    probe = ("import sys, worker.cli.entry; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'aiohttp', 'anyio', 'structlog', 'yaml', 'orjson', 'tenacity'}), "
             "sorted(m for m in sys.modules if m.startswith('worker.')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout.strip() == "[] ['worker.cli', 'worker.cli.entry', 'worker.version']"
