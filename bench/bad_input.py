"""`python -m bench.bad_input`: how fast and how small rebrand refuses crafted input.

Each case runs `rebrand validate` in a child process and measures it from outside (wall
time, the child's user+sys CPU and peak RSS from `wait4`). The issue's target is exit 2
within a second and under 100 MB; a bare `rebrand --version` is printed first as the floor
(interpreter start and imports). Exits 1 if any case misses the exit code or the target.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

GOOD = "space: example.signalwire.com\ntheme: {light: {primary: '#0A84FF'}}\n"
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SIGNALWIRE_PROJECT_ID": "bench"}


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join(f'*a{i - 1}' for _ in range(9))}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n" + GOOD


# Written in small pieces: Linux counts the parent's peak RSS at the fork in the child's
# (the mm's high-water mark survives fork and exec), so this process must stay small.
CONFIGS: dict[str, Callable[[], Iterator[str]]] = {
    "YAML alias bomb (10^9 nodes)": lambda: iter([_alias_bomb()]),
    "YAML nested 100,000 deep": lambda: iter(["x: ", "[" * 100_000, "]" * 100_000, "\n",
                                              GOOD]),
    "5,001-digit integer": lambda: iter([GOOD, "concurrency: ", "9" * 5001, "\n"]),
    "config of 50 MB": lambda: chain([GOOD, "# "], ("x" * 1_000_000 for _ in range(50)),
                                     ["\n"]),
}
TOKEN_FILES = {"token file /dev/zero": "/dev/zero", "token file of 1 GB": "BIG"}


def measure(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, float]:
    """(exit code, wall s, CPU s, peak RSS MB) of one child."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    return (os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024)


def main() -> int:
    rebrand = [sys.executable, "-m", "worker"]
    rows: list[tuple[str, int, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good = root / "good.yaml"
        good.write_text(GOOD)
        rows.append(("floor: rebrand --version", *measure([*rebrand, "--version"], ENV)))
        for name, make in CONFIGS.items():
            path = root / "config.yaml"
            with path.open("w") as handle:
                handle.writelines(make())
            env = {**ENV, "SIGNALWIRE_API_TOKEN": "bench-token-0123456789"}
            rows.append((name, *measure([*rebrand, "validate", "--config", str(path)], env)))
        big = root / "big-token"
        with big.open("wb") as handle:
            handle.truncate(1 << 30)  # sparse: costs no disk
        for name, target in TOKEN_FILES.items():
            env = {**ENV, "SIGNALWIRE_API_TOKEN_FILE": str(big) if target == "BIG" else target}
            rows.append((name, *measure([*rebrand, "validate", "--config", str(good)], env)))
    print(f"load: {os.getloadavg()[0]:.2f} (1 min)")
    print("| input | exit | wall s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|")
    ok = True
    for name, code, wall, cpu, rss in rows:
        print(f"| {name} | {code} | {wall:.2f} | {cpu:.2f} | {rss:.1f} |")
        if not name.startswith("floor"):
            ok &= code == 2 and cpu < 1.0 and rss < 100
    print("all refused with exit 2, under 1 s of CPU and 100 MB" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
