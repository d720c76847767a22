"""The layers every published-API request passes through, outermost first.

record → latency → auth → validation → faults and rate limit → handler. Admin routes
(named `admin-…`) skip them all: they are the benchmark's window, not the API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from collections.abc import Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from worker.sandbox import conference
from worker.sandbox.config import SandboxConfig
from worker.sandbox.errors import ErrorItem, error_response, validation_response
from worker.sandbox.faults import (
    Fault,
    FaultInjector,
    SlidingWindowLimiter,
    retry_after_header,
)
from worker.sandbox.handlers import BODY, DROP, ConnectionDroppedError
from worker.sandbox.space import SpaceState
from worker.sandbox.validation import OpenApiValidator, RequestRejectedError

# Route names, so a middleware can tell the operations apart without parsing paths.
LIST, GET, PUT, CREATE, DELETE = "list", "get", "put", "create", "delete"
_BODY_FIELDS = {PUT: conference.UPDATE_FIELDS, CREATE: conference.CREATE_FIELDS}


def _route(request: web.Request) -> str | None:
    return request.match_info.route.name


def _is_admin(request: web.Request) -> bool:
    name = request.match_info.route.name
    return name is not None and name.startswith("admin-")


def build_middlewares(
    space: SpaceState,
    config: SandboxConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> list[Middleware]:
    """The middlewares of one app, outermost first, closed over its Space and configuration."""
    return [
        _record(space),
        _latency(space, config.latency_s, config.capacity),
        _auth(space, config),
        _validation(
            OpenApiValidator() if config.validate else None,
            frozenset(name for name, _ in config.extra_fields),
        ),
        _misbehave(config, clock, wall_clock),
    ]


def _record(space: SpaceState) -> Middleware:
    """Log the request, count it by operation, and count its answer by status."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_admin(request):
            return await handler(request)
        space.record(request.method, request.path_qs)
        route = _route(request)
        if route == PUT:
            space.put_count += 1
        elif route == GET:
            space.get_count += 1
        elif route == LIST:
            space.list_count += 1
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # The router's own 404s and 405s, in the API's JSON shape.
            allow = exc.headers.get("Allow")
            response = error_response(exc.status, {"Allow": allow} if allow else None)
        except ConnectionDroppedError:
            space.dropped_count += 1
            # The transport is closed: aiohttp fails to write this and drops it quietly.
            return web.Response()
        space.status_counts[response.status] += 1
        return response

    return record


def _latency(space: SpaceState, latency_s: float, capacity: int | None) -> Middleware:
    """Each API request takes `latency_s`; with a capacity, only that many at once, the
    rest queued in arrival order. The time each spent (queue and service) is recorded."""
    # asyncio.Semaphore wakes its waiters first in, first out: each waits its turn.
    servers = asyncio.Semaphore(capacity) if capacity is not None else None

    async def serve(request: web.Request, handler: Handler) -> web.StreamResponse:
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return await handler(request)

    @web.middleware
    async def latency(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_admin(request):
            return await handler(request)
        started = time.monotonic()
        try:
            if servers is None:
                return await serve(request, handler)
            async with servers:
                return await serve(request, handler)
        finally:
            space.record_latency(time.monotonic() - started)

    return latency


def _auth(space: SpaceState, config: SandboxConfig) -> Middleware:
    """HTTP Basic with the Space's project id and token; the scheme name in any case."""
    expected_header = "Basic " + base64.b64encode(
        f"{config.project_id}:{config.api_token}".encode()
    ).decode("ascii")

    def authorised(header: str | None) -> bool:
        if header is None:
            return False
        # The header every well-behaved client sends, without decoding it each time.
        if header == expected_header:
            return True
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        project_id, _, token = decoded.partition(":")
        return secrets.compare_digest(
            project_id.encode(), config.project_id.encode()
        ) & secrets.compare_digest(token.encode(), config.api_token.encode())

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        revoked = (config.revoke_after_puts is not None
                   and space.put_count > config.revoke_after_puts)
        if _is_admin(request) or (not revoked and authorised(header)):
            return await handler(request)
        space.unauthorized_count += 1
        if header is not None and not authorised(header):
            # Kept so a fleet test can prove no Space was ever shown another's credentials.
            space.foreign_authorizations.append(header)
        return error_response(401, {"WWW-Authenticate": 'Basic realm="SignalWire"'})

    return auth


def _validation(validator: OpenApiValidator | None, extra: frozenset[str]) -> Middleware:
    """Parse and check the request; with no validator, only the cheap hand checks.

    A newer Space's `extra` properties are writable there, though the bundled document
    does not name them: they are set aside while the rest of the body is checked.
    """

    @web.middleware
    async def validation(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route(request)
        if route is None or _is_admin(request):
            return await handler(request)
        allowed = _BODY_FIELDS.get(route)
        raw: bytes | None = None
        if allowed is not None:
            raw = await request.read()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return validation_response([ErrorItem("request body is not valid JSON")])
            errors: list[ErrorItem] = []
            newer: dict[str, object] = {}
            if isinstance(body, dict):
                newer = {name: body.pop(name) for name in extra & body.keys()}
                errors = conference.normalise_dates(body)
                if validator is not None:
                    # openapi-core checks the bytes, which must hold the normalised dates.
                    raw = orjson.dumps(body)
            if validator is None:
                errors = conference.hand_check(body, allowed) + errors
            if errors:
                return validation_response(errors)
            request[BODY] = {**body, **newer} if newer else body
        if validator is not None:
            try:
                validator.check(request, raw, allowed or ())
            except RequestRejectedError as rejected:
                if rejected.status == 422:
                    return validation_response(rejected.items)
                return error_response(rejected.status)
        return await handler(request)

    return validation


def _misbehave(
    config: SandboxConfig, clock: Callable[[], float], wall_clock: Callable[[], float]
) -> Middleware:
    """The PUT rate limit, then the seeded faults, in the order FaultConfig lists them."""
    limiter = (
        SlidingWindowLimiter(config.put_rate_limit, config.rate_window_s)
        if config.put_rate_limit is not None
        else None
    )
    faults = FaultInjector(config.faults, config.seed)

    def too_many(seconds: float, *, http_date: bool) -> web.Response:
        if not config.retry_after:
            return error_response(429)
        header = retry_after_header(seconds, http_date=http_date, wall_clock=wall_clock())
        return error_response(429, {"Retry-After": header})

    @web.middleware
    async def misbehave(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route(request)
        if route == PUT:
            # A refused PUT takes no slot, so only admitted ones meet the faults below.
            if limiter is not None and (wait_s := limiter.admit(clock())) > 0:
                return too_many(wait_s, http_date=False)
            fault = faults.for_put()
            if fault is Fault.ERROR_500:
                return error_response(500)
            if fault is Fault.ERROR_503:
                return error_response(503)
            if fault is Fault.ERROR_429:
                return too_many(
                    config.faults.retry_after_s, http_date=config.faults.retry_after_http_date
                )
            if fault is Fault.DROP_AFTER_APPLY:
                request[DROP] = True
        elif route in {GET, LIST} and faults.for_get():
            return error_response(500)
        return await handler(request)

    return misbehave
