"""rebrand with its safety work switched off: a yardstick, not a mode of the product.

`python bench/skeleton.py run --config ...` runs `rebrand` exactly as its console script
does, after replacing with no-ops: the journal (no pre-image, no fdatasync), the outcome
events (counted, never rendered or written), and the checks of answers and bodies (the
answer's shape and id, the echoed-credential search, the body's constraints). What is
left is rebrand's pipeline around the same requests: start-up, the producer and its
stream, the consumers, retries, the decision and the body, the request wrapper.

Beside the floor (bench/floor.py) and rebrand itself, in one `floor` suite, it splits
the gap between them: rebrand minus the skeleton is what the safety work costs, the
skeleton minus the floor what the pipeline costs before any of it. The suite verifies
its Space afterwards like any contestant's (every conference themed, every other field
intact), so it is known to do the same work.
"""

from __future__ import annotations

import sys
from typing import Any

from worker.answers import AnswerRules
from worker.outcome import Kind, Outcome
from worker.run import consumer, job
from worker.run.api import SpaceClient
from worker.run.report import Reporter


def _no_journal(*_args: Any, **_kwargs: Any) -> None:
    return None


def _no_problems(*_args: Any, **_kwargs: Any) -> tuple[str, ...]:
    return ()


def _no_secret(_self: SpaceClient, _raw: bytes, _payload: Any) -> bool:
    return False


def _counted(self: Reporter, outcome: Outcome) -> None:
    # What the summary and the exit code need, and nothing written per conference.
    self._sending.pop(outcome.conference_id, None)
    self.counts[outcome.kind] += 1
    if outcome.kind is Kind.FAILED:
        self.failures.append(outcome)


def switch_off() -> None:
    """Replace the safety work with no-ops (see the module's docstring)."""
    job._open_journal = _no_journal  # type: ignore[assignment]
    AnswerRules.problems = _no_problems  # type: ignore[method-assign]
    consumer.body_problems = _no_problems  # type: ignore[attr-defined]
    SpaceClient._carries_secret = _no_secret  # type: ignore[method-assign,assignment]
    Reporter.record = _counted  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    switch_off()
    from worker.cli.entry import main as rebrand

    return rebrand(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
