"""What every start of `rebrand` pays for: a module that only some commands need is loaded
by them, not on import, and the collector does not walk the imported modules again and
again. Each check runs in a child process, whose modules this test run has not loaded."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_coloraide_is_loaded_by_the_first_color_checked_and_gives_the_same_ratio() -> None:
    probe = ("import sys; from worker.contrast import contrast_ratio; "
             "before = 'coloraide' in sys.modules; "
             "ratio = round(contrast_ratio('#111827', '#FFFFFF'), 2); "
             "print(before, 'coloraide' in sys.modules, ratio)")
    assert _child(probe).split() == ["False", "True", "17.74"]


def test_the_console_script_loads_the_cli_with_the_collector_on_and_the_imports_frozen() -> None:
    """Collection is held off while the command line imports and back on after, and what
    the import left is frozen out of the collector's reach (and the one at exit)."""
    probe = ("import gc; from worker.cli.entry import load_cli; "
             "main = load_cli(); print(gc.isenabled(), gc.get_freeze_count() > 10_000, "
             "main.__module__)")
    assert _child(probe).split() == ["True", "True", "worker.cli.main"]
