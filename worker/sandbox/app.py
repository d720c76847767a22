"""The aiohttp application of a sandbox Space: routes and middlewares, wired once."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from worker.sandbox.config import SandboxConfig
from worker.sandbox.handlers import Handlers
from worker.sandbox.middleware import CREATE, DELETE, GET, LIST, PUT, build_middlewares
from worker.sandbox.paging import LIST_PATH
from worker.sandbox.space import SpaceState

SPACE = web.AppKey("sandbox_space", SpaceState)


def create_app(
    space: SpaceState,
    config: SandboxConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> web.Application:
    """An app serving `space` with the behaviour `config` asks for.

    `clock` drives the rate limit's window and `wall_clock` the HTTP-dates it sends.
    """
    app = web.Application(
        middlewares=build_middlewares(space, config, clock=clock, wall_clock=wall_clock)
    )
    app[SPACE] = space
    handlers = Handlers(space, config)
    one = f"{LIST_PATH}/{{id}}"
    app.router.add_get(LIST_PATH, handlers.list_conferences, name=LIST, allow_head=False)
    app.router.add_post(LIST_PATH, handlers.create_conference, name=CREATE)
    app.router.add_get(one, handlers.get_conference, name=GET, allow_head=False)
    app.router.add_put(one, handlers.put_conference, name=PUT)
    app.router.add_delete(one, handlers.delete_conference, name=DELETE)
    app.router.add_get("/_sandbox/stats", handlers.admin_stats, name="admin-stats")
    app.router.add_get(
        "/_sandbox/conferences", handlers.admin_conferences, name="admin-conferences"
    )
    return app
