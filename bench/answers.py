"""`python -m bench.answers`: what checking every answer costs, per conference.

A run checks each conference three times (the listed row, the fresh GET, the PUT's
answer): unknown properties twice, id and required properties twice. This times exactly
those calls on seeded conferences and prints microseconds of CPU per conference, to set
beside the benchmark's CPU ms per update. It also times reading the spec once at start.
"""

from __future__ import annotations

import argparse
import time

import yaml

from worker import openapi
from worker.answers import AnswerRules
from worker.sandbox.data import seed_conferences


def _per_conference_us(count: int, rounds: int) -> float:
    rules = AnswerRules.from_spec()
    conferences = list(seed_conferences(count, 0, 0.1).values())
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for conference in conferences:
            cid = conference["id"]
            rules.beyond_spec(conference)  # the listed row
            rules.problems(conference, cid)  # the GET's answer
            rules.beyond_spec(conference)
            rules.problems(conference, cid)  # the PUT's answer
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def _spec_load_ms() -> float:
    openapi.document.cache_clear()
    openapi.conference_shape.cache_clear()
    started = time.process_time()
    openapi.conference_shape()
    return (time.process_time() - started) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="best of this many passes")
    ns = parser.parse_args(argv)
    print(f"spec read at start: {_spec_load_ms():.1f} ms CPU (libyaml: "
          f"{hasattr(yaml, 'CSafeLoader')})")
    us = _per_conference_us(ns.count, ns.rounds)
    print(f"answer checks: {us:.2f} µs CPU per conference ({ns.count:,} conferences, best of "
          f"{ns.rounds}); {us / 1000:.4f} ms beside the run's ~0.6 ms per update")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
