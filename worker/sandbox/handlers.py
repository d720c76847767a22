"""The handlers of the published Video Conferences endpoints and the admin endpoints.

By the time a handler runs, the middlewares have authenticated the request, validated
it and parsed its body into `request[BODY]`; a handler only applies it to the Space.
"""

from __future__ import annotations

import random
import uuid

import orjson
from aiohttp import web

from worker.sandbox import conference, paging
from worker.sandbox.config import SandboxConfig
from worker.sandbox.errors import ErrorItem, error_response, json_response, validation_response
from worker.sandbox.space import SpaceState

BODY = web.RequestKey("sandbox_body", dict)
DROP = web.RequestKey("sandbox_drop", bool)


class ConnectionDroppedError(Exception):
    """Raised after an applied PUT whose connection is being closed unanswered, on purpose."""


class Handlers:
    """The endpoints of one Space, bound to its state and configuration."""

    def __init__(self, space: SpaceState, config: SandboxConfig) -> None:
        self._space = space
        self._config = config
        # Created ids come from a seeded RNG too, so a scripted run is reproducible.
        self._ids = random.Random(f"sandbox-create:{config.seed}")
        self._extra_names = tuple(name for name, _ in config.extra_fields)

    def _links_root(self, request: web.Request) -> str:
        """What the links start with, in the configured form (see SandboxConfig.next_form)."""
        form = self._config.next_form
        if form == "query":
            return ""
        if form == "relative":
            return paging.LIST_PATH
        if self._config.links_base is not None:
            return self._config.links_base.rstrip("/") + paging.LIST_PATH
        return f"{request.scheme}://{request.host}{paging.LIST_PATH}"

    async def list_conferences(self, request: web.Request) -> web.Response:
        query = request.query
        errors: list[ErrorItem] = []
        size = _int_param(
            query.get("page_size"),
            "page_size",
            paging.DEFAULT_PAGE_SIZE,
            paging.MIN_PAGE_SIZE,
            paging.MAX_PAGE_SIZE,
            errors,
        )
        number = _int_param(query.get("page_number"), "page_number", 0, 0, 2**31 - 1, errors)
        token = query.get("page_token")
        cursor = None
        if token is not None:
            cursor = paging.decode_cursor(token)
            if cursor is None:
                errors.append(
                    ErrorItem("page_token is not a cursor this server issued", "page_token")
                )
        elif number > 0:
            errors.append(
                ErrorItem("page_token is required when page_number is greater than 0", "page_token")
            )
        bounds = {}
        for name in ("starts_after", "ends_before"):
            raw = query.get(name)
            if raw is not None:
                bounds[name] = paging.parse_bound(raw)
                if bounds[name] is None:
                    errors.append(
                        ErrorItem(f"{name} must be an RFC 3339 datetime or a Unix timestamp", name)
                    )
        include = query.get("include_active_session")
        if include is not None and include not in {"true", "false"}:
            errors.append(
                ErrorItem("include_active_session must be true or false", "include_active_session")
            )
        if errors:
            return validation_response(errors)
        space = self._space
        matches = paging.date_filter(bounds.get("starts_after"), bounds.get("ends_before"))
        page = paging.select_page(space.order(), space.conferences, cursor, size, matches)
        filters = {name: query[name] for name in paging.FILTER_PARAMS if name in query}
        links = paging.page_links(
            self._links_root(request), request.rel_url.raw_query_string, page, number, size,
            filters, last_next=self._config.last_next,
        )
        # Serialise before the hook runs, so a test's edit "after listing" is not in this answer.
        body = orjson.dumps({"links": links, "data": page.items})
        if space.after_list_page is not None:
            space.after_list_page(space, page.items)
        return web.Response(body=body, content_type="application/json")

    async def get_conference(self, request: web.Request) -> web.Response:
        found = self._space.conferences.get(request.match_info["id"])
        if found is None:
            return error_response(404)
        return json_response(found)

    async def put_conference(self, request: web.Request) -> web.Response:
        space = self._space
        conference_id = request.match_info["id"]
        body = request[BODY]
        if space.before_put is not None:
            space.before_put(space, conference_id, body)
        current = space.conferences.get(conference_id)
        if current is None:
            return error_response(404)
        updated = conference.replace(
            current,
            body,
            conference.now_timestamp(),
            self._extra_names,
            keep_extra=self._config.extra_on_put == "keep",
            reset=self._config.reset,
        )
        space.conferences[conference_id] = updated
        space.puts_applied += 1
        space.puts_by_id[conference_id] += 1
        if request.get(DROP, False):
            transport = request.transport
            if transport is not None:
                transport.close()
            raise ConnectionDroppedError(conference_id)
        return json_response(updated)

    async def create_conference(self, request: web.Request) -> web.Response:
        space = self._space
        body = request[BODY]
        name = body.get("name")
        if name is not None and any(c["name"] == name for c in space.conferences.values()):
            return validation_response([ErrorItem(f"name {name!r} is already taken", "name")])
        conference_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        created = conference.create(
            body, conference_id, conference.now_timestamp(), dict(self._config.extra_fields)
        )
        space.add(created)
        return json_response(created)

    async def delete_conference(self, request: web.Request) -> web.Response:
        if not self._space.remove(request.match_info["id"]):
            return error_response(404)
        return web.Response(status=204)

    async def admin_stats(self, request: web.Request) -> web.Response:
        return json_response(self._space.stats())

    async def admin_conferences(self, request: web.Request) -> web.Response:
        return json_response(
            {"conferences": self._space.conferences, "seeded": self._space.seed_snapshot()}
        )


def _int_param(
    raw: str | None, name: str, default: int, low: int, high: int, errors: list[ErrorItem]
) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.append(ErrorItem(f"{name} must be an integer, not {raw!r}", name))
        return default
    if not low <= value <= high:
        errors.append(ErrorItem(f"{name} must be between {low} and {high}, not {value}", name))
        return default
    return value
