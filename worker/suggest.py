""""Did you mean ...?": the nearest known name to a mistyped one."""

from __future__ import annotations

from collections.abc import Iterable


def nearest(name: object, known: Iterable[str]) -> str | None:
    """The known name closest to `name`, if one is close enough to be a typo of it."""
    import difflib  # only when a key is wrong: every command imports the config rules

    matches = difflib.get_close_matches(str(name).lower(), list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """`did you mean `x`? ` for a near miss, else nothing: the start of a hint."""
    match = nearest(name, known)
    return f"did you mean `{match}`? " if match else ""
