"""The Space's REST API as three calls: list a page, get one, put one.

This is the only module that speaks HTTP. It translates aiohttp's exceptions and the
API's error answers into the error tree once, here, carrying the server's own messages.
"""

from __future__ import annotations

import html
import os
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode, urlsplit

import aiohttp
import orjson

from worker.errors import (
    ApiError,
    AuthError,
    NotFoundError,
    RefusedRequestError,
    RetryableApiError,
)
from worker.retry import is_retryable_status
from worker.run.logs import REDACTED, scrub, secret_forms
from worker.space import Space
from worker.text import cut

CONFERENCES = "/api/video/conferences"
# The most read from one answer, after decompression. A page holds at most 1,000
# conferences (about 2 MB); the pod's limit is 256 Mi.
MAX_BODY_BYTES = 32 << 20
# How much of an error answer in a shape we do not know is shown.
SNIPPET_CHARS = 200
# The spec's path parameter is `format: uuid`: an id is one path segment, never a path.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A conference as the API gives it: the JSON object, untyped past its keys.
Conference = dict[str, Any]
# An error body that is an HTML page (a proxy's 502, a gateway's 504), and its parts.
_HTML = re.compile(r"\s*<(?:!doctype|html|head|body|title|h1)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
# An HTML character reference, numeric or named (`&#115;`, `&#x73;`, `&sol;`).
_HTML_REF = re.compile(rb"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
# Three or more percent-encoded bytes in a row: where a secret encoded byte by byte hides.
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}){3,}")
# A proxy's answers that its upstream failed or timed out: the Space may still have applied
# the request.
_GATEWAY_STATUSES = frozenset({502, 504})
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
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._session = session
        self._space = space
        self._project_id = project_id  # named when the Space refuses the credentials
        self._headers = {**_JSON_HEADERS, "Authorization": authorization}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # An error answer may quote what we sent; its text goes into events and reports.
        self._text_forms = secret_forms(secrets)
        self.max_body_bytes = max_body_bytes
        # What a successful answer is searched for: each secret as JSON would carry it,
        # and, in the answer decoded and written again, as its values would (no escapes).
        self._answer_needles = tuple({
            form.encode() for secret in secrets if secret
            for form in (secret.rstrip("="), secret.rstrip("=").replace("/", "\\/"))})
        self._value_needles = tuple({
            orjson.dumps(secret.rstrip("="))[1:-1] for secret in secrets if secret})

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
        if next_link is not None and not isinstance(next_link, str):
            # Read as "no next page", it would end the listing early and the run exit 0
            # with part of the Space untouched.
            raise ApiError(200, (f"list answer's links.next is "
                                 f"{_shown(orjson.dumps(next_link).decode(), quoted=False)}, "
                                 "not a link (the spec's type for it is a string); the "
                                 "listing cannot go on",))
        # A null or empty `next` is the last page's, as many APIs write it.
        return Page(data, next_link or None)

    async def get(self, conference_id: str) -> dict[str, Any]:
        return await self._request("GET", self._conference_url(conference_id), None)

    async def put(self, conference_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._request("PUT", self._conference_url(conference_id),
                                   orjson.dumps(body))

    def _conference_url(self, conference_id: str) -> str:
        # Ids come from the listing (or a journal). Put into the path as they came, `..`,
        # `/` or `?` would steer a request carrying our credentials to another endpoint.
        if not _UUID.fullmatch(conference_id):
            raise RefusedRequestError(
                f"conference id {_shown(conference_id)} is not a UUID, as the API documents "
                "its ids; no request was sent for it (an id goes into the request path)")
        return self._space.url(f"{CONFERENCES}/{conference_id}")

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
                status = response.status
                retry_after = response.headers.get("Retry-After")
                raw = await self._read(response, method, url)
        except aiohttp.ClientConnectorError as exc:
            raise _unreachable(exc) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise RetryableApiError(None, (_transport_message(exc),), unanswered=True) from exc
        except TimeoutError as exc:
            raise RetryableApiError(None, ("request timed out",), unanswered=True) from exc
        payload = _interpret(status, raw, retry_after, method=method,
                             project_id=self._project_id, host=self._space.host,
                             clean=self._clean)
        if self._carries_secret(raw, payload):
            # Its data would go into the journal and back into a PUT: use none of it.
            raise ApiError(status, (
                f"the answer to {method} {request_path(url)} carries this run's credentials "
                "(a server echoing our request?); nothing from it was used or journalled; "
                f"{PUT_MAY_HAVE_LANDED if method == 'PUT' else ASK_AGAIN}",))
        return payload

    def _carries_secret(self, raw: bytes, payload: Any) -> bool:
        """Whether a successful answer holds a secret, however its JSON wrote it."""
        if any(needle in raw for needle in self._answer_needles):
            return True
        # `&#80;&#84;...` hides a secret too, as a browser would show it. Searched for only
        # where a character reference is (a list page with a "Q&A" room in it has none):
        # decoding a whole page costs a copy of it in memory.
        if _HTML_REF.search(raw) and any(
                needle in html.unescape(raw.decode("utf-8", "replace")).encode()
                for needle in self._value_needles):
            return True
        if b"\\" not in raw and b"%" not in raw:
            return False  # nothing escaped or encoded: the search above saw it all
        # `\u0050\u0054...` and `%50%54...` hide a secret from a search of the bytes;
        # the values, as they would be journalled and sent back, do not.
        values = orjson.dumps(payload)
        decoded = unquote_to_bytes(values) if b"%" in values else values
        return any(needle in values or needle in decoded for needle in self._value_needles)

    def _clean(self, text: str) -> str:
        """A server's words with every form of a secret hidden, as they are decoded."""
        text = scrub(text, self._text_forms)
        if "%" in text:
            # A secret percent-encoded byte by byte has no form `secret_forms` can list.
            text = _PERCENT_RUN.sub(
                lambda run: REDACTED if any(
                    needle in unquote_to_bytes(run.group()) for needle in self._value_needles)
                else run.group(), text)
        return text

    async def _read(self, response: aiohttp.ClientResponse, method: str, url: str) -> bytes:
        """The body, refused past `max_body_bytes` (counted after decompression, which
        aiohttp applies as it streams)."""
        limit = self.max_body_bytes
        declared = response.content_length
        chunks: list[bytes] = []
        size = 0
        if declared is None or declared <= limit:
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
        if size > limit or (declared is not None and declared > limit):
            raise ApiError(response.status, (
                f"the answer to {method} {request_path(url)} is larger than "
                f"{limit >> 20} MiB (a Space answers with one small JSON object); not read "
                f"further; {_unusable_success(method)}",))
        return b"".join(chunks)


def _transport_message(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed by the server before it answered"
    return f"connection failed ({type(exc).__name__})"


def request_path(url: str) -> str:
    """A URL's path and query, for messages: never the origin's userinfo, and short."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparseable URL)"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return _shown(path, quoted=False)


def _shown(text: str, *, quoted: bool = True, limit: int = 120) -> str:
    """Text from a server, safe to print: control characters escaped, cut to `limit`
    before an escape (ours or the JSON's), never inside it."""
    shown = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    shown = shown if len(shown) <= limit else cut(shown, limit, escaped=True)[0] + "..."
    return repr(shown) if quoted else shown


def snippet(raw: bytes, payload: Any, clean: Callable[[str], str] = str) -> str:
    """A short, printable excerpt of an error answer in a shape we do not know, `clean`ed
    whole before it is cut (cut first, half a secret would show)."""
    text = (orjson.dumps(payload).decode() if payload is not None
            else raw.decode("utf-8", errors="replace"))
    if payload is None and _HTML.match(text):
        text = "an HTML page: " + _page_words(text, clean)
    text = clean(" ".join(text.split()))
    return "answer: " + _shown(text, quoted=False, limit=SNIPPET_CHARS)


def _page_words(page: str, clean: Callable[[str], str]) -> str:
    """What an HTML page (a proxy's error, a login page) says: its title, or its words;
    its markup says nothing. Cleaned before its tags go: `<r>` in a token is a tag, and
    without it the rest of the token is no form of it."""
    title = _TITLE.search(page)
    return _TAG.sub(" ", clean(title.group(1) if title else page))


def _html_page(raw: bytes, clean: Callable[[str], str]) -> str | None:
    """The short words of a body that is an HTML page, `clean`ed; None if it is not one."""
    text = raw.decode("utf-8", errors="replace")
    if not _HTML.match(text):
        return None
    return _shown(clean(" ".join(_page_words(text, clean).split())), quoted=False,
                  limit=80)


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


# What to do about a read whose answer cannot be used (nothing was written from it).
ASK_AGAIN = ("run again, and if the Space answers so again, check that `space` names the "
             "Space itself, not a proxy or a login page in front of it")
# What a PUT answered with success, but not with the conference, means, and what to do.
PUT_MAY_HAVE_LANDED = (
    "the write may have landed but cannot be checked from this answer: running the same "
    "command again reads the conference afresh (a write that took is skipped), and "
    "`rebrand restore` with this run's journal undoes it")


def _unusable_success(method: str) -> str:
    """What a success answer that cannot be used means for the request it answered, and
    what to do: a PUT's write may have landed (the Space said it took it); a GET wrote
    nothing."""
    if method == "PUT":
        return PUT_MAY_HAVE_LANDED
    return f"nothing was written from it: {ASK_AGAIN}"


def _interpret(status: int, raw: bytes, retry_after: str | None, *, method: str,
               project_id: str = "", host: str = "",
               clean: Callable[[str], str] = str) -> dict[str, Any]:
    """A 200's JSON object, or the error its status and body mean, with the server's
    words `clean`ed (decoded, so an echo hidden by JSON escapes shows to `clean`)."""
    undecodable: str | None = None
    try:
        payload: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        payload = None
        undecodable = str(exc)  # where and why, never the text itself
    if 200 < status < 300:
        # A success the spec does not document for these calls: its answer is not the
        # conference, so it cannot be checked or used.
        raise ApiError(status, (
            f"the Space answered HTTP {status}, not the 200 with the JSON that the spec "
            f"documents; {_unusable_success(method)}",))
    if status == 200:
        page = _html_page(raw, clean) if undecodable is not None else None
        if page is not None:
            # A login page or a proxy's, answering 200 in the Space's place: its title
            # says what answered; where the JSON parse failed does not.
            raise ApiError(status, (f"answer is an HTML page ({page}), not JSON; "
                                    f"{_unusable_success(method)}",))
        if undecodable is not None:
            raise ApiError(status, (f"answer is not valid JSON ({undecodable}); "
                                    f"{_unusable_success(method)}",))
        if not isinstance(payload, dict):
            raise ApiError(status, ("answer was not a JSON object; "
                                    f"{_unusable_success(method)}",))
        return payload
    messages = tuple(clean(message) for message in error_messages(payload))
    if not messages and raw.strip():
        messages = (snippet(raw, payload, clean),)
    if status in (401, 403):
        raise AuthError(status, messages, project_id=project_id, host=host)
    if status == 404:
        raise NotFoundError(status, messages)
    if is_retryable_status(status):
        # A gateway's 502 or 504 is not the Space's answer: behind it, a write may land.
        raise RetryableApiError(status, messages, retry_after=retry_after,
                                unanswered=status in _GATEWAY_STATUSES)
    raise ApiError(status, messages)


__all__ = ["ASK_AGAIN", "CONFERENCES", "MAX_BODY_BYTES", "PUT_MAY_HAVE_LANDED", "Conference",
           "Page", "SpaceClient", "error_messages", "request_path"]
