"""The `rebrand` console script: SIGINT and SIGTERM are handled before anything heavy loads.

Importing the command line loads aiohttp, anyio and the whole run: a few hundred
milliseconds. A SIGTERM in that time must still end the process (Python as PID 1 in a
container ignores it until a handler is installed), and a Ctrl-C must not print a
traceback. So this module imports only the standard library, installs the handlers,
and only then imports the rest. At the end it leaves without tearing the interpreter down.
"""

from __future__ import annotations

import _thread
import atexit
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM outside a job, where nothing is in flight. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# After a signal outside a job, how long the unwinding to `main` (which then exits at
# once) may take before the process ends without it. The Interrupted raised for the
# signal can be swallowed on its way: raised inside a `__del__`, a weakref or exit
# callback, or a library's bare `except:`, Python prints it and goes on. A SIGTERM must
# not be lost so.
UNWIND_S = 0.5
# Taken by whichever ends the process for a signal first: `main`, or the fallback.
_ending = _thread.allocate_lock()
_fallback_armed = _thread.allocate_lock()


def interrupt(signum: int, _frame: FrameType | None) -> None:
    """The handler outside a job: unwind to `main`, which exits 128 + signum; should the
    unwinding not get there, the fallback ends the process anyway."""
    if _fallback_armed.acquire(blocking=False):
        # A bare thread: `threading` takes locks the interrupted code may hold.
        _thread.start_new_thread(_end_unless_unwound, (signum,))
    raise Interrupted(signum)


def _end_unless_unwound(signum: int) -> None:
    time.sleep(UNWIND_S)
    if _ending.acquire(blocking=False):
        # os.write: the main thread may hold sys.stderr's lock.
        os.write(2, f"\n{_interrupted_by(signum)}\n".encode())
        os._exit(128 + signum)


def _interrupted_by(signum: int) -> str:
    return f"rebrand: interrupted by {signal.Signals(signum).name}"


# Objects allocated (less those freed) before the collector looks at the young ones.
# Python's default, 700, is a fifth of one list page (1,000 conferences, ~5,000 objects
# parsed at once): every page was walked by several young collections and promoted to be
# walked again, though a page's conferences are freed by reference counting as they are
# done. That was 0.21 s of a 10,000-conference run's ~3.8 s of CPU (658 collections);
# at this threshold, 4 collections and 4 ms. Cyclic garbage (an exception's traceback,
# say) waits a little longer to be collected: at most this many objects' worth.
YOUNG_OBJECTS = 20_000


def load_cli() -> Callable[[Sequence[str] | None], int]:
    """Import the command line with the cyclic garbage collector held off, then freeze
    what was imported out of its reach, and let it look at young objects less often.

    The import leaves ~95,000 objects the collector tracks, nearly all of them alive until
    exit. Collections during it walked them again and again (~35 ms of CPU), and the
    collections at exit once more (~40 ms): ~13 % of the CPU of a 100-conference run."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        from worker.cli.main import main as run_cli
    finally:
        gc.freeze()
        gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
        if collecting:
            gc.enable()
    return run_cli


def main(argv: Sequence[str] | None = None) -> int:
    for signum in SIGNALS:
        signal.signal(signum, interrupt)
    try:
        run_cli = load_cli()
        code = run_cli(argv)
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        _ending.acquire()  # else the fallback is ending the process as we speak
        # On a new line: at a terminal the cursor may sit after the prompt or a ^C.
        print(f"\n{_interrupted_by(stopped.signum)}", file=sys.stderr)
        code = stopped.exit_code
    # Everything of ours is written and closed by now (journal, report, metrics, the
    # summary line). Tearing the interpreter down (aiohttp, uvloop, every module) takes
    # ~20 ms of CPU at the end of every run, hundreds on a busy node.
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        # Stopped by a signal: a pod told to stop should not spend them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if threading.active_count() == 1:
        # The exit handlers still run (logging's, the held log lines', and any a host
        # process installed), before the streams are flushed, since they may write: only
        # the teardown is skipped. A thread still running is waited for as usual, and a
        # stream that cannot be flushed is left for the interpreter's exit to report (the
        # handlers have run and are not run twice).
        atexit._run_exitfuncs()
        if _flushed():
            os._exit(code)
    return code


def _flushed() -> bool:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe, a closed stream
        return False
    return True
