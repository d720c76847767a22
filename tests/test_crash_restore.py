"""Restore after a crash: "did our PUT land?" holds whatever a Space makes of the fields a
PUT leaves out (resets them to defaults, to null, or keeps them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import BRAND, REPO, SANDBOX_ENV, not_back, sandbox_in_thread, write_config
from worker.body import build_put_body
from worker.decide import Restore, Skip, Write
from worker.outcome import Kind
from worker.sandbox.conference import replace
from worker.theme import parse_theme

MODES = ("defaults", "nulls", "keep")
THEME = parse_theme(BRAND)
PRE: dict[str, Any] = {
    "id": "5d3c0a7e-0d7e-4a53-9a55-0d2f6f1c4b11", "name": "room-1", "display_name": None,
    "description": "standup", "join_from": None, "join_until": None, "quality": "1080p",
    "layout": "grid-responsive", "size": None, "record_on_start": True,
    "tone_on_entry_and_exit": True, "room_join_video_off": False,
    "user_join_video_off": False, "enable_room_previews": None, "enable_chat": False,
    "dark_primary": "#123456", "dark_background": None, "dark_foreground": "#abcdef",
    "dark_success": "#00FF00", "dark_negative": "#FF0000", "light_primary": "#111111",
    "light_background": "#FEFEFE", "light_foreground": "#222222",
    "light_success": "#00AA00", "light_negative": "#AA0000", "meta": None,
    "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-02-01T00:00:00Z",
}
LATER = "2026-11-30T00:00:00.000001Z"


def _restore(force: bool = False) -> Restore:
    # No `written` record: the run died before our PUT's answer was journalled.
    return Restore({PRE["id"]: None}, force=force, theme=THEME)


@pytest.mark.parametrize("mode", MODES)
def test_our_landed_put_is_ours_whatever_the_space_did_with_the_fields_it_left_out(
    mode: str,
) -> None:
    landed = replace(PRE, build_put_body(PRE, THEME), LATER, reset=mode)
    decision = _restore().decide(PRE, landed)
    assert isinstance(decision, Write), decision
    assert decision.body["description"] == "standup" and "size" not in decision.body


@pytest.mark.parametrize("mode", MODES)
def test_a_put_that_never_landed_leaves_nothing_to_restore(mode: str) -> None:
    assert _restore().decide(PRE, dict(PRE)) == Skip(Kind.UNCHANGED)


@pytest.mark.parametrize("mode", MODES)
def test_someone_elses_write_after_or_instead_of_ours_is_a_conflict(mode: str) -> None:
    ours = replace(PRE, build_put_body(PRE, THEME), LATER, reset=mode)
    theirs = replace(ours, {**build_put_body(PRE, THEME), "description": "moved"},
                     "2026-11-30T00:00:01Z", reset=mode)
    instead = replace(PRE, {"display_name": "Renamed"}, LATER, reset=mode)
    for fresh in (theirs, instead):
        decision = _restore().decide(PRE, fresh)
        assert isinstance(decision, Skip) and decision.kind is Kind.CONFLICT
        assert isinstance(_restore(force=True).decide(PRE, fresh), Write)


@pytest.mark.parametrize("recorded", [True, False])
def test_a_theme_color_that_was_null_before_is_cleared_though_nothing_else_differs(
    recorded: bool,
) -> None:
    # A theme that only fills a color the conference had null: every field a PUT can
    # carry already reads as before, but the theme's value is showing until a PUT that
    # leaves the color out clears it.
    theme = parse_theme({"dark": {"background": "#0B1220"}})
    themed = replace(PRE, build_put_body(PRE, theme), LATER, reset="defaults")
    strategy = Restore({PRE["id"]: LATER if recorded else None}, force=False, theme=theme)
    decision = strategy.decide(PRE, themed)
    assert isinstance(decision, Write) and "dark_background" not in decision.body
    cleared = replace(themed, decision.body, "2026-11-30T00:00:02Z", reset="defaults")
    assert strategy.decide(PRE, cleared) == Skip(Kind.UNCHANGED)


@pytest.mark.parametrize("ours", ["2026-11-30T00:00:00.000001+00:00",
                                  "2026-11-30t01:00:00.000001+01:00"])
def test_our_updated_at_written_in_another_form_is_still_ours(ours: str) -> None:
    """A Space may write `updated_at` one way in a PUT's answer (what the journal keeps)
    and another in a GET's: the same instant is our write, not someone else's."""
    landed = replace(PRE, build_put_body(PRE, THEME), LATER, reset="nulls")
    decision = Restore({PRE["id"]: ours}, force=False, theme=THEME).decide(PRE, landed)
    assert isinstance(decision, Write), decision
    later = Restore({PRE["id"]: "2026-11-30T00:00:00.000002Z"}, force=False, theme=THEME)
    conflict = later.decide(PRE, landed)
    assert isinstance(conflict, Skip) and conflict.kind is Kind.CONFLICT


@pytest.mark.parametrize("mode", MODES)
def test_a_restores_unanswered_put_is_known_by_the_body_its_journal_kept(mode: str) -> None:
    """A restore's journal has no theme: the body of each PUT whose answer never came is
    kept beside its pre-image, and is how a restore of that restore knows its write."""
    themed = replace(PRE, build_put_body(PRE, THEME), LATER, reset=mode)
    sent = {k: v for k, v in PRE.items() if k in build_put_body(PRE, THEME) and v is not None}
    landed = replace(themed, sent, "2026-12-01T00:00:00Z", reset=mode)
    kept = Restore({PRE["id"]: None}, force=False, theme=None, sent={PRE["id"]: sent})
    decision = kept.decide(themed, landed)
    assert isinstance(decision, Write), decision
    # Without the body (an older journal) it cannot tell, and says so.
    blind = Restore({PRE["id"]: None}, force=False, theme=None).decide(themed, landed)
    assert isinstance(blind, Skip) and blind.kind is Kind.CONFLICT
    # Someone else's edit on top is still theirs.
    theirs = replace(landed, {**sent, "description": "moved"}, "2026-12-02T00:00:00Z",
                     reset=mode)
    conflict = kept.decide(themed, theirs)
    assert isinstance(conflict, Skip) and conflict.kind is Kind.CONFLICT


@pytest.mark.parametrize(("fresh", "ours"), [
    ("2026-11-30T00:00:00Z", True), ("2026-11-30T00:00:00.000+00:00", True),
    ("2026-11-30T00:00:00.001Z", True), ("2026-11-30T00:00:01Z", False),
    ("2026-11-30T00:00:00.002Z", False), ("2026-11-29T23:59:59Z", False)])
def test_a_get_writing_updated_at_coarser_than_our_puts_answer_is_ours_only_within_its_unit(
    fresh: str, ours: bool
) -> None:
    """The journal keeps our PUT's answer to the microsecond; a GET that writes the same
    instant to the second or millisecond (cut short or rounded) shows our write; one
    further away does not."""
    landed = replace(PRE, build_put_body(PRE, THEME), fresh, reset="nulls")
    decision = Restore({PRE["id"]: "2026-11-30T00:00:00.000999Z"}, force=False,
                       theme=THEME).decide(PRE, landed)
    assert isinstance(decision, Write if ours else Skip), decision
    if not ours:
        assert isinstance(decision, Skip) and decision.kind is Kind.CONFLICT


class _KillOnPut:
    """A sandbox `before_put` hook that SIGKILLs process `pid` as the Space applies its
    `nth` PUT: that write lands, and its answer never reaches the journal."""

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.applied = 0
        self.pid: int | None = None

    def __call__(self, _space: Any, _cid: str, _body: Any) -> None:
        self.applied += 1
        if self.applied == self.nth and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)


def _journal_summary(path: Path) -> tuple[int, int]:
    lines = path.read_bytes().splitlines()
    return (sum(b'"pre_image"' in line for line in lines),
            sum(b'"written"' in line for line in lines))


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_between_a_landed_put_and_its_journal_record_then_restore_under_each_reset_mode(
    mode: str, tmp_path: Path
) -> None:
    """A real `rebrand run`, killed with SIGKILL by the Space itself as it applies the 12th
    PUT: that write lands, its answer is never journalled. Restore must take it as ours."""
    kill_on_the_twelfth = _KillOnPut(12)
    with sandbox_in_thread(count=40, reset=mode, latency_s=0.005,
                           on_theme_fraction=0.0) as sb:
        for conference in sb.space.conferences.values():
            # Nulls a PUT cannot send: a Space resetting them shows a change we made.
            conference["size"] = None
            conference["enable_room_previews"] = None
        before = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        sb.space.before_put = kill_on_the_twelfth
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALWIRE_")}
        env.update(SANDBOX_ENV)
        config = write_config(tmp_path, sb.url, concurrency=4)
        command = [sys.executable, "-m", "worker"]
        with subprocess.Popen([*command, "run", "--config", str(config), "--log-format",
                               "json", "--backup-dir", str(tmp_path / "run")], env=env,
                              cwd=REPO, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL) as run:
            kill_on_the_twelfth.pid = run.pid
            assert run.wait(timeout=60) == -signal.SIGKILL
        sb.space.before_put = None
        (journal,) = (tmp_path / "run").glob("*.jsonl")
        pre_images, written = _journal_summary(journal)
        assert written < pre_images  # at least the 12th write landed unrecorded
        assert len(not_back(before, sb.space.conferences)) >= 12

        restore = subprocess.run(
            [*command, "restore", str(journal), "--space", sb.url, "--log-format", "json",
             "--backup-dir", str(tmp_path / "restore")],
            env=env, cwd=REPO, capture_output=True, check=False, timeout=60)
        events = [orjson.loads(line) for line in restore.stdout.splitlines()]
        summary = events[-1]
        # On a Space that keeps omitted fields, a theme color that was null before cannot
        # be cleared by any PUT: such a conference is failed, saying so, and exit 1 tells
        # the operator that the restore is not whole. Every other field is back.
        left = {cid for cid, now in sb.space.conferences.items()
                if any(before[cid][name] is None and now[name] is not None
                       for name, _ in THEME.colors)}
        failed = {e["conference_id"]: e for e in events if e["event"] == "conference.failed"}
        assert failed.keys() == left, restore.stdout.decode()[-3000:]
        assert all("only the Space's dashboard can clear it" in e["errors"][0]
                   for e in failed.values())
        assert (restore.returncode, summary["conflict"]) == (1 if left else 0, 0)
        if mode != "keep":
            assert not left
        assert not_back(before, sb.space.conferences, omitted_reset=mode != "keep") == []


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_in_a_restore_then_restoring_that_restore_finds_no_false_conflict(
    mode: str, tmp_path: Path
) -> None:
    """A run themes the Space; its restore is killed as the Space applies its 12th PUT;
    undoing that restore must take that write as the restore's own and put the theme back."""
    kill_on_the_twelfth = _KillOnPut(12)
    with sandbox_in_thread(count=30, reset=mode, latency_s=0.005,
                           on_theme_fraction=0.0) as sb:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALWIRE_")}
        env.update(SANDBOX_ENV)
        config = write_config(tmp_path, sb.url, concurrency=4)
        command = [sys.executable, "-m", "worker"]
        subprocess.run([*command, "run", "--config", str(config), "--log-format", "json",
                        "--backup-dir", str(tmp_path / "run")], env=env, cwd=REPO,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True,
                       timeout=60)
        themed = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        (run_journal,) = (tmp_path / "run").glob("*.jsonl")
        sb.space.before_put = kill_on_the_twelfth
        with subprocess.Popen([*command, "restore", str(run_journal), "--space", sb.url,
                               "--log-format", "json", "--backup-dir",
                               str(tmp_path / "restore")], env=env, cwd=REPO,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) as restore:
            kill_on_the_twelfth.pid = restore.pid
            assert restore.wait(timeout=60) == -signal.SIGKILL
        sb.space.before_put = None
        (journal,) = (tmp_path / "restore").glob("*.jsonl")
        pre_images, written = _journal_summary(journal)
        assert written < pre_images  # the 12th write landed unrecorded

        undo = subprocess.run(
            [*command, "restore", str(journal), "--space", sb.url, "--log-format", "json",
             "--backup-dir", str(tmp_path / "undo")],
            env=env, cwd=REPO, capture_output=True, check=False, timeout=60)
        summary = orjson.loads(undo.stdout.splitlines()[-1])
        assert (undo.returncode, summary["conflict"], summary["failed"]) == (0, 0, 0), \
            undo.stdout.decode()[-3000:]
        assert summary["updated"] >= 12
        assert not_back(themed, sb.space.conferences, omitted_reset=mode != "keep") == []
