"""Running one contestant as a child process and measuring it from outside.

Wall time runs from spawn to exit (interpreter start included; sandbox start excluded).
CPU and peak RSS are the child's own, from `os.wait4`'s rusage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Measured:
    exit_code: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    last_line: dict[str, Any] | None
    # Voluntary and involuntary context switches.
    switches: int = 0


def spawn(command: Sequence[str], env: Mapping[str, str], stdout: Path,
          stderr: Path) -> Measured:
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=out, stderr=err, env=dict(env),
                                   cwd=REPO)
        _pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    return Measured(
        exit_code=process.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        last_line=_last_json_line(stdout),
        switches=usage.ru_nvcsw + usage.ru_nivcsw,
    )


def _last_json_line(path: Path) -> dict[str, Any] | None:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 65536))
        lines = handle.read().splitlines()
    for line in reversed(lines):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def write_worker_config(path: Path, theme: Mapping[str, Any], space: str, concurrency: int,
                        rate_limit: float | None) -> None:
    config: dict[str, Any] = {"space": space, "theme": theme, "concurrency": concurrency}
    if rate_limit is not None:
        config["rate_limit"] = rate_limit
    path.write_text(yaml.safe_dump(config))


def worker_command(config: Path, concurrency: int | None, backups: Path, *,
                   command: str = "run") -> list[str]:
    """`rebrand run` (or `plan`); `concurrency` None leaves the config's (or auto)."""
    pinned = ["--concurrency", str(concurrency)] if concurrency is not None else []
    return [str(_BIN / "rebrand"), command, "--config", str(config), *pinned,
            "--backup-dir", str(backups), "--log-format", "json"]


def peer_command(name: str, colors: Mapping[str, str]) -> list[str]:
    script = BENCH / ("recipe.py" if name == "recipe" else "sdk_peer.py")
    return [sys.executable, str(script), orjson.dumps(dict(colors)).decode()]


def skeleton_command(rebrand: Sequence[str]) -> list[str]:
    """`rebrand`'s command line run by bench/skeleton.py: its safety work off."""
    return [sys.executable, str(BENCH / "skeleton.py"), *rebrand[1:]]


def floor_command(colors: Mapping[str, str], concurrency: int) -> list[str]:
    return [sys.executable, str(BENCH / "floor.py"), orjson.dumps(dict(colors)).decode(),
            str(concurrency)]


def credentials_env(url_or_host: str, project_id: str, api_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALWIRE_")}
    env.update(SIGNALWIRE_SPACE=url_or_host, SIGNALWIRE_PROJECT_ID=project_id,
               SIGNALWIRE_API_TOKEN=api_token, PYTHONUNBUFFERED="1")
    return env
