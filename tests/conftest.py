"""Shared fixtures: a real sandbox Space on loopback, and JSON logs on captured stdout."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import structlog

from tests.support import SANDBOX_CREDENTIALS, SandboxFactory
from worker.cli import entry
from worker.run.logs import configure_logging
from worker.sandbox import RunningSandbox, SandboxConfig, serve


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox_factory() -> SandboxFactory:
    """`async with sandbox_factory(count=50, latency_s=0.01) as sb:` -- a fresh Space."""

    def make(**knobs: Any) -> AbstractAsyncContextManager[RunningSandbox]:
        return serve(SandboxConfig(**knobs))

    return make


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """A small validating Space with no faults."""
    async with serve(SandboxConfig(count=60)) as running:
        yield running


@pytest.fixture(autouse=True)
def _nothing_settled() -> Iterator[None]:
    """No exit code stays settled (worker.cli.entry.settle) from one in-process CLI call
    to the next test: a later signal there would exit with the earlier test's code."""
    entry.reset()
    yield
    entry.reset()


@pytest.fixture(autouse=True)
def _json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    """Every test starts with structlog writing JSON lines to the captured stdout."""
    structlog.reset_defaults()
    configure_logging("json", secrets=SANDBOX_CREDENTIALS.secrets)
