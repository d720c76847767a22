"""The preview page in a real browser: headless Chromium renders it, and the test reads
back the colors the browser resolved for the room, its tiles and its controls, and every
request the page made (none). One screenshot per mode is kept as a CI artifact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.browser import chromium_page, find_chromium
from tests.support import REPO
from worker.cli.main import main

pytestmark = pytest.mark.anyio

CHROMIUM = find_chromium()
# CI installs chromium (.ci/run): there a missing browser is a failure, not a skip.
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium)",
                allow_module_level=True)
# Where the screenshots are kept; .ci/run prints this path.
ARTIFACTS = Path(os.environ.get("REBRAND_ARTIFACTS", REPO / ".artifacts")) / "preview"

COMPUTED = """(() => {
  const out = {};
  for (const mode of ["light", "dark"]) {
    const room = document.getElementById("room-" + mode);
    const style = (selector, property) =>
      getComputedStyle(room.querySelector(selector))[property];
    const box = room.getBoundingClientRect();
    out[mode] = {
      background: getComputedStyle(room).backgroundColor,
      name: style(".room-name", "color"),
      tile: style(".tile:not(.speaking)", "borderTopColor"),
      speaking: style(".tile.speaking", "borderTopColor"),
      primary: style(".button.primary", "backgroundColor"),
      success: style(".button.success", "backgroundColor"),
      negative: style(".button.negative", "backgroundColor"),
      tiles: room.querySelectorAll(".tile").length,
      buttons: [...room.querySelectorAll(".button")].map(b => b.getBoundingClientRect().width),
      size: [box.width, box.height],
    };
  }
  return out;
})()"""


def rgb(color: str) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


async def test_chromium_renders_the_theme_in_both_modes_with_no_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert CHROMIUM is not None, "CI must install chromium (apt-get install chromium)"
    page_path = tmp_path / "preview.html"
    config = REPO / "config.example.yaml"
    # No credentials in the environment: the preview needs none.
    assert main(["preview", "--config", str(config), "--out", str(page_path)], env={}) == 0
    theme = yaml.safe_load(config.read_text(encoding="utf-8"))["theme"]
    async with chromium_page(CHROMIUM) as page:
        await page.open(page_path.as_uri())
        computed = await page.evaluate(COMPUTED)
        for mode in ("light", "dark"):
            colors, seen = theme[mode], computed[mode]
            assert seen["background"] == rgb(colors["background"]), mode
            assert seen["name"] == rgb(colors["foreground"]), mode
            assert seen["tile"] == rgb(colors["foreground"]), mode
            assert seen["speaking"] == rgb(colors["primary"]), mode
            for role in ("primary", "success", "negative"):
                assert seen[role] == rgb(colors[role]), (mode, role)
            assert seen["tiles"] == 6  # no layout known: a 3 x 2 grid
            assert all(width >= 40 for width in seen["buttons"]), seen["buttons"]
            assert seen["size"][0] >= 500 and seen["size"][1] >= 300, seen["size"]
            await page.screenshot(f"#room-{mode}", ARTIFACTS / f"preview-{mode}.png")
        # Both modes side by side: the picture in the README (docs/preview.png).
        await page.screenshot("#rooms .modes", ARTIFACTS / "preview-both.png")
        # The document itself is the only request, and the browser had nothing to say.
        assert page.requests == [page_path.as_uri()]
        assert page.problems == []

        # The counting can fail: the same page with one remote image is caught.
        leaky = tmp_path / "leaky.html"
        leaky.write_text(page_path.read_text(encoding="utf-8").replace(
            "</body>", '<img src="http://127.0.0.1:9/pixel.png"></body>'), encoding="utf-8")
        page.requests.clear()
        await page.open(leaky.as_uri())
        assert "http://127.0.0.1:9/pixel.png" in page.requests
        assert any("pixel.png" in problem for problem in page.problems)
    capsys.readouterr()
    for mode in ("light", "dark"):
        assert (ARTIFACTS / f"preview-{mode}.png").stat().st_size > 5000


RULES_COMPUTED = """(() => {
  const out = {};
  for (const id of ["room-light", "room-dark", "room-light-2", "room-dark-2"]) {
    const room = document.getElementById(id);
    const style = (selector, property) =>
      getComputedStyle(room.querySelector(selector))[property];
    out[id] = {
      background: getComputedStyle(room).backgroundColor,
      name: style(".room-name", "color"),
      primary: style(".button.primary", "backgroundColor"),
      success: style(".button.success", "backgroundColor"),
      negative: style(".button.negative", "backgroundColor"),
    };
  }
  out.headings = [...document.querySelectorAll("section.theme > h2")].map(h => h.textContent);
  return out;
})()"""


async def test_chromium_draws_each_rules_theme_with_the_api_defaults_it_leaves_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert CHROMIUM is not None, "CI must install chromium (apt-get install chromium)"
    config = tmp_path / "config.yaml"
    config.write_text(
        'space: https://example.signalwire.com\n'
        'rules:\n'
        '  - name: "sales <&>"\n'
        '    select: {include: ["sales-*"]}\n'
        '    theme: {light: {primary: "#b45309"}, dark: {primary: "#FD7E14"}}\n'
        '  - name: rest\n'
        '    theme: {light: {background: "#0B1220", foreground: "#F9FAFB"}}\n',
        encoding="utf-8")
    page_path = tmp_path / "preview.html"
    assert main(["preview", "--config", str(config), "--out", str(page_path)], env={}) == 0
    # What a room shows for a color it does not set (worker/openapi.yaml's defaults),
    # written out here rather than read from the code under test.
    defaults = {"primary": "#044EF4", "background": "#FFFFFF", "foreground": "#1D2127",
                "success": "#17BB58", "negative": "#F42C50"}
    expected = {
        "room-light": {**defaults, "primary": "#B45309"},
        "room-dark": {**defaults, "primary": "#FD7E14"},
        "room-light-2": {**defaults, "background": "#0B1220", "foreground": "#F9FAFB"},
        "room-dark-2": defaults,
    }
    async with chromium_page(CHROMIUM) as page:
        await page.open(page_path.as_uri())
        computed = await page.evaluate(RULES_COMPUTED)
        assert computed["headings"] == ["Rule sales <&>", "Rule rest"]
        for ident, colors in expected.items():
            seen = computed[ident]
            assert seen["background"] == rgb(colors["background"]), ident
            assert seen["name"] == rgb(colors["foreground"]), ident
            for role in ("primary", "success", "negative"):
                assert seen[role] == rgb(colors[role]), (ident, role)
        assert page.requests == [page_path.as_uri()]
        assert page.problems == []
    capsys.readouterr()
