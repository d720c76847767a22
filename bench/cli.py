"""`python -m bench`: parse the knobs, run each contestant on a fresh sandbox, verify, report.

    python -m bench --count 10000 --latency 0.05 --concurrency 8,16,32,64 \
        --contestants worker,recipe,sdk

Exits 1, loudly, when any run leaves a conference unthemed or a field changed, or when a
contestant fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench import output
from bench.contest import (
    REPO,
    credentials_env,
    floor_command,
    peer_command,
    spawn,
    worker_command,
    write_worker_config,
)
from bench.sandbox import SandboxKnobs, SandboxProcess
from bench.verify import verify_space

# worker.config is a pure module: it loads no aiohttp, so this parent stays small (a
# child's peak RSS as rusage reports it starts from its parent's at fork).
from worker.config import DEFAULT_RATE_LIMIT

CONTESTANTS = ("worker", "floor", "recipe", "sdk")
# Contestants that run C conferences at once (the others are sequential).
CONCURRENT = frozenset({"worker", "floor"})


class BenchFailure(Exception):
    """A run that did not leave the Space as it should, or did not finish cleanly."""


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(CONTESTANTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown contestants {sorted(unknown)}; "
                                         f"choose from {','.join(CONTESTANTS)}")
    return names


def _limit(text: str) -> int | None:
    return None if text.lower() in {"none", "off", "0"} else int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10_000, help="conferences seeded (N)")
    p.add_argument("--peer-count", type=int, default=None,
                   help="N for the sequential peers (default min(N, 1000): at 50 ms they "
                        "take N/20 s)")
    p.add_argument("--latency", type=float, default=0.05, help="sandbox latency L, seconds")
    p.add_argument("--rate-limit", type=_limit, default=None,
                   help="sandbox PUTs per window R·W ('none', the default, for unlimited)")
    p.add_argument("--rate-window", type=float, default=10.0, help="sandbox window W, seconds")
    p.add_argument("--concurrency", type=_int_list, default=[64],
                   help="worker concurrency, or a comma list for the sweep (default 64)")
    p.add_argument("--worker-rate-limit", type=float, default=None,
                   help=f"worker config rate_limit (default: left out, so {DEFAULT_RATE_LIMIT:g})")
    p.add_argument("--contestants", type=_names, default=list(CONTESTANTS),
                   help="comma list of worker,recipe,sdk")
    p.add_argument("--validate", action=argparse.BooleanOptionalAction, default=False,
                   help="sandbox OpenAPI validation (default off, for throughput runs)")
    p.add_argument("--seed", type=int, default=0, help="sandbox seed (same for every run)")
    p.add_argument("--theme", type=Path, default=REPO / "config.example.yaml",
                   help="a config file whose theme is applied (default config.example.yaml)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                   help="where results go (default bench/results/)")
    return p


class Bench:
    def __init__(self, ns: argparse.Namespace, scratch: Path) -> None:
        self.ns = ns
        self.scratch = scratch
        self.theme_config = yaml.safe_load(ns.theme.read_text())["theme"]
        # The theme as the API's field names: light.primary -> light_primary.
        self.colors = {f"{mode}_{role}": value for mode, roles in self.theme_config.items()
                       for role, value in roles.items()}
        self.peer_count = ns.peer_count or min(ns.count, 1000)
        self.sandbox_rate = (ns.rate_limit / ns.rate_window) if ns.rate_limit else math.inf
        self.worker_rate = ns.worker_rate_limit or DEFAULT_RATE_LIMIT

    def settings(self) -> dict[str, Any]:
        ns = self.ns
        return {
            "count": ns.count, "peer_count": self.peer_count, "latency_s": ns.latency,
            "sandbox_limit": (f"{ns.rate_limit} PUT per {ns.rate_window:g} s"
                              if ns.rate_limit else "none"),
            "worker_rate_limit": self.worker_rate, "validate": ns.validate, "seed": ns.seed,
            "concurrency": ns.concurrency, "contestants": ns.contestants,
            "python": sys.version.split()[0],
        }

    def worker_bound(self, concurrency: int) -> float | None:
        latency = concurrency / (2 * self.ns.latency) if self.ns.latency > 0 else math.inf
        bound = min(latency, self.sandbox_rate, self.worker_rate)
        return None if math.isinf(bound) else bound

    def peer_bound(self) -> float | None:
        bound = min(1 / self.ns.latency if self.ns.latency > 0 else math.inf, self.sandbox_rate)
        return None if math.isinf(bound) else bound

    def run_one(self, name: str, concurrency: int) -> dict[str, Any]:
        ns = self.ns
        concurrent = name in CONCURRENT
        count = ns.count if concurrent else self.peer_count
        tag = f"{name}-c{concurrency}" if concurrent else name
        knobs = SandboxKnobs(count, ns.latency, ns.rate_limit, ns.rate_window, ns.validate,
                             ns.seed)
        print(f"bench: {tag}: seeding {count} conferences ...", file=sys.stderr, flush=True)
        with SandboxProcess(knobs, self.scratch / f"{tag}.sandbox.log") as sandbox:
            if name == "worker":
                config = self.scratch / f"{tag}.yaml"
                write_worker_config(config, self.theme_config, sandbox.url, concurrency,
                                    ns.worker_rate_limit)
                command = worker_command(config, concurrency, self.scratch / f"{tag}-backups")
                env = credentials_env(sandbox.url, sandbox.project_id, sandbox.api_token)
            elif name == "floor":
                command = floor_command(self.colors, concurrency)
                env = credentials_env(sandbox.url, sandbox.project_id, sandbox.api_token)
            else:
                command = peer_command(name, self.colors)
                space = sandbox.host_port if name == "sdk" else sandbox.url
                env = credentials_env(space, sandbox.project_id, sandbox.api_token)
            print(f"bench: {tag}: running", file=sys.stderr, flush=True)
            measured = spawn(command, env, self.scratch / f"{tag}.out",
                             self.scratch / f"{tag}.err")
            stats = sandbox.stats()
            problems = verify_space(sandbox.url, self.colors)
        last = measured.last_line or {}
        updated = int(last.get("updated", 0))
        puts = int(stats["put_count"])
        throttled = int(stats["status_counts"].get("429", 0))
        bound = self.worker_bound(concurrency) if concurrent else self.peer_bound()
        rate = updated / measured.wall_s
        row: dict[str, Any] = {
            "contestant": name, "concurrency": concurrency if concurrent else 1,
            "count": count, "exit_code": measured.exit_code, "wall_s": round(measured.wall_s, 3),
            "updated": updated, "updates_per_s": round(rate, 1),
            "bound_per_s": None if bound is None else round(bound, 1),
            "bound_rule": self.bound_rule(name),
            "pct_of_bound": None if bound is None else round(100 * rate / bound, 1),
            "cpu_s": round(measured.cpu_s, 3),
            "cpu_ms_per_update": round(1000 * measured.cpu_s / updated, 3) if updated else None,
            "peak_rss_mb": round(measured.max_rss_mb, 1), "puts": puts,
            "throttled": throttled, "pct_429": round(100 * throttled / puts, 2) if puts else 0.0,
            "effective_rate": last.get("effective_rate"), "retries": last.get("retries"),
            "verified": not problems and measured.exit_code == 0,
            "problems": problems[:20], "problem_count": len(problems),
        }
        print(f"bench: {tag}: {row['updates_per_s']} updates/s, exit {measured.exit_code}, "
              f"{len(problems)} problems", file=sys.stderr, flush=True)
        return row

    def bound_rule(self, name: str) -> str:
        limit = "" if math.isinf(self.sandbox_rate) else f", sandbox R = {self.sandbox_rate:g}/s"
        if name == "floor":
            return f"min(C/(2·L){limit}): a GET and a PUT per update, C at once, no pacing"
        if name == "worker":
            return (f"min(C/(2·L), R): a GET and a PUT per update, C at once; "
                    f"R = min(worker rate_limit {self.worker_rate:g}/s{limit}); "
                    "L = 0 leaves only R")
        return ("min(1/L, R): sequential, one PUT round trip per update after listing "
                f"(a bound of 1/(2·L) would be beaten: there is no GET per update){limit}; "
                "none at L = 0")


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    ns.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rebrand-bench-") as scratch:
        bench = Bench(ns, Path(scratch))
        if not ns.validate:
            print("bench: sandbox validation is OFF (cheap checks only) for throughput",
                  file=sys.stderr)
        for name in ns.contestants:
            for concurrency in ns.concurrency if name in CONCURRENT else [1]:
                row = bench.run_one(name, concurrency)
                if row["exit_code"] != 0:
                    err = (Path(scratch) / (f"{name}-c{concurrency}.err" if name in CONCURRENT
                                            else f"{name}.err")).read_text()[-2000:]
                    row["stderr_tail"] = err
                rows.append(row)
        settings = bench.settings()
    sdk = next((r for r in rows if r["contestant"] == "sdk"), None)
    floor = next((r for r in rows if r["contestant"] == "floor"), None)
    for row in rows:
        if floor and floor["cpu_ms_per_update"] and row["cpu_ms_per_update"]:
            row["cpu_vs_floor"] = round(row["cpu_ms_per_update"] / floor["cpu_ms_per_update"], 2)
            row["rate_vs_floor"] = round(row["updates_per_s"] / floor["updates_per_s"], 2)
        if sdk and sdk["updates_per_s"]:
            row["vs_sdk"] = round(row["updates_per_s"] / sdk["updates_per_s"], 1)
    table = output.markdown(settings, rows)
    base = ns.out / f"bench-{stamp}"
    output.write_json(base.with_suffix(".json"), settings, rows)
    base.with_suffix(".md").write_text(table)
    try:
        output.plot(base.with_suffix(".png"), settings, rows, bench.worker_bound)
        plotted = ", .png"
    except ModuleNotFoundError:  # matplotlib comes with the `bench` extra only
        plotted = " (no plot: pip install -e '.[bench]' for matplotlib)"
    print(table)
    print(f"results: {base}.json, .md{plotted}")
    failed = [r for r in rows if not r["verified"]]
    for row in failed:
        print(f"\nBENCH FAILED: {row['contestant']} (C={row['concurrency']}): exit "
              f"{row['exit_code']}, {row['problem_count']} conference problems",
              file=sys.stderr)
        for problem in row["problems"]:
            print(f"  {problem}", file=sys.stderr)
        if row.get("stderr_tail"):
            print(f"  stderr: {row['stderr_tail']}", file=sys.stderr)
    return 1 if failed else 0
