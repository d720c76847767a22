"""The one error tree of rebrand, and the exit code each branch maps to.

    RebrandError
    ├── ConfigError            bad input: config file, flags, environment   (exit 2, nothing sent)
    ├── AuthError              the Space refused the credentials            (exit 3)
    ├── AbortError             the run cannot go on safely                  (exit 4)
    │   ├── UnsafeLinkError    a pagination link leads away from the Space
    │   ├── UnreachableError   the API could not be reached or listed
    │   ├── UnknownPropertyError  an answer holds a property the spec does not name
    │   ├── JournalError       the journal cannot be written (disk full, read-only)
    │   └── ListingError       a listing that would not end: no new ids, a repeated page
    └── ApiError               one request failed: status + server messages (per conference)
        ├── RefusedRequestError  not sent: a conference id that is not a UUID
        ├── NotFoundError      404: the conference is gone
        └── RetryableApiError  408/429/5xx, resets and timeouts: worth another try

Library exceptions (aiohttp, OSError, YAML) are translated into these once, at the edge
where they happen, so everything above the edge reasons about one small vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes, documented in the README."""

    OK = 0
    FAILURES = 1
    BAD_INPUT = 2
    AUTH = 3
    ABORTED = 4
    # The --deadline came first: the run stopped cleanly, what it did stays done (journal
    # and themed conferences), and the next run takes up the rest. Its own code, so a
    # podFailurePolicy and an alert can tell it from "the API is unreachable" (4).
    DEADLINE = 5
    CHANGES_PENDING = 10
    SIGINT = 130
    SIGTERM = 143


class RebrandError(Exception):
    """Base of every error rebrand raises on purpose."""

    exit_code: ExitCode = ExitCode.ABORTED


class ConfigError(RebrandError):
    """Bad input. The message names the key and says what to change."""

    exit_code = ExitCode.BAD_INPUT


class AuthError(RebrandError):
    """401/403: retrying cannot help, and carrying on would only hammer the Space."""

    exit_code = ExitCode.AUTH

    def __init__(self, status: int, errors: tuple[str, ...] = (), *, project_id: str = "",
                 host: str = "") -> None:
        detail = "; ".join(errors) if errors else "no detail given"
        # The project ID names the account to check; the token is never named.
        who = f" refused project ID {project_id!r}" if project_id else " refused the credentials"
        super().__init__(
            f"the Space{' ' + host if host else ''}{who} (HTTP {status}: {detail}): check "
            "that SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN come from this Space's API "
            "page and that the token has the Video scope"
        )
        self.status = status
        self.errors = errors


class AbortError(RebrandError):
    """The whole run stops: continuing would be unsafe or pointless."""

    exit_code = ExitCode.ABORTED


class UnsafeLinkError(AbortError):
    """A `links.next` points to another scheme, host or port than the Space."""


class UnreachableError(AbortError):
    """The Space could not be reached, or listing it kept failing."""


class UnknownPropertyError(AbortError):
    """A conference answer holds properties the bundled spec does not name: a PUT built
    from it would reset them, so the run stops before writing it."""

    def __init__(self, message: str, conference_id: str, names: tuple[str, ...]) -> None:
        super().__init__(message)
        self.conference_id = conference_id
        self.names = names


class JournalError(AbortError):
    """The journal cannot be written: no further write may go out without its pre-image."""


class ListingError(AbortError):
    """The listing would not end: a page with no new conference, a `next` link to a page
    already read, or more pages than the limit."""


class ApiError(RebrandError):
    """A request failed. Carries the status (None for transport failures) and the
    server's own error messages."""

    def __init__(
        self,
        status: int | None,
        errors: tuple[str, ...] = (),
        *,
        retry_after: str | None = None,
        unanswered: bool = False,
    ) -> None:
        self.status = status
        self.errors = errors
        self.retry_after = retry_after
        # The request went out and no answer came (dropped, reset, timed out): a write
        # may have landed.
        self.unanswered = unanswered
        # Set by worker.retry.with_retries: how many attempts ended in this error.
        self.attempts = 1
        label = f"HTTP {status}" if status is not None else "transport error"
        super().__init__(f"{label}: {'; '.join(errors)}" if errors else label)


class RefusedRequestError(ApiError):
    """A request rebrand would not send (a conference id that is not one path segment)."""

    def __init__(self, message: str) -> None:
        super().__init__(None, (message,))
        self.args = (message,)


class NotFoundError(ApiError):
    """404: the conference no longer exists."""


class RetryableApiError(ApiError):
    """A failure that another attempt may cure."""


@contextmanager
def single_error() -> Iterator[None]:
    """Around a task group: the one place an exception group is unwrapped. What leaves is
    the error of ours that decides the exit (see `primary_error`), or the group itself
    when none of it is ours (a bug, to be seen whole)."""
    try:
        yield
    except BaseExceptionGroup as group:
        error = primary_error(group)
        if error is group:
            raise
        # The group is kept as the context (a traceback shows the siblings, if any).
        raise error from group


def primary_error(group: BaseExceptionGroup[Any]) -> BaseException:
    """The error in a task group's exception group that decides the exit: a refused
    credential first, then aborts, then any of ours; the group itself if none is ours."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for kind in (AuthError, AbortError, RebrandError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return group
