"""Did a run leave the Space as it should? Every conference themed, every other field intact.

The exact rule, from worker/body.py and the sandbox's full-replacement semantics:
- `id`, `name`, `meta`, `created_at` never change (a PUT cannot touch them);
- each theme color now equals the theme's (case-insensitively, as the API compares);
- every other writable field that was seeded non-null is unchanged (datetimes compared as
  instants, colors case-insensitively);
- a writable field seeded null: a conference that was not written (its `updated_at` is as
  seeded) still has null; one that was written has what a PUT that omits the field leaves,
  the sandbox's reset default (`conference.UPDATE_RESETS`), except `display_name`, which
  the body fills from `name`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from worker.body import WRITABLE_FIELDS
from worker.sandbox.conference import UPDATE_RESETS, parse_datetime

_FIXED = ("id", "name", "meta", "created_at")
_DATETIMES = frozenset({"join_from", "join_until"})


def _same(field: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if field in _DATETIMES and isinstance(a, str) and isinstance(b, str):
        left: datetime | None = parse_datetime(a)
        right: datetime | None = parse_datetime(b)
        return left is not None and left == right
    if field.startswith(("dark_", "light_")) and isinstance(a, str) and isinstance(b, str):
        return a.upper() == b.upper()
    return bool(a == b)


def conference_problems(before: Mapping[str, Any], after: Mapping[str, Any] | None,
                        theme: Mapping[str, str]) -> list[str]:
    """What is wrong with one conference after a run (empty when nothing is)."""
    cid = before["id"]
    if after is None:
        return [f"{cid}: missing after the run"]
    out = [f"{cid}.{f}: {before.get(f)!r} became {after.get(f)!r}"
           for f in _FIXED if before.get(f) != after.get(f)]
    out += [f"{cid}.{f}: {after.get(f)!r} is not the theme's {value}"
            for f, value in theme.items() if not _same(f, after.get(f), value)]
    written = after.get("updated_at") != before.get("updated_at")
    for f in WRITABLE_FIELDS:
        if f in theme:
            continue
        was = before.get(f)
        if was is None and written:
            expected = before["name"] if f == "display_name" else UPDATE_RESETS[f]
        else:
            expected = was
        if not _same(f, after.get(f), expected):
            out.append(f"{cid}.{f}: expected {expected!r}, found {after.get(f)!r}")
    return out


def space_problems(seeded: Mapping[str, Mapping[str, Any]],
                   current: Mapping[str, Mapping[str, Any]],
                   theme: Mapping[str, str]) -> list[str]:
    """Every problem in the Space after a run, over all conferences."""
    out: list[str] = []
    for cid, before in seeded.items():
        out += conference_problems(before, current.get(cid), theme)
    out += [f"{cid}: appeared during the run" for cid in current.keys() - seeded.keys()]
    return out


def verify_space(url: str, colors: Mapping[str, str]) -> list[str]:
    """The Space's problems after a run, checked in a child process (see `main`)."""
    import subprocess
    import sys
    from pathlib import Path

    import orjson

    done = subprocess.run([sys.executable, "-m", "bench.verify", url,
                           orjson.dumps(dict(colors))], capture_output=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        return [f"verification itself failed: {done.stderr.decode()[-1000:]}"]
    problems: list[str] = orjson.loads(done.stdout)["problems"]
    return problems


def main() -> int:
    """`python -m bench.verify URL THEME_JSON`: print the Space's problems as one JSON line.

    Run in a process of its own so the benchmark's parent stays small: a child's peak RSS
    as rusage reports it starts from its parent's at fork."""
    import sys
    import urllib.request

    import orjson

    url, theme = sys.argv[1], orjson.loads(sys.argv[2])
    with urllib.request.urlopen(f"{url}/_sandbox/conferences", timeout=600) as answer:  # noqa: S310
        both = orjson.loads(answer.read())
    problems = space_problems(both["seeded"], both["conferences"], theme)
    sys.stdout.buffer.write(orjson.dumps({"checked": len(both["seeded"]), "problems": problems}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
