"""A headless Chromium driven over the DevTools protocol (aiohttp's websocket client):
load a page, read what the browser computed, count every request it tried, screenshot.

No browser automation library: the protocol is a few JSON messages, and the browser is
Debian's `chromium` package, so nothing is downloaded at test time.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@dataclass
class Page:
    """One tab. `requests` holds every URL the page asked for (the document included);
    `problems` every message the browser logged about it (CSP refusals among them)."""

    ws: aiohttp.ClientWebSocketResponse
    session_id: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _loaded: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params,
                                           "sessionId": self.session_id}))
        return await asyncio.wait_for(future, 30)

    def dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message and message["id"] in self._waiting:
            future = self._waiting.pop(message["id"])
            if "error" in message:
                future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
            else:
                future.set_result(message.get("result", {}))
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.problems.append(f"{entry['level']} {entry['source']}: {entry['text']}")
        elif method == "Page.loadEventFired":
            self._loaded.set()

    async def open(self, url: str) -> None:
        self._loaded.clear()
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(self._loaded.wait(), 30)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"]["value"]

    async def screenshot(self, selector: str, path: Path) -> None:
        """A PNG of one element, at one CSS pixel per pixel."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return {x: r.x, y: r.y + window.scrollY, "
            "width: r.width, height: r.height}; })()")
        shot = await self.send("Page.captureScreenshot", format="png",
                               clip={**box, "scale": 1}, captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@asynccontextmanager
async def chromium_page(executable: str, width: int = 1200,
                        height: int = 900) -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own profile, a DevTools port chosen by the system)
    and one page in it, with network and log events recorded from the start."""
    with tempfile.TemporaryDirectory(prefix="rebrand-chromium-") as profile:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
            [executable, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update",
             "--disable-extensions", "--disable-sync", "--hide-scrollbars",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own process group: the renderer and helper processes it forks are
            # stopped with it (see _stop), before the profile directory is removed.
            start_new_session=True,
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                    break
                if process.poll() is not None:
                    raise RuntimeError(f"chromium exited with {process.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("chromium did not open its DevTools port in 30 s")
            port, browser_path = port_file.read_text().splitlines()[:2]
            async with aiohttp.ClientSession() as http, http.ws_connect(
                f"ws://127.0.0.1:{port}{browser_path}", max_msg_size=0
            ) as ws:
                await ws.send_str(json.dumps({"id": 1, "method": "Target.createTarget",
                                              "params": {"url": "about:blank"}}))
                target = await _reply(ws, 1)
                await ws.send_str(json.dumps({
                    "id": 2, "method": "Target.attachToTarget",
                    "params": {"targetId": target["targetId"], "flatten": True}}))
                attached = await _reply(ws, 2)
                page = Page(ws, attached["sessionId"])
                reader = asyncio.create_task(_read(ws, page))
                try:
                    for method in ("Network.enable", "Page.enable", "Log.enable",
                                   "Runtime.enable"):
                        await page.send(method)
                    await page.send("Emulation.setDeviceMetricsOverride", width=width,
                                    height=height, deviceScaleFactor=1, mobile=False)
                    yield page
                finally:
                    reader.cancel()
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium and every process of its group. Its helpers outlive the browser
    process by a moment and still write to the profile: removing the directory then
    failed with `Directory not empty` (seen once in CI)."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not _alive_in_group(process.pid):
            return
        time.sleep(0.05)
    raise RuntimeError(f"chromium's helpers (process group {process.pid}) did not exit")


def _alive_in_group(group: int) -> bool:
    """Does a process of `group` still run? A killed one whose parent is gone waits as
    a zombie until init reaps it, which a container's init may never do: a zombie
    writes nothing, so it does not count."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


async def _reply(ws: aiohttp.ClientWebSocketResponse, ident: int) -> dict[str, Any]:
    async for message in ws:
        data = json.loads(message.data)
        if data.get("id") == ident:
            if "error" in data:
                raise RuntimeError(f"DevTools: {data['error']}")
            result: dict[str, Any] = data["result"]
            return result
    raise RuntimeError("DevTools connection closed")


async def _read(ws: aiohttp.ClientWebSocketResponse, page: Page) -> None:
    async for message in ws:
        data = json.loads(message.data)
        if data.get("sessionId") == page.session_id or data.get("id") in page._waiting:
            page.dispatch(data)
