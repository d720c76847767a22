"""Why and when a run stops early: signals, the deadline, too many failures.

A stop is a request, not a cancellation: listing stops, no new conference starts, the
in-flight ones get `grace_s` to finish, then the summary is written.
"""

from __future__ import annotations

from enum import Enum

import anyio

from worker.errors import ExitCode, RebrandError


class StopReason(Enum):
    SIGINT = "interrupted (SIGINT)"
    SIGTERM = "terminated (SIGTERM)"
    DEADLINE = "deadline reached"
    MAX_FAILURES = "too many failures"
    UNKNOWN_PROPERTY = "an answer held a property the API spec does not name"
    LISTING_FAILED = "listing failed"

    @property
    def exit_code(self) -> ExitCode:
        return {
            StopReason.SIGINT: ExitCode.SIGINT,
            StopReason.SIGTERM: ExitCode.SIGTERM,
            StopReason.DEADLINE: ExitCode.DEADLINE,
        }.get(self, ExitCode.ABORTED)


class Stop:
    """A one-shot stop request that every part of the pipeline can see."""

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.reason: StopReason | None = None
        # What the operator should read about the stop, when there is more to say.
        self.error: RebrandError | None = None
        # The first SIGINT/SIGTERM taken, whatever stopped the run first: a second signal
        # exits at once, but a first one during the drain the deadline or the failure
        # budget began is the operator's first word, not an insistence.
        self.signal: StopReason | None = None

    def request(self, reason: StopReason, error: RebrandError | None = None) -> bool:
        """Ask the run to stop. Returns False if a stop was already requested."""
        if self.reason is not None:
            return False
        self.reason = reason
        self.error = error
        self.event.set()
        return True

    def signalled(self, reason: StopReason) -> bool:
        """A signal's stop request. Returns False if a signal was already taken (the run
        may have been stopping already for another reason: that is no second signal)."""
        if self.signal is not None:
            return False
        self.signal = reason
        self.request(reason)
        return True

    @property
    def requested(self) -> bool:
        return self.reason is not None
