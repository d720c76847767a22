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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
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
# signal can be swallowed on its way: Python prints and drops an exception raised in a
# `__del__` or a weakref callback (the import system's module locks have one), as does a
# library's bare `except:`. Of ~1,100 signals sent at random moments of the import,
# 2 were lost so and 4 became a traceback (see `_stopped_by`); one swallowed where
# Python prints and drops it now ends the process at once (`quiet_swallowed_interrupts`).
UNWIND_S = 0.5
# The signals `interrupt` took: what a swallowed Interrupted leaves behind.
_taken: list[int] = []
# Taken by whichever ends the process for a signal first: `main`, or the fallback.
_ending = _thread.allocate_lock()
_fallback_armed = _thread.allocate_lock()
# The exit code an output on disk (--report, --summary-md, a single Space's metrics)
# already states, and which output: from then on a signal still ends the process, but with
# this code. The run's work is over by then, and the output and the exit code must not
# disagree.
_settled: list[tuple[int, str]] = []


# The outputs that state a run's exit code, and the commands that take each. An earlier
# run's file at such a path is removed before this run does anything (commands.
# clear_earlier), so that a run ending before it writes its own leaves none: CI would
# read the earlier one's exit code as this run's.
_STATING_FLAGS: Mapping[str, tuple[str, ...]] = {
    "--report": ("run", "plan", "restore", "demo"),
    "--summary-md": ("run", "plan"),
}
# Set once the command line has done that removal: from then on the paths hold this
# run's own files or nothing, and a signal leaves them as they are.
_cleared: list[bool] = []


def outputs_cleared() -> None:
    _cleared.append(True)


def _clear_earlier_outputs(argv: Sequence[str]) -> None:
    """A signal ended the process before the command line removed an earlier run's
    report and summary (while it was still loading): remove them now, from the command
    line as given. Only regular files, never a symlink; nothing said if it fails (the
    process is ending for the signal)."""
    if _cleared:
        return
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    # Every file the command line names, as given (`--flag=value` by its value).
    named = [arg.partition("=")[2] if arg.startswith("--") and "=" in arg else arg
             for arg in argv]
    for i, arg in enumerate(argv):
        flag, equals, _ = arg.partition("=")
        if flag not in _STATING_FLAGS or command not in _STATING_FLAGS[flag]:
            continue
        at = i if equals else i + 1
        path = named[at] if at < len(named) else ""
        # Not a file the command line names again (the config, a journal, another
        # output): the command line would have refused it, and it is not ours to remove.
        if path and not any(_same_file(path, other)
                            for j, other in enumerate(named) if j != at and other):
            with suppress(OSError):
                remove_earlier(path)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def remove_earlier(path: str | os.PathLike[str]) -> None:
    """Remove the regular file at `path`, if one is there: an earlier run's output. Never
    through a symlink (it points at a file someone else chose). Raises OSError."""
    if os.path.isfile(path) and not os.path.islink(path):
        os.unlink(path)


def settle(code: int, what: str = "the report") -> None:
    """An output (`what`) stating `code` as the exit code is on disk: exit with it, signal
    or not."""
    _settled.append((code, what))


def unsettle() -> None:
    """No output on disk states an exit code any more (the one that did was removed): a
    signal exits 128 + signum again."""
    _settled.clear()


def reset() -> None:
    """Forget what this process's command did (tests run many commands in one process)."""
    _settled.clear()
    _cleared.clear()


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then go to the handlers that were
    there: around writing an output and `settle`, so no signal lands between the two. (A
    signal mask would not do: Python runs a handler in the main thread whichever thread
    the kernel gave the signal to.) Signal handlers belong to the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.signal(signum, lambda signum, _frame: taken.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _deliver(taken, previous)


def _deliver(taken: list[int], handlers: Mapping[signal.Signals, object]) -> None:
    """Each signal to its handler, in order, though one raises (a second signal taken
    while the first's exception unwinds exits at once, as it would have)."""
    if not taken:
        return
    try:
        handler = handlers[signal.Signals(taken[0])]
        if callable(handler):
            handler(taken[0], None)
        elif handler == signal.SIG_DFL:
            # The default action (ending the process, for these two) is the kernel's: a
            # held signal must not be dropped because nobody had a handler for it.
            os.kill(os.getpid(), taken[0])
    finally:
        _deliver(taken[1:], handlers)


def _exit_code_for(signum: int) -> int:
    return _settled[-1][0] if _settled else 128 + signum


def interrupt(signum: int, _frame: FrameType | None) -> None:
    """The handler outside a job: unwind to `main`, which exits 128 + signum; should the
    unwinding not get there, the fallback ends the process anyway. A second signal
    exits at once, as it does in a job."""
    if _taken:
        _exit_at_once(signum, _frame)
    _taken.append(signum)
    if _fallback_armed.acquire(blocking=False):
        _start_deaf(_end_unless_unwound, signum)
    raise Interrupted(signum)


def quiet_swallowed_interrupts() -> None:
    """An Interrupted raised where Python prints and drops exceptions (a weakref callback,
    a `__del__`: the import system's module locks have one) ends the process at once, as
    `main` would have, instead of printing a traceback and leaving it to the fallback."""
    default = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, Interrupted):
            if _ending.acquire(blocking=False):
                _end_now(exc.signum)
            return  # `main` or the fallback is ending the process as we speak
        default(unraisable)

    sys.unraisablehook = hook


def _start_deaf(target: Callable[[int], None], signum: int) -> None:
    """Start `target` in a thread that never takes SIGINT or SIGTERM. The kernel hands a
    process's signal to any thread that does not block it, and Python only notices one
    taken by another thread when the main thread next wakes: a second signal taken by
    the sleeping fallback waited for it (a 143 after UNWIND_S, not the 130 asked for; 48
    of 300 under load). A new thread starts with its creator's mask, hence the block
    around the start. A bare thread: `threading` takes locks the interrupted code may hold.
    Windows has no signal masks; there Python wakes the main thread's sleep for a SIGINT
    itself, from whichever thread the console's handler runs in."""
    if not hasattr(signal, "pthread_sigmask"):
        _thread.start_new_thread(target, (signum,))
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        _thread.start_new_thread(target, (signum,))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def check_interrupted() -> None:
    """Raise again the Interrupted of a signal whose exception was swallowed on its way:
    before anything starts that the signal should have prevented (a job's event loop)."""
    if _taken:
        raise Interrupted(_taken[0])


def _stopped_by(exc: BaseException) -> Interrupted | None:
    """The signal behind `exc`, if one is. Python 3.11 turns an exception raised in a
    `__set_name__` into a RuntimeError caused by it, and what fails after a swallowed
    Interrupted fails because of the signal too."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, Interrupted):
            return link
        if isinstance(link, KeyboardInterrupt):
            return Interrupted(signal.SIGINT)
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return Interrupted(_taken[0]) if _taken else None


def _end_unless_unwound(signum: int) -> None:
    time.sleep(UNWIND_S)
    if _ending.acquire(blocking=False):
        _end_now(signum)


def _end_now(signum: int) -> None:
    """Say why and leave, `_ending` held. os.write: the main thread may hold the lock of
    sys.stderr (the fallback runs beside it) or be in the middle of a write to it."""
    _clear_earlier_outputs(sys.argv[1:])
    os.write(2, f"\n{_interrupted_by(signum)}\n".encode())
    os._exit(_exit_code_for(signum))


def _interrupted_by(signum: int) -> str:
    name = signal.Signals(signum).name
    if _settled:
        code = _settled[-1][0]
        # The first output to state it: the report, when there is one.
        what = next(what for stated, what in _settled if stated == code)
        return (f"rebrand: interrupted by {name} after the run's work and {what} were "
                f"done: exit {code}, as {what} says")
    return f"rebrand: interrupted by {name}"


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
    # Before any file is opened: a closed descriptor 0-2 would be the next file's. (The
    # standard library only, as here.)
    from worker.cli.streams import escape_unencodable, reopen_closed

    reopen_closed()
    escape_unencodable()
    quiet_swallowed_interrupts()
    for signum in SIGNALS:
        signal.signal(signum, interrupt)
    signalled = False
    try:
        run_cli = load_cli()
        code = run_cli(argv)
        check_interrupted()
        _exit_on_signals()
    except BaseException as exc:
        _exit_on_signals()
        stopped = _stopped_by(exc)
        if stopped is None and isinstance(exc, BrokenPipeError):
            code = _reader_gone()
        elif stopped is None:
            raise
        else:
            _ending.acquire()  # else the fallback is ending the process as we speak
            _clear_earlier_outputs(sys.argv[1:] if argv is None else argv)
            # On a new line: at a terminal the cursor may sit after the prompt or a ^C.
            print(f"\n{_interrupted_by(stopped.signum)}", file=sys.stderr)
            code = _exit_code_for(stopped.signum)
            signalled = True
    # Everything of ours is written and closed by now (journal, report, metrics, the
    # summary line). Tearing the interpreter down (aiohttp, uvloop, every module) takes
    # ~20 ms of CPU at the end of every run, hundreds on a busy node.
    if signalled or code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
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


def _reader_gone() -> int:
    """A command's own output (`validate | head -0`) met a pipe whose reader had left: a
    run's events never get here (worker.run.logs goes on without them). The null device
    takes the pipe's place (Python's "Note on SIGPIPE"), so the flush at exit does not
    fail again; exit 1, as the output was not all written."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        print("rebrand: stdout closed (its reader went away) before the command's output "
              "was all written", file=sys.stderr, flush=True)
    except OSError:  # the same pipe (`2>&1 | head`)
        os.dup2(null, 2)
    os.close(null)
    return 1


def _exit_on_signals() -> None:
    """From here to the exit a signal ends the process at once: the command is over (or
    has failed), and an Interrupted raised on the way out (in the exit handlers, in the
    interpreter's wait for a thread still running) would only print a traceback."""
    for signum in SIGNALS:
        signal.signal(signum, _exit_at_once)


def _exit_at_once(signum: int, _frame: FrameType | None) -> None:
    # What the command wrote is kept, unless the signal came in the middle of a write
    # (this runs in the main thread: the stream would refuse a reentrant flush).
    with suppress(Exception):
        sys.stdout.flush()
    if _ending.acquire(blocking=False):
        _end_now(signum)
    os._exit(_exit_code_for(signum))  # `main` has said it already


def _flushed() -> bool:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe, a closed stream
        return False
    return True
