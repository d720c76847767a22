"""What the contrast check costs a plan: CPU seconds, printed, never asserted.

Two measures on the sandbox's seeded conferences (default 10,000):
- in process: the theme check (once per plan) and the merged-palette audit over every
  conference (cold caches), for a full theme and for partial ones;
- end to end (`--plan`): `rebrand plan` against a sandbox in its own process, with the
  check at AA and off, the child's user+sys CPU from `wait4` (best of `--repeat`).

    .venv/bin/python -m bench.contrast --count 10000 --plan
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.contest import credentials_env, spawn
from bench.sandbox import SandboxKnobs, SandboxProcess
from worker.contrast import (
    Level,
    check_palette,
    contrast_ratio,
    distinctions,
    readability,
    simulate,
)
from worker.decide import color_changes, look
from worker.outcome import Kind, Outcome
from worker.palettes import PlanAudit
from worker.sandbox.data import ON_THEME, seed_conferences
from worker.theme import COLOR_FIELDS, parse_theme

_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
FULL = {mode: {field.split("_", 1)[1]: value for field, value in ON_THEME.items()
               if field.startswith(mode)} for mode in ("light", "dark")}
THEMES: Mapping[str, Mapping[str, Any]] = {
    "full (the brand)": FULL,
    "partial: light foreground": {"light": {"foreground": "#374151"}},
    "partial: primary, both modes": {"light": {"primary": "#0A84FF"},
                                     "dark": {"primary": "#0A84FF"}},
}


def _cold() -> None:
    contrast_ratio.cache_clear()
    simulate.cache_clear()


def _cpu(fn: Callable[[], object]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


def in_process(count: int) -> None:
    conferences = seed_conferences(count, 0, 0.1)
    print(f"in process, {count:,} conferences (CPU seconds, cold caches)")
    print("| theme | theme check | audit, plan | per conference µs | audit, plan --preview "
          "| failing |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, raw in THEMES.items():
        theme = parse_theme(raw)
        _cold()
        colors = theme.as_dict()
        check = _cpu(lambda c=colors: (check_palette(c, Level.AA), readability(c),
                                       distinctions(c)))
        # The outcomes a plan's consumers hand the reporter (not part of the cost).
        outcomes = [Outcome(Kind.PLANNED, cid, c["name"], before=look(c),
                            changes=color_changes(c, theme))
                    for cid, c in conferences.items()]
        partial = len(theme.colors) < len(COLOR_FIELDS)
        spent = []
        for group in (False, True):  # plan, then plan --preview
            _cold()
            audit = PlanAudit(Level.AA, partial=partial, group=group)
            spent.append(_cpu(lambda a=audit, batch=outcomes: [a.observe(o) for o in batch]))
        print(f"| {label} | {check:.4f} | {spent[0]:.3f} | {spent[0] / count * 1e6:.1f} | "
              f"{spent[1]:.3f} | {audit.failing:,} |")


def end_to_end(count: int, repeat: int) -> None:
    print(f"\nend to end: `rebrand plan` on {count:,} conferences, child CPU seconds "
          f"(best of {repeat})")
    print("| theme | level AA | level off | cost of the check |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp, SandboxProcess(
        SandboxKnobs(count=count, latency_s=0.0, rate_limit=None, rate_window_s=10,
                     validate=False), Path(tmp) / "sandbox.log") as sb:
        env = credentials_env(sb.url, sb.project_id, sb.api_token)
        for label, raw in THEMES.items():
            best: dict[str, float] = {}
            for level in ("AA", "off"):
                config = Path(tmp) / f"{level}.yaml"
                config.write_text(yaml.safe_dump({"space": sb.url, "theme": dict(raw),
                                                  "accessibility": {"level": level}}))
                runs = []
                for _ in range(repeat):
                    measured = spawn([str(_BIN / "rebrand"), "plan", "--config", str(config),
                                      "--log-format", "json"], env,
                                     Path(tmp) / "out.jsonl", Path(tmp) / "err.txt")
                    if measured.exit_code not in (0, 10):
                        raise SystemExit(f"plan exited {measured.exit_code}; see "
                                         f"{Path(tmp) / 'err.txt'}")
                    runs.append(measured.cpu_s)
                best[level] = min(runs)
            print(f"| {label} | {best['AA']:.2f} | {best['off']:.2f} | "
                  f"{best['AA'] - best['off']:+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--plan", action="store_true", help="also measure `rebrand plan`")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    in_process(args.count)
    if args.plan:
        end_to_end(args.count, args.repeat)


if __name__ == "__main__":
    main()


