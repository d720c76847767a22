"""The config file, read safely: bounded, UTF-8, plain YAML data and nothing more.

A config may come from a pull request: it is read to a bound, refused if it is a pipe
(which would wait forever), and parsed by a SafeLoader that also refuses a key given
twice, aliases (a few lines can expand to gigabytes), nesting past a limit, tags beyond
plain data and numbers longer than any setting. Every refusal is a ConfigError that
says where, and what to change.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import yaml

from worker.errors import ConfigError
from worker.text import clipped

# Bounds on what is read, so a wrong path (`/dev/zero`, a log file) fails fast and small.
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_DEPTH = 32  # the config nests four deep; PyYAML's composer recurses per level
MAX_NUMBER_DIGITS = 30  # far above any setting; int() of 4,300+ digits raises
# The config is plain data: the YAML tags it may carry explicitly, by kind of node. Any
# other (`!!binary`, `!!set`, `!!timestamp`, `!!python/...`, a local `!mine`) is refused.
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS: Mapping[type[yaml.Event], frozenset[str]] = MappingProxyType({
    yaml.ScalarEvent: frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null")),
    yaml.SequenceStartEvent: frozenset({_CORE + "seq"}),
    yaml.MappingStartEvent: frozenset({_CORE + "map"}),
})
# What a value YAML could not build was meant to be, for the message.
_KINDS = MappingProxyType({_CORE + "int": "!!int",
                           _CORE + "float": "!!float", _CORE + "bool": "!!bool"})


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key given twice is an error: YAML would keep the last silently,
    and a second `theme:` further down a long file is an easy mistake to miss."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)  # raises a ConstructorError
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | None):
                raise ConfigError(f"line {key_node.start_mark.line + 1}: a key must be a "
                                  "plain word, not a list or mapping")
            if key in seen:
                raise ConfigError(f"{key}: given twice (line {key_node.start_mark.line + 1}); "
                                  "keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # An alias (`*name`) can repeat a mapping inside itself: a few lines that expand
        # to gigabytes ("billion laughs"). A config has no use for one: refuse it.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            # `include: [*-legacy]` is the usual way to meet this: a glob left unquoted.
            written = clipped(f"*{event.anchor}", 40)
            raise ConfigError(f"{_where(event.start_mark)}: YAML aliases (*name) are not "
                              f"allowed in the config, and {written} reads as one: quote a "
                              f"glob that starts with * (\"{written}\"); otherwise write the "
                              "value out in full")
        _check_tag(self.peek_event())  # type: ignore[no-untyped-call]
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ConfigError(f"line {mark.line + 1}: nested more than {MAX_YAML_DEPTH} "
                                  "levels deep; a config nests four at most")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar of the right shape can still fail to build (`2025-13-01`, `!!int abc`):
        # PyYAML lets the ValueError through, without saying where.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            kind = _KINDS.get(str(node.tag))
            raise ConfigError(
                f"{_where(node.start_mark)}: {clipped(str(node.value))} "
                f"cannot be read{f' as {kind}' if kind else ''} ({clipped(str(exc))}); "
                "correct it, or quote it if it is text") from exc

    def construct_yaml_as_written(self, node: yaml.ScalarNode) -> str:
        return self.construct_scalar(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        _check_digits(node)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        _check_digits(node)
        return super().construct_yaml_float(node)


def _where(mark: Any) -> str:
    """Where a YAML mark points, as a person counts (from 1)."""
    return "somewhere in the file" if mark is None else \
        f"line {mark.line + 1}, column {mark.column + 1}"


def _check_tag(event: yaml.Event) -> None:
    """Refuse an explicit YAML tag that builds anything but plain data."""
    tag = getattr(event, "tag", None)
    if tag is None or tag == "!" or tag in _PLAIN_TAGS.get(type(event), ()):
        return
    shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
    raise ConfigError(f"{_where(event.start_mark)}: the YAML tag "
                      f"{clipped(shown)} is not allowed here; the config is plain data: "
                      "remove the tag (and quote the value if it is text)")


def _check_digits(node: yaml.ScalarNode) -> None:
    value = str(node.value)
    if len(value) > MAX_NUMBER_DIGITS:
        raise ConfigError(f"line {node.start_mark.line + 1}: a number {len(value):,} "
                          f"characters long; no setting needs more than {MAX_NUMBER_DIGITS}")


# A date or time is kept as the text written: the key that takes one (select's
# starts_after) parses it, and anywhere else (a rule's name, a glob, a number) it is the
# text the operator wrote, named as written in a message, never `datetime.date(...)`.
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                 _UniqueKeyLoader.construct_yaml_as_written)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float",
                                 _UniqueKeyLoader.construct_yaml_float)


def open_input(path: Path, what: str) -> BinaryIO:
    """`path` opened to read; `what` names it in the error (`--config x.yaml:`).

    A pipe is refused: open() on a named pipe waits for a writer, forever if none comes.
    So the file is opened without waiting (O_NONBLOCK, which a regular file ignores) and
    checked through the open descriptor, which no rename after a check can swap. A symlink
    (a Kubernetes secret mount) is followed to its file; a device such as /dev/zero is
    read as a file is, to the caller's bound."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _refuse_pipe(fd, what)
        os.set_blocking(fd, True)  # reads of a device wait as they always did
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _refuse_pipe(fd: int, what: str) -> None:
    if stat.S_ISFIFO(os.fstat(fd).st_mode):
        raise ConfigError(f"{what} is not a regular file (a pipe: reading it would wait for "
                          "a writer); give the file itself")


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The file's first `limit + 1` bytes: more than `limit` means it is too long."""
    with open_input(path, what) as handle:
        return handle.read(limit + 1)


def read_config(path: Path) -> object:
    """The config file's YAML, parsed and not yet checked (a fleet's or a single Space's)."""
    try:
        data = read_bounded(path, MAX_CONFIG_BYTES, f"--config {path}:")
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"--config {path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                              "is this the config file?")
        if b"\0" in data:
            raise ConfigError(f"--config {path}: not text (it holds NUL bytes)")
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config {path}: not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        # The usual cause in a `select`: a glob such as [abc]-x or {a,b}-x left unquoted,
        # which YAML reads as a list or a mapping.
        raise ConfigError(f"--config {path}: not valid YAML ({exc}); quote a glob that "
                          "starts with [ or { (\"[abc]-*\")") from exc
    return raw
