"""The results as JSON, as a markdown table, and as a plot of updates/s against concurrency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

COLUMNS = (
    ("contestant", "contestant"), ("C", "concurrency"), ("N", "count"),
    ("wall s", "wall_s"), ("updated", "updated"), ("updates/s", "updates_per_s"),
    ("bound/s", "bound_per_s"), ("% of bound", "pct_of_bound"),
    ("x SDK", "vs_sdk"), ("CPU ms/update", "cpu_ms_per_update"),
    ("CPU x floor", "cpu_vs_floor"), ("rate x floor", "rate_vs_floor"),
    ("peak RSS MB", "peak_rss_mb"), ("PUTs", "puts"), ("429s", "throttled"),
    ("429 %", "pct_429"), ("verified", "verified"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def markdown(settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        f"N={settings['count']} (peers: {settings['peer_count']}), "
        f"L={settings['latency_s'] * 1000:g} ms, sandbox PUT limit: {settings['sandbox_limit']}, "
        f"worker rate_limit: {settings['worker_rate_limit']}, "
        f"sandbox validation: {'ON' if settings['validate'] else 'OFF (cheap checks only)'}",
        "",
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row.get(key)) for _, key in COLUMNS) + " |" for row in rows]
    lines += ["", "Bounds:"]
    seen: set[str] = set()
    for row in rows:
        rule = f"- {row['contestant']}: {row['bound_rule']}"
        if rule not in seen:
            seen.add(rule)
            lines.append(rule)
    return "\n".join(lines) + "\n"


def write_json(path: Path, settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
    path.write_bytes(orjson.dumps({"settings": settings, "results": list(rows)},
                                  option=orjson.OPT_INDENT_2))


def plot(path: Path, settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
         ideal: Any) -> None:
    """Updates/s against concurrency for the worker; the peers as horizontal lines."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    workers = sorted((r for r in rows if r["contestant"] == "worker"),
                     key=lambda r: r["concurrency"])
    figure, axes = plt.subplots(figsize=(8, 5))
    if workers:
        xs = [r["concurrency"] for r in workers]
        axes.plot(xs, [r["updates_per_s"] for r in workers], "o-", label="worker (rebrand run)")
        bounds = [ideal(c) for c in xs]
        if all(b is not None for b in bounds):
            axes.plot(xs, bounds, "k--", label="ideal min(C/(2L), R)")
        axes.set_xscale("log", base=2)
        axes.set_xticks(xs, [str(x) for x in xs])
    for row, style in zip((r for r in rows if r["contestant"] != "worker"), ("r:", "g-."),
                          strict=False):
        axes.axhline(row["updates_per_s"], linestyle=style[1:], color=style[0],
                     label=row["contestant"] + ("" if row["contestant"] == "floor" else " (sequential)"))
    axes.set_xlabel("worker concurrency C")
    axes.set_ylabel("updates/s")
    axes.set_yscale("log")
    validation = "on" if settings["validate"] else "off"
    axes.set_title(f"N={settings['count']}, L={settings['latency_s'] * 1000:g} ms, "
                   f"limit {settings['sandbox_limit']}, validation {validation}")
    axes.grid(visible=True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
