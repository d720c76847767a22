"""Every request checked against the published OpenAPI document, errors in SignalWire's shape.

openapi-core does the checking; this module adapts an aiohttp request to it and turns
its exceptions into 422 items that name the offending attribute.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.validation.request.exceptions import (
    MissingRequestBodyError,
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)

from worker.sandbox import spec
from worker.sandbox.errors import ErrorItem

# openapi-core matches the request's host against the document's `servers`; the sandbox
# answers on loopback, so it presents requests as if sent to the documented server.
_SPEC_HOST = "https://example.signalwire.com"


class _OpenApiRequest:
    """The view of an aiohttp request that openapi-core's request protocol asks for."""

    __slots__ = ("body", "content_type", "method", "parameters", "path")

    host_url = _SPEC_HOST

    def __init__(self, request: web.Request, body: bytes | None) -> None:
        self.path = request.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=request.query, header=request.headers, cookie=request.cookies
        )
        self.body = body
        self.content_type = request.content_type


class RequestRejectedError(Exception):
    """A request openapi-core refused, as the status and items the sandbox answers with."""

    def __init__(self, status: int, items: list[ErrorItem]) -> None:
        super().__init__(status, items)
        self.status = status
        self.items = items


@functools.cache
def _openapi() -> OpenAPI:
    # Building it takes a fifth of a second; validating with it keeps no state, so every
    # app in the process shares one.
    return OpenAPI.from_dict(spec.spec_document())


class OpenApiValidator:
    """Validates requests against the published document."""

    def __init__(self) -> None:
        self._openapi = _openapi()

    def check(self, request: web.Request, body: bytes | None, allowed: Iterable[str]) -> None:
        """Raise `RequestRejectedError` if the request breaks the document.

        `allowed` names the body's permitted fields, to say which ones a closed schema refused.
        """
        items: list[ErrorItem] = []
        for error in self._openapi.iter_request_errors(_OpenApiRequest(request, body)):
            if isinstance(error, PathNotFound):
                raise RequestRejectedError(404, [])
            if isinstance(error, OperationNotFound):
                raise RequestRejectedError(405, [])
            if isinstance(error, SecurityValidationError):
                raise RequestRejectedError(401, [])
            items.extend(translate(error, frozenset(allowed)))
        if items:
            raise RequestRejectedError(422, items)


def translate(error: Exception, allowed: frozenset[str]) -> list[ErrorItem]:
    """One openapi-core error as 422 items, each naming its attribute where it can be found."""
    cause = error.__cause__
    if isinstance(error, ParameterValidationError):
        detail = _schema_messages(cause) or [_cause_message(cause)]
        return [ErrorItem(f"{error.name} is invalid: {text}", error.name) for text in detail]
    if isinstance(error, MissingRequestBodyError):
        return [ErrorItem("request body is required")]
    if isinstance(error, RequestBodyValidationError):
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors is None:
            return [ErrorItem(f"request body is invalid: {_cause_message(cause)}")]
        items: list[ErrorItem] = []
        for schema_error in schema_errors:
            items.extend(_body_items(schema_error, allowed))
        return items
    return [ErrorItem(str(error))]


def _body_items(schema_error: Any, allowed: frozenset[str]) -> list[ErrorItem]:
    """Items for one jsonschema error found in a request body."""
    path = list(schema_error.absolute_path)
    attribute = str(path[0]) if path else None
    validator = schema_error.validator
    instance = schema_error.instance
    if validator == "required" and isinstance(instance, dict):
        return [
            ErrorItem(f"{name} is required", str(name))
            for name in schema_error.validator_value
            if name not in instance
        ]
    if validator == "unevaluatedProperties" and isinstance(instance, dict):
        return [
            ErrorItem(f"{key} is not a permitted field", str(key))
            for key in instance
            if key not in allowed
        ]
    if instance is None and attribute is not None:
        return [ErrorItem(f"{attribute} must not be null", attribute)]
    if attribute is None:
        return [ErrorItem(f"request body is invalid: {schema_error.message}")]
    return [ErrorItem(f"{attribute} is invalid: {schema_error.message}", attribute)]


def _schema_messages(cause: BaseException | None) -> list[str]:
    return [str(item.message) for item in getattr(cause, "schema_errors", None) or ()]


def _cause_message(cause: BaseException | None) -> str:
    if cause is None:
        return "it does not match the published schema"
    value = getattr(cause, "value", None)
    kind = getattr(cause, "type", None)
    if value is not None and kind is not None:
        return f"{value!r} is not a valid {kind}"
    return str(cause)
