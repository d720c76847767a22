"""JSON answers in SignalWire's error format, built once where they are constant.

422s carry a list of `{type, code, message, attribute, url}` items; every other error
is a bare `{"error": reason}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiohttp import web

ERROR_CODES_URL = "https://developer.signalwire.com/rest/overview/error-codes"

REASONS = {
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """One validation failure: what is wrong, and which request attribute it is about."""

    message: str
    attribute: str | None = None


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


def error_response(status: int, headers: dict[str, str] | None = None) -> web.Response:
    reason = REASONS.get(status, "Error")
    return json_response({"error": reason}, status=status, headers=headers)


def validation_response(items: list[ErrorItem]) -> web.Response:
    return json_response(
        {
            "errors": [
                {
                    "type": "validation_error",
                    "code": "invalid_parameter",
                    "message": item.message,
                    "attribute": item.attribute,
                    "url": ERROR_CODES_URL,
                }
                for item in items
            ]
        },
        status=422,
    )
