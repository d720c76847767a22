"""The sandbox's command-line flags, shared with the main CLI's `rebrand sandbox`.

Only parses and builds a `SandboxConfig`; `main` hands it to `main_serve`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from worker.cli.argtypes import limit_or_none, non_negative, positive_int, probability
from worker.sandbox.config import (
    DEFAULT_API_TOKEN,
    DEFAULT_PROJECT_ID,
    RESET_MODES,
    FaultConfig,
    SandboxConfig,
)


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox's flags (including --host and --port) to `parser`."""
    defaults = SandboxConfig()
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks one")
    parser.add_argument("--count", type=int, default=defaults.count, help="conferences to seed")
    parser.add_argument("--spaces", type=positive_int, default=1, metavar="N",
                        help="serve a fleet: N Spaces in this process, on --port and the "
                             "ports after it, each its own data and credentials "
                             "(<project-id>-i, <api-token>-i); one ready line each")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed for data and faults")
    parser.add_argument(
        "--latency",
        type=non_negative,
        default=defaults.latency_s,
        help="seconds added per request",
    )
    parser.add_argument(
        "--capacity",
        type=limit_or_none,
        default=defaults.capacity,
        help="requests served at once; beyond it each waits its turn, so latency grows "
        "with load ('none', the default, serves all at once)",
    )
    parser.add_argument(
        "--rate-limit",
        type=limit_or_none,
        default=defaults.put_rate_limit,
        help="PUTs allowed per window; 'none' for unlimited",
    )
    parser.add_argument(
        "--rate-window", type=float, default=defaults.rate_window_s, help="rate window in seconds"
    )
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip OpenAPI validation (cheap checks only), for throughput runs",
    )
    parser.add_argument("--fault-500", type=probability, default=0.0, help="P(500) per PUT")
    parser.add_argument("--fault-503", type=probability, default=0.0, help="P(503) per PUT")
    parser.add_argument("--fault-429", type=probability, default=0.0, help="P(429) per PUT")
    parser.add_argument(
        "--fault-drop", type=probability, default=0.0, help="P(apply, then drop) per PUT"
    )
    parser.add_argument("--fault-get-500", type=probability, default=0.0, help="P(500) per GET")
    parser.add_argument(
        "--retry-after", type=non_negative, default=1.0, help="Retry-After of injected 429s"
    )
    parser.add_argument(
        "--retry-after-http-date",
        action="store_true",
        help="send injected 429s' Retry-After as an HTTP-date",
    )
    parser.add_argument(
        "--on-theme-fraction",
        type=probability,
        default=defaults.on_theme_fraction,
        help="fraction of seeded conferences already on the demo theme",
    )
    parser.add_argument(
        "--extra-field",
        type=extra_field,
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="play a newer Space: add this property, which the bundled spec does not name, "
        "to every conference (repeatable), e.g. enable_live_captions=true",
    )
    parser.add_argument(
        "--extra-field-on-put",
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
    """The `SandboxConfig` the parsed flags describe; raises ValueError on a bad combination."""
    return SandboxConfig(
        count=namespace.count,
        seed=namespace.seed,
        latency_s=namespace.latency,
        capacity=namespace.capacity,
        put_rate_limit=namespace.rate_limit,
        rate_window_s=namespace.rate_window,
        faults=FaultConfig(
            error_500=namespace.fault_500,
            error_503=namespace.fault_503,
            error_429=namespace.fault_429,
            drop_after_apply=namespace.fault_drop,
            get_500=namespace.fault_get_500,
            retry_after_s=namespace.retry_after,
            retry_after_http_date=namespace.retry_after_http_date,
        ),
        validate=namespace.validate,
        project_id=namespace.project_id,
        api_token=namespace.api_token,
        on_theme_fraction=namespace.on_theme_fraction,
        extra_fields=tuple(namespace.extra_field),
        extra_on_put=namespace.extra_field_on_put,
        reset=namespace.reset,
        links_base=public_url(namespace.public_url),
    )


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
    from worker.sandbox.server import main_serve

    main_serve(config, namespace.host, namespace.port, namespace.spaces)
    return 0
