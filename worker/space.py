"""Where the Space is, and which URLs may carry its credentials.

A Space is `https://<name>.signalwire.com` or a loopback address; any other host must be
allowed by the operator by name (`REBRAND_ALLOW_SPACE_HOST` or `--allow-space-host`, never
the config file, which may come from a pull request). Credentials go only to the configured
Space: a pagination link that resolves to another scheme, host or port is refused before
any request is made to it.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from worker.errors import ConfigError, UnsafeLinkError
from worker.text import clipped

_DEFAULT_PORTS = {"http": 80, "https": 443}
# One DNS label under signalwire.com: the shape of every Space's host.
_SPACE_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.signalwire\.com")
# A DNS label as it goes on the wire (RFC 1035, with `_`, which some private names use).
_ASCII_LABEL = re.compile(r"[a-z0-9_-]+")
MAX_LABEL = 63
MAX_HOST = 253
ALLOW_ENV = "REBRAND_ALLOW_SPACE_HOST"
ALLOW_FLAG = "--allow-space-host"
_LOOKS_LIKE = ("A Space address looks like example.signalwire.com, "
               "https://example.signalwire.com or, on this machine, http://127.0.0.1:8080")


def allowed_hosts(env: Mapping[str, str], flags: Iterable[str] | None = ()) -> frozenset[str]:
    """Hosts the operator allows as a Space on purpose: `REBRAND_ALLOW_SPACE_HOST`
    (comma-separated) and each `--allow-space-host`. Never read from the config file."""
    named = [*((ALLOW_ENV, n) for n in env.get(ALLOW_ENV, "").split(",")),
             *((ALLOW_FLAG, n) for n in flags or ())]
    hosts = set()
    for source, name in named:
        host = name.strip().lower().strip("[]")
        if not host:
            continue
        problem = host_problem(host)
        if problem:
            raise ConfigError(f"{source}: {clipped(name)} is not a host name: {problem}. "
                              f"{_LOOKS_LIKE}")
        hosts.add(host)
    return frozenset(hosts)


def host_problem(host: str) -> str | None:
    """What makes `host` (as urlsplit gives it: lower case, no brackets) no host name a
    request could go to; None when it is one. An IP address is one."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    labels = host.removesuffix(".").split(".")  # one final dot: a fully qualified name
    problems = (_label_problem(label) for label in labels)
    found = next((p for p in problems if p), None)
    if found:
        return found
    length = len(".".join(_ascii(label) for label in labels))
    if length > MAX_HOST:
        return f"it is {length} characters; a host name has at most {MAX_HOST}"
    return None


def _ascii(label: str) -> str:
    return label if label.isascii() else encodings.idna.ToASCII(label).decode("ascii")


def _label_problem(label: str) -> str | None:
    if not label:
        return "it has an empty label (two dots in a row, or a dot at the start)"
    shown = clipped(label, 30)
    try:
        written = _ascii(label)
    except UnicodeError:
        written = ""
    if not _ASCII_LABEL.fullmatch(written):
        if not label.isascii():
            return f"IDNA cannot write its label {shown} in ASCII; write the name's xn-- form"
        return f"its label {shown} may hold only letters, digits, '-' and '_'"
    if written.startswith("-") or written.endswith("-"):
        return f"its label {shown} starts or ends with '-'"
    if len(written) > MAX_LABEL:
        return f"its label {shown} is {len(written)} characters; a label has at most {MAX_LABEL}"
    if written.startswith("xn--") and not _is_punycode(written):
        return f"its label {shown} is not valid punycode; check the xn-- name, or write it out"
    return None


def _is_punycode(label: str) -> bool:
    """Does this `xn--` label decode to a name that encodes back to it?"""
    try:
        name = label[4:].encode("ascii").decode("punycode")
        return bool(name) and encodings.idna.ToASCII(name).decode("ascii") == label
    except UnicodeError:
        return False


def is_loopback(host: str) -> bool:
    """Plain http is allowed only to this machine: `localhost` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Space:
    """A Space's origin: scheme, host and port, and nothing else."""

    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if _DEFAULT_PORTS[self.scheme] == self.port:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, path_and_query: str) -> str:
        return self.origin + path_and_query

    def owns(self, url: str) -> bool:
        """Is this absolute URL on this Space (same scheme, host and port)?"""
        try:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme, -1)
        except ValueError:
            return False
        return (
            parts.scheme == self.scheme
            and (parts.hostname or "").lower() == self.host.lower()
            and port == self.port
            and parts.username is None
            and parts.password is None
        )


def parse_space(text: str, *, key: str = "space",
                allow: frozenset[str] = frozenset()) -> Space:
    """Read `name.signalwire.com`, `https://name.signalwire.com` or `http://127.0.0.1:PORT`;
    another https host only when `allow` names it."""
    space = read_origin(text, key=key)
    host = space.host
    if not (is_loopback(host) or _SPACE_HOST.fullmatch(host.lower())
            or host.lower() in allow):
        raise ConfigError(
            f"{key}: {host} is not a SignalWire Space (https://<name>.signalwire.com) or a "
            f"loopback address, so the credentials are not sent there. To use this host on "
            f"purpose, set {ALLOW_ENV}={host} in the environment or pass {ALLOW_FLAG} {host} "
            "(a config-file key cannot allow it: the config may come from a pull request)"
        )
    return space


def read_origin(text: str, *, key: str) -> Space:
    """The origin a text names, checked for shape (https, or http to loopback; no path,
    no userinfo) but not for whose host it is."""
    raw = text.strip()
    if not raw:
        raise ConfigError(f"{key}: is empty; set it to your Space, e.g. example.signalwire.com")
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{key}: {clipped(text)!r} is not a valid host or URL ({exc}). "
                          f"{_LOOKS_LIKE}") from exc
    if parts.scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"{key}: scheme {parts.scheme!r} is not supported; use https://")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{key}: must not carry credentials; set SIGNALWIRE_PROJECT_ID and "
            "SIGNALWIRE_API_TOKEN in the environment instead"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"{key}: {clipped(text)!r} has a path or query; give only the Space's host, "
            "e.g. example.signalwire.com"
        )
    host = parts.hostname
    if not host:
        raise ConfigError(f"{key}: {clipped(text)!r} names no host")
    problem = host_problem(host)
    if problem:
        raise ConfigError(f"{key}: {clipped(text)} is not a host name: {problem}. "
                          f"{_LOOKS_LIKE}")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"{key}: plain http:// is allowed only for a loopback address; "
            f"use https://{host} instead"
        )
    return Space(parts.scheme, host, port or _DEFAULT_PORTS[parts.scheme])


def resolve_link(space: Space, current_url: str, link: str) -> str:
    """Resolve a `links.next` (absolute or relative) against the page it came from, and
    refuse it unless it stays on the Space."""
    try:
        resolved = urljoin(current_url, link)
    except ValueError:  # e.g. "https://[::1/x": refused like any link we cannot place
        raise UnsafeLinkError(
            f"refused to follow an unparseable links.next: it cannot be shown to be on the "
            f"configured Space ({space.origin}), so no request or credentials go there"
        ) from None
    if not space.owns(resolved):
        raise UnsafeLinkError(
            f"refused to follow links.next to {_describe(resolved)}: it is not the "
            f"configured Space ({space.origin}), so no request or credentials go there"
        )
    return resolved


def _describe(url: str) -> str:
    """The link's origin only, so a hostile link cannot smuggle text into our logs; and
    whether it carries a user name or password (never which), as that alone may be why
    a link to the Space's own origin is refused."""
    try:
        parts = urlsplit(url)
        userinfo = "@" in parts.netloc
        origin = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"[:200]
    except ValueError:
        return "an unparseable URL"
    return f"{origin} with a user name or password in it" if userinfo else origin


@dataclass(frozen=True, slots=True)
class NamedSpace:
    """The Space the operator named for a restore, and where they named it."""

    space: Space
    source: str  # "--space", "SIGNALWIRE_SPACE", "--config config.yaml"


def restore_space(named: NamedSpace | None, header_space: object, journal: str) -> Space:
    """The Space a restore may send credentials to: the one the operator named, and only
    when the journal's header agrees. A journal is a file anyone could have edited, so its
    header never chooses where the token goes; it can only fail to match."""
    try:
        # Only compared with the named Space, never sent anything: any host will do.
        written = read_origin(header_space if isinstance(header_space, str) else "",
                              key="journal header space")
    except ConfigError:
        shown = repr(header_space)[:100]
        raise ConfigError(
            f"journal {journal}: its header names no usable Space ({shown}); "
            "this is not a journal rebrand wrote, or it was edited"
        ) from None
    if named is None:
        raise ConfigError(
            f"restore: name the Space to restore. Credentials go only to a Space you name, "
            f"never to the one a journal points at. This journal was written against "
            f"{written.origin}; if that is your Space, run "
            f"`SIGNALWIRE_SPACE={_as_named(written)} rebrand restore {journal}` "
            f"(or pass --space {_as_named(written)})"
        )
    if named.space != written:
        raise ConfigError(
            f"restore: the journal {journal} was written against {written.origin}, but "
            f"{named.source} names {named.space.origin}; nothing was sent. Credentials go "
            f"only to the Space you name, and one Space's journal is never restored onto "
            f"another. If the journal's Space is yours, name it: --space "
            f"{_as_named(written)}; otherwise use a journal written against "
            f"{named.space.origin}"
        )
    return named.space


def _as_named(space: Space) -> str:
    """How to write a Space on the command line: the bare host when https is implied."""
    if space.scheme == "https" and space.port == _DEFAULT_PORTS["https"]:
        return space.host
    return space.origin
