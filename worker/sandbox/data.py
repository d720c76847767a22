"""The seeded conferences: realistic variety, the same every time for the same seed.

A fraction already wears `ON_THEME`, the brand theme the demo applies, some of it in
lower case so that matching has to ignore case.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.sandbox import spec
from worker.sandbox.conference import COLOR_FIELDS

ON_THEME: dict[str, str] = {
    "light_primary": "#0A84FF",
    "light_background": "#FFFFFF",
    "light_foreground": "#111827",
    "light_success": "#16A34A",
    "light_negative": "#DC2626",
    "dark_primary": "#0A84FF",
    "dark_background": "#0B1220",
    "dark_foreground": "#F9FAFB",
    "dark_success": "#22C55E",
    "dark_negative": "#EF4444",
}

# Fixed anchors, not "now": the same seed must give the same timestamps on any day.
_EPOCH_START = datetime(2019, 1, 1, tzinfo=UTC)
_EPOCH_SPAN_S = int((datetime(2025, 6, 30, tzinfo=UTC) - _EPOCH_START).total_seconds())
_TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_TOPICS = (
    "standup",
    "all-hands",
    "retro",
    "planning",
    "sync",
    "demo",
    "onboarding",
    "support",
    "sales",
    "design",
    "review",
    "townhall",
    "training",
    "interview",
    "webinar",
    "office-hours",
)
_ADJECTIVES = ("Weekly", "Daily", "Quarterly", "Team", "Customer", "Engineering", "Board", "Open")
_UNICODE_NAMES = (
    "Café Ünïcödé 🎉 Sync",
    "週次ミーティング",
    "产品评审会议",
    "팀 스탠드업",
    "Ωmega Ρeview ✨",  # noqa: RUF001 - a look-alike letter is realistic data
    "Réunion d'équipe — Q3",
    "Планёрка 🚀",
    "مراجعة أسبوعية",
    "🎧 Focus room",
    "Straße & Söhne GmbH",
)
_LOREM = (
    "This conference hosts the recurring meeting of the team. Agenda items are shared in "
    "advance, notes are taken by a rotating scribe, and recordings are kept for 30 days. "
)
_TEAMS = ("platform", "growth", "billing", "mobile", "sre", "design", "support", "data")


def _display_name(rng: random.Random, topic: str) -> str | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.20:
        return rng.choice(_UNICODE_NAMES)
    return f"{rng.choice(_ADJECTIVES)} {topic.replace('-', ' ').title()}"


# A few shared strings rather than one slice per conference, to keep memory small.
_SHORT_DESCRIPTIONS = tuple(_LOREM[:length].rstrip() for length in range(20, len(_LOREM), 9))
_LONG_DESCRIPTIONS = tuple((_LOREM * 20)[:length] for length in range(1000, 2901, 300))


def _description(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.30:
        return None
    if roll < 0.35:
        return rng.choice(_LONG_DESCRIPTIONS)
    return rng.choice(_SHORT_DESCRIPTIONS)


# Palettes many rooms share, as in a real Space: the API's defaults (rooms created without
# colors) and a previous brand. The rest have colors of their own.
SHARED_PALETTES: tuple[dict[str, str], ...] = (
    {f"{mode}_{role}": color for mode in ("light", "dark") for role, color in (
        ("primary", "#044EF4"), ("background", "#FFFFFF"), ("foreground", "#1D2127"),
        ("success", "#17BB58"), ("negative", "#F42C50"))},
    {"light_primary": "#6D28D9", "light_background": "#FAF5FF", "light_foreground": "#1E1B4B",
     "light_success": "#15803D", "light_negative": "#B91C1C", "dark_primary": "#A78BFA",
     "dark_background": "#1E1B4B", "dark_foreground": "#EDE9FE", "dark_success": "#4ADE80",
     "dark_negative": "#F87171"},
)


def _colors(rng: random.Random, on_theme: bool, palette: list[str],
            shared: random.Random) -> dict[str, str | None]:
    if on_theme:
        lower = rng.random() < 0.4
        return {name: ON_THEME[name].lower() if lower else ON_THEME[name] for name in COLOR_FIELDS}
    # Drawing from a shared palette keeps 100,000 seeded conferences small in memory.
    own: dict[str, str | None] = {
        name: None if rng.random() < 0.05 else palette[rng.getrandbits(11)] for name in COLOR_FIELDS
    }
    # A separate stream picks the shared palettes, so everything else a seed gives stays
    # as it was before they existed.
    roll = shared.random()
    if roll < 0.4:
        return dict(SHARED_PALETTES[0])
    if roll < 0.6:
        return dict(SHARED_PALETTES[1])
    return own


def _meta(rng: random.Random, index: int) -> dict[str, Any] | None:
    roll = rng.random()
    if roll < 0.5:
        return None
    if roll < 0.8:
        return {"team": rng.choice(_TEAMS)}
    return {
        "team": rng.choice(_TEAMS),
        "tags": rng.sample(_TOPICS, 2),
        "billing": {"cost_center": f"CC-{rng.randint(1000, 9999)}", "seq": index},
    }


def seed_conferences(
    count: int, seed: int, on_theme_fraction: float, extra: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """`count` conferences keyed by id, a pure function of its arguments. `extra` adds
    properties the spec does not name to each, as a newer Space would."""
    rng = random.Random(f"sandbox-data:{seed}")
    shared = random.Random(f"sandbox-palettes:{seed}")
    palette = [
        f"#{value:06X}" if rng.random() < 0.6 else f"#{value:06x}"
        for value in (rng.getrandbits(24) for _ in range(2048))
    ]
    qualities = spec.enum("Video.VideoQuality")
    layouts = spec.enum("Video.VideoLayout")
    sizes = spec.enum("Video.ConferenceSize")
    conferences: dict[str, dict[str, Any]] = {}
    for index in range(count):
        conference_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        topic = rng.choice(_TOPICS)
        created = _EPOCH_START + timedelta(seconds=rng.randrange(_EPOCH_SPAN_S))
        updated = created + timedelta(seconds=rng.randrange(400 * 86_400))
        join_from = None
        join_until = None
        if rng.random() < 0.5:
            start = created + timedelta(days=rng.randint(0, 60), hours=rng.randint(0, 23))
            join_from = start.strftime(_TS_FORMAT)
            if rng.random() < 0.7:
                join_until = (start + timedelta(days=rng.randint(1, 365))).strftime(_TS_FORMAT)
        elif rng.random() < 0.2:
            join_until = (created + timedelta(days=rng.randint(1, 365))).strftime(_TS_FORMAT)
        previews_roll = rng.random()
        colors = _colors(rng, rng.random() < on_theme_fraction, palette, shared)
        # Built in the published field order, so answers read like the real API's.
        conferences[conference_id] = {
            "id": conference_id,
            "name": f"room-{index:05d}-{topic}",
            "display_name": _display_name(rng, topic),
            "description": _description(rng),
            "join_from": join_from,
            "join_until": join_until,
            "quality": rng.choice(qualities),
            "layout": rng.choice(layouts),
            # Never null: a PUT resets a null size to medium, which would read as a change.
            "size": rng.choice(sizes),
            "record_on_start": rng.random() < 0.2,
            "tone_on_entry_and_exit": rng.random() < 0.6,
            "user_join_video_off": rng.random() < 0.3,
            "room_join_video_off": rng.random() < 0.1,
            "enable_chat": rng.random() < 0.85,
            "enable_room_previews": None if previews_roll < 0.2 else previews_roll < 0.6,
            **colors,
            "meta": _meta(rng, index),
            "created_at": created.strftime(_TS_FORMAT),
            "updated_at": updated.strftime(_TS_FORMAT),
        }
        if extra:
            conferences[conference_id].update(copy.deepcopy(dict(extra)))
    return conferences
