"""What every start of `rebrand` pays for: the collector does not walk the imported modules
again and again. Each check runs in a child process, whose modules this test run has not
loaded."""

from __future__ import annotations

import subprocess
import sys


def _child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def test_the_console_script_loads_the_cli_with_the_collector_on_and_the_imports_frozen() -> None:
    """Collection is held off while the command line imports and back on after, and what
    the import left is frozen out of the collector's reach (and the one at exit)."""
    probe = ("import gc; from worker.cli.entry import load_cli; "
             "main = load_cli(); print(gc.isenabled(), gc.get_freeze_count() > 10_000, "
             "main.__module__)")
    assert _child(probe).split() == ["True", "True", "worker.cli.main"]
