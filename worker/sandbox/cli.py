"""The sandbox's command-line flags, shared with the main CLI's `rebrand sandbox`.

Only parses and builds a `SandboxConfig`; `main` hands it to `main_serve`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from worker.cli.argtypes import limit_or_none, non_negative, port, positive_int, probability
from worker.sandbox.config import (
    DEFAULT_API_TOKEN,
    DEFAULT_PROJECT_ID,
    LAST_NEXT,
    NEXT_FORMS,
    RESET_MODES,
    FaultConfig,
    SandboxConfig,
)

# A flag that sets one config field: (flag, type, field, help). The field names the flag's
# dest (config_from_args reads it back by that name) and gives its default.
_FieldFlag = tuple[str, Callable[[str], Any], str, str]


def _add_field_flags(parser: argparse.ArgumentParser, config: object, *flags: _FieldFlag) -> None:
    for flag, kind, name, text in flags:
        parser.add_argument(flag, type=kind, default=getattr(config, name), dest=name,
                            metavar=flag.removeprefix("--").replace("-", "_").upper(), help=text)


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's flags (including --host and --port) to `parser`."""
    defaults = SandboxConfig()
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=port, default=8080, help="port to listen on; 0 picks one")
    _add_field_flags(parser, defaults, ("--count", int, "count", "conferences to seed"))
    parser.add_argument("--spaces", type=positive_int, default=1, metavar="N",
                        help="serve a fleet: N Spaces in this process, on --port and the "
                             "ports after it, each its own data and credentials "
                             "(<project-id>-i, <api-token>-i); one ready line each")
    _add_field_flags(
        parser, defaults,
        ("--seed", int, "seed", "seed for data and faults"),
        ("--latency", non_negative, "latency_s", "seconds added per request"),
        ("--capacity", limit_or_none, "capacity",
         "requests served at once; beyond it each waits its turn, so latency grows "
         "with load ('none', the default, serves all at once)"),
        ("--rate-limit", limit_or_none, "put_rate_limit",
         "PUTs allowed per window; 'none' for unlimited"),
        ("--rate-window", float, "rate_window_s", "rate window in seconds"),
    )
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip OpenAPI validation (cheap checks only), for throughput runs",
    )
    _add_field_flags(
        parser, defaults.faults,
        ("--fault-500", probability, "error_500", "P(500) per PUT"),
        ("--fault-503", probability, "error_503", "P(503) per PUT"),
        ("--fault-429", probability, "error_429", "P(429) per PUT"),
        ("--fault-drop", probability, "drop_after_apply", "P(apply, then drop) per PUT"),
        ("--fault-get-500", probability, "get_500", "P(500) per GET"),
        ("--retry-after", non_negative, "retry_after_s", "Retry-After of injected 429s"),
    )
    parser.add_argument(
        "--retry-after-http-date",
        action="store_true",
        help="send injected 429s' Retry-After as an HTTP-date",
    )
    parser.add_argument(
        "--no-retry-after",
        dest="retry_after",
        action="store_false",
        help="send every 429 (the rate limit's and injected ones) without Retry-After "
        "(the spec documents no 429; a Space may not say when to come back)",
    )
    _add_field_flags(parser, defaults, ("--on-theme-fraction", probability, "on_theme_fraction",
                                        "fraction of seeded conferences already on the demo theme"))
    parser.add_argument(
        "--extra-field",
        dest="extra_fields",
        type=extra_field,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="play a newer Space: add this property, which the bundled spec does not name, "
        "to every conference (repeatable), e.g. enable_live_captions=true",
    )
    parser.add_argument(
        "--extra-field-on-put",
        dest="extra_on_put",
        choices=("reset", "keep"),
        default="reset",
        help="what a PUT whose body omits an extra field does to it: reset it to null, as a "
        "full replacement would (default), or keep it",
    )
    parser.add_argument(
        "--reset",
        choices=RESET_MODES,
        default=defaults.reset,
        help="what a PUT does to a field its body omits: its default, null, or keep it "
        "(the spec leaves it open; default %(default)s)",
    )
    parser.add_argument(
        "--next-form",
        choices=NEXT_FORMS,
        default=defaults.next_form,
        help="how links.next is written: a whole URL, a path and query, or a query alone "
        "(the spec says only that it is a link; default %(default)s)",
    )
    parser.add_argument(
        "--last-next",
        choices=LAST_NEXT,
        default=defaults.last_next,
        help="the last page's links.next: left out, or an empty string "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="the base URL clients reach the sandbox at (behind a proxy); links.next "
        "point there instead of at the request's own host",
    )
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID, help="the fake project id")
    parser.add_argument("--api-token", default=DEFAULT_API_TOKEN, help="the fake API token")


def extra_field(text: str) -> tuple[str, Any]:
    """`NAME=JSON` as (name, value): `enable_live_captions=true`, `tier="gold"`."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=JSON; write e.g. enable_live_captions=true"
        )
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value {raw!r} is not JSON; quote a string, e.g. {name}='\"gold\"'"
        ) from None
    return name, value


def config_from_args(namespace: argparse.Namespace) -> SandboxConfig:
    """The `SandboxConfig` the parsed flags describe; raises ValueError on a bad combination.

    A flag that sets a field is parsed under that field's name (its dest)."""
    given = vars(namespace)
    return SandboxConfig(**_fields_given(SandboxConfig, given) | {
        "faults": FaultConfig(**_fields_given(FaultConfig, given)),
        "extra_fields": tuple(namespace.extra_fields),
        "links_base": public_url(namespace.public_url),
    })


def _fields_given(config: type[Any], given: Mapping[str, Any]) -> dict[str, Any]:
    return {field.name: given[field.name] for field in fields(config) if field.name in given}


def public_url(text: str | None) -> str | None:
    """`--public-url` as a links base: an http(s) origin (a Space has no path prefix)."""
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--public-url {text!r}: give an http:// or https:// URL, "
                         "e.g. https://sandbox.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"--public-url {text!r}: give only scheme, host and port, "
                         "e.g. https://sandbox.example.com:8443")
    return text.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker.sandbox",
        description="Serve a simulated SignalWire Space (Video Conferences API) on loopback.",
    )
    add_sandbox_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    namespace = parser.parse_args(argv)
    try:
        config = config_from_args(namespace)
    except ValueError as exc:
        parser.error(str(exc))
    from worker.sandbox.server import ListenError, main_serve

    try:
        main_serve(config, namespace.host, namespace.port, namespace.spaces)
    except ListenError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0
