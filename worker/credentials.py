"""Credentials: the project ID and API token, from the environment only.

`SIGNALWIRE_PROJECT_ID` and `SIGNALWIRE_API_TOKEN`, or `SIGNALWIRE_API_TOKEN_FILE` for a
mounted secret. Each is checked for shape without being echoed (a token pasted into the
wrong variable must not land in a CI log), and the token never appears in a repr.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from worker.configfile import read_bounded
from worker.errors import ConfigError
from worker.text import clipped

MIN_TOKEN_LENGTH = 8
MAX_TOKEN_LENGTH = 4096  # as much as a token file may hold
MAX_PROJECT_ID_LENGTH = 256  # a UUID is 36
MAX_TOKEN_FILE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Credentials:
    """Project ID and API token. The token never appears in a repr."""

    project_id: str
    api_token: str = field(repr=False)
    # In a fleet, the other targets' secrets: never sent, but watched for in this target's
    # answers and scrubbed like its own. A Space whose data holds another target's token
    # must not get it back in a PUT, nor put it into this target's journal.
    others: tuple[str, ...] = field(default=(), repr=False)

    def authorization(self) -> str:
        """The HTTP Basic `Authorization` header value (RFC 7617)."""
        pair = f"{self.project_id}:{self.api_token}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings scrubbed from everything rebrand writes: the token, and the header that
        carries it, in standard and URL-safe base64 (base64 hides it from a plain search,
        not from a reader). `secret_forms` adds their escaped and encoded forms."""
        pair = f"{self.project_id}:{self.api_token}".encode()
        return (self.api_token, base64.b64encode(pair).decode("ascii"),
                base64.urlsafe_b64encode(pair).decode("ascii"), *self.others)


def load_credentials(env: Mapping[str, str]) -> Credentials:
    """Project ID and token from `SIGNALWIRE_PROJECT_ID` and `SIGNALWIRE_API_TOKEN`, or
    `SIGNALWIRE_API_TOKEN_FILE` (a mounted secret)."""
    project_id = env.get("SIGNALWIRE_PROJECT_ID", "").strip()
    # Stripped before the presence check: a blank token is a missing one, not a "" token.
    token = env.get("SIGNALWIRE_API_TOKEN", "").strip()
    token_file = env.get("SIGNALWIRE_API_TOKEN_FILE", "")
    if token and token_file:
        raise ConfigError(
            "SIGNALWIRE_API_TOKEN and SIGNALWIRE_API_TOKEN_FILE are both set; unset one"
        )
    if token_file:
        token = _read_token_file(token_file)
    missing = [
        name
        for name, value in (("SIGNALWIRE_PROJECT_ID", project_id),
                            ("SIGNALWIRE_API_TOKEN", token))
        if not value
    ]
    if missing:
        raise ConfigError(
            f"missing credentials: set {' and '.join(missing)} in the environment "
            "(or SIGNALWIRE_API_TOKEN_FILE to a file holding the token)"
        )
    token_source = f"SIGNALWIRE_API_TOKEN_FILE {_path_shown(token_file)}" if token_file \
        else "SIGNALWIRE_API_TOKEN"
    _check_project_id(project_id)
    _check_token(token, token_source)
    return Credentials(project_id, token)


def _check_project_id(project_id: str) -> None:
    """A project ID is a UUID: refuse what cannot be one, never echoing it (it may be a
    token in the wrong variable, or a whole file)."""
    name = "SIGNALWIRE_PROJECT_ID"
    if len(project_id) > MAX_PROJECT_ID_LENGTH:
        raise ConfigError(f"{name}: {len(project_id):,} characters; a project ID is a UUID "
                          "(36 characters) from your Space's API page: check the variable "
                          "holds it alone")
    if not project_id.isprintable():
        raise ConfigError(f"{name}: holds control characters or line breaks; it should be "
                          "the value alone, on one line")
    if ":" in project_id:
        # HTTP Basic (RFC 7617) splits user and password at the first colon.
        raise ConfigError(f"{name}: holds ':', which cannot be part of a project ID; it "
                          "should be the project ID alone (the token goes in "
                          "SIGNALWIRE_API_TOKEN)")


def _check_token(token: str, source: str) -> None:
    """A token's shape, checked without showing any of it."""
    if len(token) > MAX_TOKEN_LENGTH:
        # Sent in every request's header; a server that refuses a huge header may quote it.
        raise ConfigError(f"{source}: {len(token):,} characters; SignalWire API tokens are "
                          f"far shorter (at most {MAX_TOKEN_LENGTH}): check it holds the "
                          "token alone")
    if not token.isprintable():
        raise ConfigError(f"{source}: holds control characters or line breaks; it should "
                          "be the value alone, on one line")
    if len(token) < MIN_TOKEN_LENGTH:
        # Real tokens are long; a short one is a mistake (and could not be told apart from
        # ordinary text when it is scrubbed from the logs).
        raise ConfigError(
            f"{source}: only {len(token)} character{'' if len(token) == 1 else 's'}; "
            "SignalWire API tokens are far longer: check it holds the token from your "
            "Space's API page"
        )


def _path_shown(token_file: str) -> str:
    """The token file's path for a message: a token pasted into the variable by mistake
    is not a path, and must not be echoed. Tokens never start with `/`."""
    return clipped(token_file, 120) if token_file.startswith("/") else "(the path it names)"


def environment_secrets(env: Mapping[str, str]) -> tuple[str, ...]:
    """What to scrub from a message written before, or instead of, a run (a config error
    quotes the bad value, and a token pasted into the file is that value): the
    credentials' secrets when they load, else the token as the environment gives it."""
    try:
        return load_credentials(env).secrets
    except ConfigError:
        token = env.get("SIGNALWIRE_API_TOKEN", "").strip()
        # Shorter than any token, it could not be told apart from ordinary words.
        return (token,) if len(token) >= MIN_TOKEN_LENGTH else ()


def _read_token_file(token_file: str) -> str:
    """The token from a mounted secret: a small text file (read at most 4 KiB, so a
    wrong path such as `/dev/zero` fails at once)."""
    shown = _path_shown(token_file)
    what = f"SIGNALWIRE_API_TOKEN_FILE: {shown}"
    try:
        data = read_bounded(Path(token_file), MAX_TOKEN_FILE_BYTES, what)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) else "not a path"
        raise ConfigError(f"SIGNALWIRE_API_TOKEN_FILE: cannot read {shown} ({reason}); set "
                          "it to the path of a file holding the token") from exc
    if b"\0" in data:
        raise ConfigError(f"{what} is not text (it holds NUL bytes); it should hold only "
                          "the token")
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise ConfigError(f"{what} holds more than {MAX_TOKEN_FILE_BYTES} bytes; it should "
                          "hold only the token")
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text; it should hold only the token") from exc
    if not token:
        raise ConfigError(f"{what} is empty")
    return token
