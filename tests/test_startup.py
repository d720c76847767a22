"""What every start and end of `rebrand` pays for: a module that only some commands need is
loaded by them, not on import, the collector does not walk the imported modules again and
again, and the interpreter is not torn down at the end. Each check runs in a child process,
whose modules this test run has not loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Loaded only on the paths that need them; the reason each would cost every start.
ONLY_WHEN_NEEDED = (
    "coloraide",          # ~70 ms: the contrast check loads it when it first checks a color
    "prometheus_client",  # ~10 ms: only --metrics-file and --pushgateway
    "worker.preview",     # `preview` and `plan --preview`
    "openapi_core",       # the sandbox's request validation (`sandbox`, `demo`)
    "aiohttp.web",        # the sandbox's server
)


def _child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def test_importing_the_command_line_loads_no_module_only_some_commands_need() -> None:
    probe = ("import sys, json, worker.cli.main; "
             f"print(json.dumps(sorted(m for m in {ONLY_WHEN_NEEDED!r} if m in sys.modules)))")
    assert json.loads(_child(probe)) == []


def test_coloraide_is_loaded_only_by_the_first_color_simulated() -> None:
    """coloraide costs ~70 ms to import: WCAG's ratio (written out from the spec) needs
    none of it, the dichromacy simulation does."""
    probe = ("import sys; from worker.contrast import Deficiency, contrast_ratio, simulate; "
             "before = 'coloraide' in sys.modules; "
             "ratio = round(contrast_ratio('#111827', '#FFFFFF'), 2); "
             "after_ratio = 'coloraide' in sys.modules; "
             "simulate('#0A84FF', Deficiency.DEUTERANOPIA); "
             "print(before, after_ratio, 'coloraide' in sys.modules, ratio)")
    assert _child(probe).split() == ["False", "False", "True", "17.74"]


def test_the_console_script_loads_the_cli_with_the_collector_on_and_the_imports_frozen() -> None:
    """Collection is held off while the command line imports and back on after, and what
    the import left is frozen out of the collector's reach (and the one at exit)."""
    probe = ("import gc; from worker.cli.entry import load_cli; "
             "main = load_cli(); print(gc.isenabled(), gc.get_freeze_count() > 10_000, "
             "main.__module__)")
    assert _child(probe).split() == ["True", "True", "worker.cli.main"]


def test_the_console_script_exits_with_its_code_running_exit_handlers_but_no_teardown(
    tmp_path: Path,
) -> None:
    """A finished command leaves at once: the exit handlers run (logging's flushes), the
    output is all there, and the modules are not torn down one by one."""
    probe = f"""
import atexit
from worker.cli.entry import main

class Module:
    def __del__(self):
        print("torn down", flush=True)

kept = Module()  # finalized only by the interpreter's teardown
atexit.register(print, "exit handlers ran")
code = main(["validate", "--config", {str(tmp_path / "missing.yaml")!r}])
print("returned", code)
"""
    # Buffered stdout, as without PYTHONUNBUFFERED: what the handlers write must still come.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["exit handlers ran"]
    assert "missing.yaml" in done.stderr


def test_a_whole_list_page_parsed_at_once_starts_no_collection() -> None:
    """The collector's young threshold, once the command line is loaded, is above what
    parsing one full list page (1,000 conferences) allocates: a page is freed by
    reference counting as its conferences are done, not walked again and again."""
    probe = ("import gc, orjson; from worker.cli.entry import load_cli; "
             "from worker.sandbox.data import seed_conferences; "
             "page = orjson.dumps({'data': list(seed_conferences(1000, 7, 0.1).values()), "
             "'links': {}}); load_cli(); gc.collect(); before = gc.get_count()[0]; "
             "parsed = orjson.loads(page); "
             "print(gc.get_count()[0] - before, gc.get_threshold()[0])")
    allocated, threshold = (int(word) for word in _child(probe).split())
    assert allocated > 1000  # the probe measures what it means to
    assert threshold > 2 * allocated
