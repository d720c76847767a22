"""Running a sandbox Space on a loopback socket: as a context manager, or until a signal.

`serve` is for tests and the benchmark inside one event loop; `main_serve` owns its
loop, announces itself with one JSON line on stdout and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import NamedTuple

import orjson
from aiohttp import web

from worker.sandbox.app import create_app
from worker.sandbox.config import SandboxConfig
from worker.sandbox.space import SpaceState


class RunningSandbox(NamedTuple):
    """Where a running sandbox answers (no trailing slash) and the state behind it."""

    url: str
    space: SpaceState


@asynccontextmanager
async def serve(
    config: SandboxConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSandbox]:
    """Serve a freshly seeded Space until the block exits; port 0 picks a free port."""
    space = SpaceState(config)
    app = create_app(space, config)
    # No access log: at benchmark rates it would cost more than the handlers.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = _bound_port(runner)
        yield RunningSandbox(f"http://{_url_host(host)}:{bound_port}", space)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_fleet(
    configs: Mapping[str, SandboxConfig], host: str = "127.0.0.1"
) -> AsyncIterator[dict[str, RunningSandbox]]:
    """Several Spaces in one process, each on its own port with its own credentials and
    data, by name: a fleet for the demo, the tests and the benchmark."""
    async with AsyncExitStack() as stack:
        running = {}
        for name, config in configs.items():
            running[name] = await stack.enter_async_context(serve(config, host))
        yield running


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the sandbox is not listening on a TCP port")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


MAX_PORT = 65535


class ListenError(Exception):
    """The sandbox cannot listen where it was told; the message says where, and what to
    change. The command lines turn it into exit 2."""


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """Why listening on host:port failed, as a person would fix it."""
    where = f"{_url_host(host)}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"--port {port}: something else already listens on {where}; stop it, or "
                "pick another port (--port 0 picks a free one)")
    if exc.errno == errno.EACCES:
        return (f"--port {port}: not allowed to listen on {where} (ports below 1024 need "
                "privileges); pick one above 1023, or --port 0")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: no interface of this machine has that address"
    return f"--port {port}: cannot listen on {where} ({exc.strerror or exc})"


def main_serve(config: SandboxConfig, host: str, port: int, spaces: int = 1) -> None:
    """Serve until SIGINT or SIGTERM, after printing one `sandbox.ready` JSON line per
    Space. With `spaces` > 1, a fleet in this one process: Space i (from 1) on `port` + i - 1
    (or a free port each, for 0), its own data (seed + i - 1) and its own credentials
    (`<project_id>-i`, `<api_token>-i`)."""
    last = port + spaces - 1
    if port and last > MAX_PORT:
        raise ListenError(f"--port {port} with --spaces {spaces} needs ports up to {last}; "
                          f"the last port is {MAX_PORT}: pick a lower --port, or --port 0")
    asyncio.run(_serve_until_signalled(fleet_configs(config, spaces), host, port))


def fleet_configs(config: SandboxConfig, spaces: int) -> dict[str, SandboxConfig]:
    """The Spaces `main_serve` runs, by name: `config` alone, or `spaces` of them."""
    if spaces <= 1:
        return {"space": config}
    return {f"space-{i}": replace(config, seed=config.seed + i - 1,
                                  project_id=f"{config.project_id}-{i}",
                                  api_token=f"{config.api_token}-{i}")
            for i in range(1, spaces + 1)}


async def _serve_until_signalled(configs: dict[str, SandboxConfig], host: str,
                                 port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with AsyncExitStack() as stack:
            for i, (name, config) in enumerate(configs.items()):
                at = port + i if port else 0
                try:
                    running = await stack.enter_async_context(serve(config, host, at))
                except OSError as exc:
                    raise ListenError(listen_problem(host, at, exc)) from exc
                ready = {
                    "event": "sandbox.ready",
                    **({"space": name} if len(configs) > 1 else {}),
                    "url": running.url,
                    # Where links.next point, when clients reach the sandbox through a proxy.
                    "public_url": config.links_base,
                    # The sandbox's own fake credentials, printed so a user can export them.
                    "project_id": config.project_id,
                    "api_token": config.api_token,
                    "count": config.count,
                    "validate": config.validate,
                }
                sys.stdout.write(orjson.dumps(ready).decode() + "\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
