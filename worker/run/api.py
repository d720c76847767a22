"""The Space's REST API as three calls: list a page, get one, put one.

This is the only module that speaks HTTP. It translates aiohttp's exceptions and the
API's error answers into the error tree once, here, carrying the server's own messages.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from worker.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    RetryableApiError,
)
from worker.retry import is_retryable_status
from worker.run.logs import REDACTED, secret_forms
from worker.space import Space

CONFERENCES = "/api/video/conferences"
# A conference as the API gives it: the JSON object, untyped past its keys.
Conference = dict[str, Any]
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class Page:
    """One list page: its conferences and the raw `links.next`, not yet checked."""

    conferences: list[dict[str, Any]]
    next_link: str | None


def error_messages(payload: object) -> tuple[str, ...]:
    """The server's own words from either error shape: `{"errors": [{"message",
    "attribute"}]}` (422) or `{"error": "..."}`."""
    if not isinstance(payload, Mapping):
        return ()
    out: list[str] = []
    items = payload.get("errors")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                message = str(item.get("message", item.get("code", "error")))
                attribute = item.get("attribute")
                out.append(f"{attribute}: {message}" if attribute else message)
    single = payload.get("error")
    if isinstance(single, str):
        out.append(single)
    return tuple(out)


class SpaceClient:
    """Authenticated calls to one Space. The session is injected (and owned by the
    caller); the Authorization header is added per request, only to Space URLs."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        space: Space,
        authorization: str,
        *,
        timeout_s: float,
        secrets: tuple[str, ...] = (),
        project_id: str = "",
    ) -> None:
        self._session = session
        self._space = space
        self._project_id = project_id  # named when the Space refuses the credentials
        self._headers = {**_JSON_HEADERS, "Authorization": authorization}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # An error answer may quote what we sent; its text goes into events and reports.
        self._secret_forms = tuple(f.encode() for f in secret_forms(secrets))

    @property
    def space(self) -> Space:
        return self._space

    def first_page_url(self, page_size: int, filters: Mapping[str, str] | None = None) -> str:
        query = urlencode({"page_size": page_size, **(filters or {})})
        return self._space.url(f"{CONFERENCES}?{query}")

    async def read_page(self, url: str) -> dict[str, Any]:
        """A list page's answer as it came, shape unchecked (`validate --online` checks it
        whole against the spec; a run goes through `list_page`)."""
        # Callers resolve links through space.resolve_link; this is a last guard so a
        # bug elsewhere still cannot send credentials off the Space.
        if not self._space.owns(url):
            raise ApiError(None, ("refused a URL that is not on the Space",))
        return await self._request("GET", url, None)

    async def list_page(self, url: str) -> Page:
        payload = await self.read_page(url)
        data = payload.get("data")
        links = payload.get("links")
        if not isinstance(data, list) or not isinstance(links, Mapping):
            raise ApiError(200, ("list answer has no `data` list or `links` object",))
        for index, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise ApiError(200, (f"list answer's data[{index}] is not a conference with "
                                     "a string id",))
        next_link = links.get("next")
        return Page(data, next_link if isinstance(next_link, str) and next_link else None)

    async def get(self, conference_id: str) -> dict[str, Any]:
        return await self._request("GET", self._space.url(f"{CONFERENCES}/{conference_id}"), None)

    async def put(self, conference_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._request(
            "PUT", self._space.url(f"{CONFERENCES}/{conference_id}"), orjson.dumps(body)
        )

    async def _request(self, method: str, url: str, data: bytes | None) -> dict[str, Any]:
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                headers=self._headers,
                timeout=self._timeout,
                # A redirect could lead anywhere; never follow one with our credentials.
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:
            raise _unreachable(exc) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise RetryableApiError(None, (_transport_message(exc),)) from exc
        except TimeoutError as exc:
            raise RetryableApiError(None, ("request timed out",)) from exc
        if status != 200:
            for form in self._secret_forms:
                raw = raw.replace(form, REDACTED.encode())
        return _interpret(status, raw, retry_after, project_id=self._project_id,
                          host=self._space.host)


def _transport_message(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed by the server before it answered"
    return f"connection failed ({type(exc).__name__})"


def _unreachable(exc: aiohttp.ClientConnectorError) -> ApiError:
    """Which step of reaching the Space failed (DNS, TCP or TLS), naming the host. A
    name that does not exist, or TLS that fails, will not mend within a retry: those
    are not retried; a refused or reset connection may be a restart, and is."""
    where = f"{exc.host}:{exc.port}"
    os_error = exc.os_error
    if isinstance(exc, aiohttp.ClientSSLError) or isinstance(os_error, ssl.SSLError):
        reason = (getattr(exc, "certificate_error", None) or os_error)
        detail = (getattr(reason, "verify_message", None) or getattr(reason, "reason", None)
                  or str(reason))
        return ApiError(None, (f"cannot reach the Space: the TLS handshake with {where} failed "
                               f"({detail}); check that it serves https there, with a "
                               "certificate this machine trusts",))
    if isinstance(os_error, socket.gaierror):
        text = (f"cannot reach the Space: the DNS lookup of {exc.host} failed "
                f"({os_error.strerror}); check the Space's name (`space` in the config, or "
                "SIGNALWIRE_SPACE) and this machine's DNS")
        kind = ApiError if os_error.errno == socket.EAI_NONAME else RetryableApiError
        return kind(None, (text,))
    why = os.strerror(os_error.errno) if os_error.errno else (os_error.strerror or str(os_error))
    return RetryableApiError(None, (f"cannot reach the Space: the TCP connection to {where} "
                                    f"failed ({why}); check the host and port, and that no "
                                    "firewall or proxy is in the way",))


def _interpret(status: int, raw: bytes, retry_after: str | None, *, project_id: str = "",
               host: str = "") -> dict[str, Any]:
    try:
        payload: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        payload = None
    if status == 200:
        if not isinstance(payload, dict):
            raise ApiError(status, ("answer was not a JSON object",))
        return payload
    messages = error_messages(payload)
    if status in (401, 403):
        raise AuthError(status, messages, project_id=project_id, host=host)
    if status == 404:
        raise NotFoundError(status, messages)
    if is_retryable_status(status):
        raise RetryableApiError(status, messages, retry_after=retry_after)
    raise ApiError(status, messages)


__all__ = ["CONFERENCES", "Conference", "Page", "SpaceClient", "error_messages"]
