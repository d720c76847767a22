"""A sandbox Space in a process of its own: start it, read its ready line, ask it, stop it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson


@dataclass(frozen=True, slots=True)
class SandboxKnobs:
    count: int
    latency_s: float
    rate_limit: int | None  # PUTs per window; None for unlimited
    rate_window_s: float
    validate: bool
    seed: int = 0
    # More `python -m worker.sandbox` flags, e.g. ("--fault-500", "0.03").
    extra: tuple[str, ...] = ()


class SandboxProcess:
    """`with SandboxProcess(knobs, log) as sb:` -- a freshly seeded Space, ready to serve."""

    def __init__(self, knobs: SandboxKnobs, log: Path) -> None:
        self._knobs = knobs
        self._log_path = log
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.project_id = ""
        self.api_token = ""

    def __enter__(self) -> SandboxProcess:
        k = self._knobs
        command = [
            sys.executable, "-m", "worker.sandbox", "--port", "0", "--count", str(k.count),
            "--seed", str(k.seed), "--latency", str(k.latency_s),
            "--rate-limit", "none" if k.rate_limit is None else str(k.rate_limit),
            "--rate-window", str(k.rate_window_s),
        ]
        if not k.validate:
            command.append("--no-validate")
        command += k.extra
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log)
        stdout = self._process.stdout
        line = stdout.readline() if stdout is not None else b""
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the sandbox exited before it was ready; see {self._log_path}")
        ready = json.loads(line)
        self.url, self.project_id, self.api_token = (
            ready["url"], ready["project_id"], ready["api_token"])
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the sandbox is not running")
        return self._process.pid

    @property
    def host_port(self) -> str:
        """`127.0.0.1:PORT`, as the SDK wants its host."""
        return self.url.split("://", 1)[1]

    def admin(self, path: str) -> Any:
        # The admin endpoints are loopback-only and need no credentials.
        with urllib.request.urlopen(f"{self.url}/_sandbox/{path}", timeout=600) as answer:  # noqa: S310
            return orjson.loads(answer.read())

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("stats")
        return result
