"""Where the Space is, and the rule that credentials never leave it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from worker.errors import ConfigError, UnsafeLinkError
from worker.space import Space, allowed_hosts, is_loopback, parse_space, resolve_link

SPACE = Space("https", "example.signalwire.com", 443)
LOCAL = Space("http", "127.0.0.1", 8080)
LIST = "/api/video/conferences"


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.9.9.9", "::1",
                                  "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["example.com", "10.0.0.1", "0.0.0.0", "::", "localhost.evil", "2001:db8::1", ""],  # noqa: S104
)
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("space", "origin"),
    [
        (SPACE, "https://example.signalwire.com"),
        (Space("https", "example.signalwire.com", 8443), "https://example.signalwire.com:8443"),
        (LOCAL, "http://127.0.0.1:8080"),
        (Space("http", "::1", 8080), "http://[::1]:8080"),
        (Space("http", "localhost", 80), "http://localhost"),
    ],
)
def test_origin_is_scheme_host_and_non_default_port(space: Space, origin: str) -> None:
    assert space.origin == origin
    assert parse_space(origin) == space


def test_parse_space_names_the_key_it_was_given() -> None:
    with pytest.raises(ConfigError, match=r"^SIGNALWIRE_SPACE: plain http"):
        parse_space("http://example.com", key="SIGNALWIRE_SPACE")


@pytest.mark.parametrize(
    "link",
    [
        f"https://example.signalwire.com{LIST}?page_token=abc",
        f"https://EXAMPLE.signalwire.com:443{LIST}?page_token=abc",
        f"{LIST}?page_token=abc",
        "?page_token=abc",
    ],
)
def test_links_on_the_space_resolve_to_it(link: str) -> None:
    current = f"https://example.signalwire.com{LIST}?page_size=50"
    resolved = resolve_link(SPACE, current, link)
    parts = urlsplit(resolved)
    assert (parts.scheme, parts.hostname, parts.port or 443) == (
        "https", "example.signalwire.com", 443)
    assert (parts.path, parts.query) == (LIST, "page_token=abc")


def test_a_relative_link_resolves_against_a_loopback_space() -> None:
    current = f"http://127.0.0.1:8080{LIST}?page_size=2"
    assert resolve_link(LOCAL, current, f"{LIST}?page_token=x") == (
        f"http://127.0.0.1:8080{LIST}?page_token=x")


@pytest.mark.parametrize(
    "link",
    [
        f"http://example.signalwire.com{LIST}?page_token=abc",  # scheme
        f"https://evil.example.com{LIST}?page_token=abc",  # host
        f"https://example.signalwire.com.evil.com{LIST}",  # host suffix trick
        f"https://example.signalwire.com:8443{LIST}",  # port
        f"//evil.example.com{LIST}",  # scheme-relative
        f"https://user:pw@example.signalwire.com{LIST}",  # userinfo
        f"https://example.signalwire.com@evil.example.com{LIST}",  # userinfo trick
        f"ftp://example.signalwire.com{LIST}",
        "javascript:alert(1)",
        "https://[::1/bad",
    ],
)
def test_links_off_the_space_are_refused(link: str) -> None:
    with pytest.raises(UnsafeLinkError) as caught:
        resolve_link(SPACE, f"https://example.signalwire.com{LIST}", link)
    assert "example.signalwire.com" in str(caught.value)
    assert caught.value.exit_code == 4


def test_a_refused_link_is_described_by_its_origin_only() -> None:
    with pytest.raises(UnsafeLinkError) as caught:
        resolve_link(SPACE, f"https://example.signalwire.com{LIST}",
                     "https://u:secret@evil.example.com/x?token=leak")
    message = str(caught.value)
    assert "https://evil.example.com" in message
    assert "secret" not in message
    assert "leak" not in message


def test_a_link_to_another_loopback_port_is_refused() -> None:
    with pytest.raises(UnsafeLinkError):
        resolve_link(LOCAL, f"http://127.0.0.1:8080{LIST}", f"http://127.0.0.1:8081{LIST}")
    with pytest.raises(UnsafeLinkError):
        resolve_link(LOCAL, f"http://127.0.0.1:8080{LIST}", f"http://localhost:8080{LIST}")


def test_a_link_refused_only_for_its_user_name_says_so() -> None:
    # Same scheme, host and port as the Space: "not the configured Space" would show the
    # same origin on both sides and leave the operator puzzled.
    with pytest.raises(UnsafeLinkError) as caught:
        resolve_link(SPACE, f"https://example.signalwire.com{LIST}",
                     f"https://user:secret@example.signalwire.com{LIST}")
    message = str(caught.value)
    assert "user name or password" in message
    assert "secret" not in message and "user:" not in message


# A host name that is not one: refused before anything is sent, allowed or not.
_LONG_LABEL = "a" * 64
_BAD_HOSTS = {
    # host: what the message says about it
    "a..signalwire.com": "has an empty label",
    ".example.com": "has an empty label",
    f"{_LONG_LABEL}.example.com": "is 64 characters; a label has at most 63",
    "xn--zz.example.com": "label xn--zz is not valid punycode",
    "xn--a.example.com": "label xn--a is not valid punycode",
    ".".join(["abcdefghi"] * 26): "is 259 characters; a host name has at most 253",
    "\u2488.example.com": "IDNA cannot write",
    "exa mple.com": "may hold only letters, digits, '-' and '_'",
    "-example.com": "starts or ends with '-'",
}
_SHAPE = "A Space address looks like example.signalwire.com"


@pytest.mark.parametrize("host", list(_BAD_HOSTS))
@pytest.mark.parametrize("allowed", [False, True])
def test_a_host_name_that_is_not_one_is_refused_naming_the_value(
    host: str, allowed: bool
) -> None:
    allow = frozenset({host}) if allowed else frozenset()
    with pytest.raises(ConfigError) as caught:
        parse_space(f"https://{host}", key="SIGNALWIRE_SPACE", allow=allow)
    message = str(caught.value)
    assert message.startswith("SIGNALWIRE_SPACE: ")
    assert _BAD_HOSTS[host] in message
    assert _SHAPE in message
    assert len(message) < 600


def test_a_huge_space_value_is_shown_cut_short() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_space("a." * 500_000 + "example.com", key="SIGNALWIRE_SPACE")
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize("host", ["exämple.com", "xn--exmple-cua.com", "EXAMPLE.com",
                                  "example.com.", "10.0.0.5", "[2001:db8::1]", "my_host.lan"])
def test_a_host_name_that_is_one_is_taken_when_allowed(host: str) -> None:
    name = host.lower().strip("[]")
    assert parse_space(host if ":" not in host else f"https://{host}",
                       allow=frozenset({name})).host == name


@pytest.mark.parametrize(("env", "flags", "named"), [
    ({"REBRAND_ALLOW_SPACE_HOST": "ok.example.com,a..example.com"}, (),
     "REBRAND_ALLOW_SPACE_HOST: a..example.com"),
    ({}, ("xn--zz.example.com",), "--allow-space-host: xn--zz.example.com"),
])
def test_an_allowed_host_that_is_not_a_host_name_is_refused(
    env: dict[str, str], flags: tuple[str, ...], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        allowed_hosts(env, flags)
    assert str(caught.value).startswith(named)
    assert _SHAPE in str(caught.value)
