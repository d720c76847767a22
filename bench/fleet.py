"""`python -m bench.fleet`: one fleet run over three Spaces against three single-Space runs
in sequence, the same Spaces, the same theme.

Each Space is a sandbox in its own process (own credentials, own data, the same latency);
each contest starts from freshly seeded Spaces. Prints the wall time of both and verifies
after each that every conference is themed and every other field intact.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from bench.contest import credentials_env, spawn, worker_command
from bench.sandbox import SandboxKnobs, SandboxProcess
from bench.verify import verify_space
from worker.sandbox import ON_THEME

NAMES = ("acme", "globex", "initech")


def _theme() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for field, value in ON_THEME.items():
        mode, role = field.split("_", 1)
        out.setdefault(mode, {})[role] = value
    return out


def _spaces(stack: ExitStack, ns: argparse.Namespace, work: Path) -> dict[str, SandboxProcess]:
    spaces = {}
    for i, name in enumerate(NAMES):
        knobs = SandboxKnobs(count=ns.count, latency_s=ns.latency, rate_limit=None,
                             rate_window_s=10.0, validate=False, seed=i + 1,
                             extra=("--project-id", f"{name}-project", "--api-token",
                                    f"{name}-bench-token", "--on-theme-fraction", "0"))
        spaces[name] = stack.enter_context(SandboxProcess(knobs, work / f"{name}.log"))
    return spaces


def _verified(spaces: dict[str, SandboxProcess]) -> str:
    problems = [p for s in spaces.values() for p in verify_space(s.url, ON_THEME)]
    return "verified: every conference themed, every other field intact" if not problems \
        else f"NOT VERIFIED: {len(problems)} problems, e.g. {problems[:3]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="conferences per Space")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    ns = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rebrand-bench-fleet-"))
    theme = _theme()
    ok = True
    print(f"fleet of {len(NAMES)} Spaces x {ns.count} conferences at "
          f"{ns.latency * 1000:.0f} ms, sandboxes in their own processes "
          f"(load {os.getloadavg()[0]:.1f})")

    with ExitStack() as stack:
        spaces = _spaces(stack, ns, work)
        started = time.perf_counter()
        for name, space in spaces.items():
            config = work / f"{name}.yaml"
            config.write_text(yaml.safe_dump({"space": space.url, "theme": theme}))
            env = credentials_env(space.url, space.project_id, space.api_token)
            done = spawn(worker_command(config, None, work / "seq" / name), env,
                         work / f"seq-{name}.out", work / f"seq-{name}.err")
            ok &= done.exit_code == 0
        sequential = time.perf_counter() - started
        verdict = _verified(spaces)
        ok &= verdict.startswith("verified")
        print(f"  three single-Space runs in sequence: {sequential:7.1f} s  {verdict}")

    with ExitStack() as stack:
        spaces = _spaces(stack, ns, work)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALWIRE_")}
        targets: list[dict[str, Any]] = []
        for name, space in spaces.items():
            env[f"{name.upper()}_PROJECT_ID"] = space.project_id
            env[f"{name.upper()}_API_TOKEN"] = space.api_token
            targets.append({"name": name, "space": space.url,
                            "project_id_env": f"{name.upper()}_PROJECT_ID",
                            "token_env": f"{name.upper()}_API_TOKEN"})
        config = work / "fleet.yaml"
        config.write_text(yaml.safe_dump({"targets": targets, "theme": theme,
                                          "max_parallel_targets": len(NAMES)}))
        done = spawn(worker_command(config, None, work / "fleet"), env,
                     work / "fleet.out", work / "fleet.err")
        ok &= done.exit_code == 0
        verdict = _verified(spaces)
        ok &= verdict.startswith("verified")
        print(f"  one fleet run, all three at once:    {done.wall_s:7.1f} s  {verdict}")
        print(f"  speed-up: {sequential / done.wall_s:.2f}x  "
              f"(fleet CPU {done.cpu_s:.1f} s, peak RSS {done.max_rss_mb:.0f} MB)")
    print(f"  logs in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
