"""The contrast check and the preview at the command line: a failing theme is bad input
for validate, plan and run (exit 2, nothing sent), `preview` needs no credentials, and
`plan --preview` shows each current palette before and after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO, SANDBOX_ENV, sandbox_in_thread, write_config
from worker.cli.main import main

GREY_ON_WHITE = {"light": {"foreground": "#9CA3AF", "background": "#FFFFFF"}}
ENV = {"SIGNALWIRE_PROJECT_ID": "project", "SIGNALWIRE_API_TOKEN": "token-0123456789"}


def config_with(tmp_path: Path, theme: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "rebrand.yaml"
    path.write_text(yaml.safe_dump({"space": "example.signalwire.com", "theme": theme,
                                    **extra}), encoding="utf-8")
    return path


def json_events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_validate_refuses_grey_text_on_white_naming_the_pair_and_the_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--config", str(config_with(tmp_path, GREY_ON_WHITE))],
                env=ENV) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "rebrand: error: the theme fails the WCAG AA contrast check:"
    assert lines[1].strip() == ("light foreground #9CA3AF on background #FFFFFF: 2.54:1, "
                                "below the minimum 4.5:1")
    assert "accessibility: {level: off}" in lines[2] and len(lines) == 3
    # Off a terminal each finding is an event too.
    (event,) = [e for e in json_events(captured.out) if e["event"] == "theme.contrast"]
    wanted = {"mode": "light", "pair": "foreground/background", "ratio": 2.54,
              "minimum": 4.5, "ok": False}
    assert {key: event[key] for key in wanted} == wanted


@pytest.mark.parametrize("off", ["{level: off}", "{level: 'off'}", "{level: OFF}"])
def test_validate_passes_the_same_theme_with_the_check_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], off: str
) -> None:
    path = config_with(tmp_path, GREY_ON_WHITE)
    path.write_text(path.read_text(encoding="utf-8") + f"accessibility: {off}\n",
                    encoding="utf-8")
    assert main(["validate", "--config", str(path)], env=ENV) == 0
    assert "is valid" in capsys.readouterr().out


def test_the_example_config_passes_at_aa_and_every_pair_is_an_event(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--config", str(REPO / "config.example.yaml")], env=ENV) == 0
    events = json_events(capsys.readouterr().out)
    contrast = [e for e in events if e["event"] == "theme.contrast"]
    assert len(contrast) == 8 and all(e["ok"] for e in contrast)
    assert {e["event"] for e in events} >= {"theme.apca", "theme.cvd"}


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_and_run_exit_2_on_a_failing_theme_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with sandbox_in_thread(count=20) as sb:
        config = write_config(tmp_path, sb.url, theme=GREY_ON_WHITE)
        code = main([command, "--config", str(config), "--backup-dir", str(tmp_path / "b")],
                    env=SANDBOX_ENV)
        requests = list(sb.space.requests)
    assert code == 2
    assert requests == []
    assert "2.54:1, below the minimum 4.5:1" in capsys.readouterr().err


def test_preview_needs_no_credentials_and_draws_a_failing_theme_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "page.html"
    assert main(["preview", "--config", str(config_with(tmp_path, GREY_ON_WHITE)),
                 "--out", str(out)], env={}) == 0
    page = out.read_text(encoding="utf-8")
    assert 'id="room-light"' in page and 'id="room-dark"' in page
    assert 'class="fail"' in page
    assert "2.54:1" in capsys.readouterr().err


def test_plan_preview_groups_the_sandbox_by_current_palette_with_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preview, summary = tmp_path / "plan.html", tmp_path / "plan.md"
    with sandbox_in_thread(count=200) as sb:
        config = write_config(tmp_path, sb.url)
        code = main(["plan", "--config", str(config), "--preview", str(preview),
                     "--summary-md", str(summary)], env=SANDBOX_ENV)
        puts = sb.space.put_count
    assert code == 10 and puts == 0
    page = preview.read_text(encoding="utf-8")
    counts = [int(part.split('"', 1)[0]) for part in page.split('data-count="')[1:]]
    # The seeded Space shares two palettes (the API's defaults and an older brand) across
    # most rooms; the rest each have their own.
    assert len(counts) >= 2 and counts[0] >= counts[1] > 1, counts
    planned = [e for e in json_events(capsys.readouterr().out)
               if e["event"] == "conference.planned"]
    assert len(planned) >= sum(counts)
    assert f"`{preview}`" in summary.read_text(encoding="utf-8")


def test_plan_counts_the_rooms_a_partial_theme_would_make_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_in_thread(count=120) as sb:
        config = write_config(tmp_path, sb.url, theme={"light": {"foreground": "#9CA3AF"}})
        code = main(["plan", "--config", str(config)], env=SANDBOX_ENV)
    assert code == 10  # the theme itself defines no full pair: nothing to refuse
    events = json_events(capsys.readouterr().out)
    (audit,) = [e for e in events if e["event"] == "conferences.contrast"]
    assert audit["level"] == "warning"
    # Grey text over the rooms' white backgrounds (the shared palettes have them).
    assert 0 < audit["failing"] <= audit["checked"]
    assert 0 < len(audit["examples"]) <= 5
    assert audit["examples"][0]["pairs"][0]["pair"] == "foreground/background"
    assert events[-1]["event"] == "run.summary"


def test_run_reports_the_rooms_a_partial_theme_made_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_in_thread(count=60) as sb:
        config = write_config(tmp_path, sb.url, theme={"light": {"foreground": "#9CA3AF"}})
        code = main(["run", "--config", str(config), "--backup-dir", str(tmp_path / "b")],
                    env=SANDBOX_ENV)
    assert code == 0
    events = json_events(capsys.readouterr().out)
    (audit,) = [e for e in events if e["event"] == "conferences.contrast"]
    updated = sum(e["event"] == "conference.updated" for e in events)
    assert audit["checked"] == updated and audit["failing"] > 0
    assert events[-1]["event"] == "run.summary"


def test_each_rules_theme_is_checked_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"space": "example.signalwire.com", "rules": [
        {"name": "sales", "select": {"include": ["sales-*"]},
         "theme": {"light": {"foreground": "#111827", "background": "#FFFFFF"}}},
        {"name": "rest", "theme": GREY_ON_WHITE},
    ]}), encoding="utf-8")
    assert main(["validate", "--config", str(path)], env=ENV) == 2
    captured = capsys.readouterr()
    assert ("rule 'rest': light foreground #9CA3AF on background #FFFFFF: 2.54:1"
            in captured.err)
    assert "rule 'sales'" not in captured.err
    contrast = [e for e in json_events(captured.out) if e["event"] == "theme.contrast"]
    assert [(e["rule"], e["ok"]) for e in contrast] == [("sales", True), ("rest", False)]
    out = tmp_path / "rules.html"
    assert main(["preview", "--config", str(path), "--out", str(out)], env={}) == 0
    page = out.read_text(encoding="utf-8")
    assert 'id="room-light"' in page and 'id="room-light-2"' in page


def _wcag_luminance(color: str) -> float:
    # WCAG 2.2's definition, written out independently of worker.contrast.
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(color[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_plan_counts_exactly_the_rooms_grey_text_makes_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grey = "#9CA3AF"
    with sandbox_in_thread(count=300) as sb:
        rooms = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        config = write_config(tmp_path, sb.url, theme={"light": {"foreground": grey}})
        assert main(["plan", "--config", str(config)], env=SANDBOX_ENV) == 10
    events = json_events(capsys.readouterr().out)
    planned = [e["conference_id"] for e in events if e["event"] == "conference.planned"]
    (audit,) = [e for e in events if e["event"] == "conferences.contrast"]

    def unreadable(room: dict[str, Any]) -> bool:
        background = room["light_background"]
        if background is None:  # the room shows the API's default (worker/openapi.yaml)
            background = "#FFFFFF"
        lighter, darker = sorted((_wcag_luminance(grey), _wcag_luminance(background)),
                                 reverse=True)
        return (lighter + 0.05) / (darker + 0.05) < 4.5

    assert any(rooms[cid]["light_background"] is None for cid in planned)  # the case at stake
    assert audit["checked"] == len(planned)
    assert audit["failing"] == sum(unreadable(rooms[cid]) for cid in planned)
