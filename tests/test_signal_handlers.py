"""The handlers behind worker.cli.signals and worker.cli.entry, in this process and in a
child: a signal is never met by the default disposition (which PID 1 drops), one taken as
a plan finishes starts no run, and a signal outside a job ends the process even if the
exception raised for it is swallowed on its way to `main`.

The signals sent here to this very process only go where a handler of ours (or a
recording one) is sure to be: each test checks that before it sends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support import SANDBOX_CREDENTIALS, sandbox_in_thread, settings_for
from worker.cli import commands, confirm, entry, loop
from worker.cli.entry import SIGNALS, Interrupted, interrupt
from worker.cli.signals import with_signals
from worker.run.job import JobResult
from worker.run.report import Reporter
from worker.run.stopping import Stop


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`main`'s handlers for the test, this process's own back afterwards; should one be
    called here, its fallback waits an hour rather than end pytest."""
    monkeypatch.setattr(entry, "UNWIND_S", 3600.0)
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


async def _nothing() -> str:
    return "done"


def test_a_signal_after_the_watcher_stopped_is_honoured_as_the_loop_closes(
        handlers: None) -> None:
    """The watcher has stopped, the loop still runs: the disposition is still ours (an
    event loop's removed handler would leave the default, which drops SIGTERM as PID 1),
    and the signal ends the process once the loop is closed."""
    seen: list[Any] = []

    async def job_then_more() -> None:
        assert await with_signals(_nothing, Stop()) == "done"
        seen.append(signal.getsignal(signal.SIGTERM))
        if callable(seen[-1]):  # the default would end this test run: not sent then
            os.kill(os.getpid(), signal.SIGTERM)
            await anyio.sleep(0.05)  # the handler runs; nobody listens any more

    with pytest.raises(Interrupted) as raised:
        loop.run(job_then_more)
    assert seen[0] not in (signal.SIG_DFL, signal.SIG_IGN)
    assert raised.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is interrupt


def test_a_signal_while_a_job_runs_becomes_its_stop_request(handlers: None) -> None:
    stop = Stop()

    async def job() -> str:
        os.kill(os.getpid(), signal.SIGINT)
        with anyio.fail_after(5):
            await stop.event.wait()
        return "stopped"

    assert loop.run(with_signals, job, stop) == "stopped"
    assert stop.reason is not None and stop.reason.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is interrupt


def test_a_signal_taken_as_the_plan_finishes_starts_no_run(
        handlers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's own result is in before the signal is: the question and the run must
    not come after it all the same."""
    real = confirm.plan_quietly

    async def plan_then_signalled(*args: Any, **kwargs: Any) -> tuple[JobResult, Reporter]:
        planned = await real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        await anyio.sleep(0.1)  # the watcher takes it: a stop request, the plan done
        return planned

    monkeypatch.setattr(confirm, "plan_quietly", plan_then_signalled)
    with sandbox_in_thread(count=5) as sb:
        settings = settings_for(sb.url, confirm_above=1_000)
        with pytest.raises(Interrupted) as raised:
            commands._ask_first(settings, SANDBOX_CREDENTIALS, screen=None)  # type: ignore[arg-type]
        assert sb.space.list_count == 1
        assert sb.space.put_count == 0
    assert raised.value.signum == signal.SIGTERM


def _signal_probe(body: str, *signums: int) -> tuple[int, float, str, str]:
    """`entry.main` in a child, its command line replaced by `body`, which prints a line
    each time the next signal may come: the exit code, the seconds from the first signal
    to the exit, stdout and stderr."""
    script = ("import sys, threading, time\nfrom worker.cli import entry\n\n"
              f"def command(argv):\n{textwrap.indent(textwrap.dedent(body), '    ')}\n"
              "entry.load_cli = lambda: command\nraise SystemExit(entry.main([]))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sent = 0.0
    try:
        assert proc.stdout is not None
        for signum in signums:
            assert proc.stdout.readline() == "ready\n"
            os.kill(proc.pid, signum)
            sent = sent or time.monotonic()
        code = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        out, err = proc.communicate()
    return code, took, out, err


# Each body prints "ready" where the signal is to land: inside its `try`.
SWALLOWED = """
while True:
    try:
        print("ready", flush=True)
        time.sleep(10)
    except BaseException:  # a library's bare `except:` (or a __del__) on the way
        pass
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_outside_a_job_ends_the_process_though_its_exception_is_swallowed(
        signum: int) -> None:
    code, took, _, err = _signal_probe(SWALLOWED, signum)
    assert code == 128 + signum
    assert entry.UNWIND_S <= took < entry.UNWIND_S + 1.0
    assert err.strip() == f"rebrand: interrupted by {signal.Signals(signum).name}"


def _ended_at_once_by(probe: tuple[int, float, str, str], signum: int) -> None:
    """Exit 128 + signum well before the fallback would have, with one line saying why."""
    code, took, _, err = probe
    assert code == 128 + signum
    assert took < entry.UNWIND_S
    assert err.strip() == f"rebrand: interrupted by {signal.Signals(signum).name}"


# The signal lands in this `try`, and its exception is dropped there.
SWALLOW_ONCE = """
try:
    print("ready", flush=True)
    time.sleep(10)
except BaseException:
    pass
"""


def test_a_signal_outside_a_job_that_unwinds_leaves_at_once_and_says_so_once() -> None:
    """The usual way: `main` catches it and exits; the fallback never speaks."""
    _ended_at_once_by(_signal_probe('print("ready", flush=True)\ntime.sleep(10)\n',
                                    signal.SIGTERM), signal.SIGTERM)


def test_an_error_the_signal_caused_ends_as_the_signal_with_no_traceback() -> None:
    """Python 3.11 turns an exception raised in `__set_name__` (a dataclass's field, as
    the command line is imported) into a RuntimeError caused by it."""
    body = """
    try:
        print("ready", flush=True)
        time.sleep(10)
    except BaseException as exc:
        raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc
    """
    _ended_at_once_by(_signal_probe(body, signal.SIGTERM), signal.SIGTERM)


def test_a_swallowed_signal_still_keeps_the_next_job_from_starting() -> None:
    body = ("import anyio\nfrom worker.cli import loop\n" + SWALLOW_ONCE
            + 'loop.run(anyio.sleep, 10)\nprint("the job ran", flush=True)\n')
    probe = _signal_probe(body, signal.SIGTERM)
    _ended_at_once_by(probe, signal.SIGTERM)
    assert "the job ran" not in probe[2]


def test_a_command_that_finishes_after_a_swallowed_signal_exits_as_the_signal() -> None:
    _ended_at_once_by(_signal_probe(SWALLOW_ONCE + "return 0\n", signal.SIGINT),
                      signal.SIGINT)


def test_a_second_signal_while_the_first_unwinds_exits_at_once() -> None:
    # The second's code, at once: not the fallback's 143 after UNWIND_S.
    _ended_at_once_by(_signal_probe(SWALLOWED, signal.SIGTERM, signal.SIGINT), signal.SIGINT)


def test_a_signal_while_the_exit_waits_for_a_thread_ends_it_with_no_traceback() -> None:
    """The command is over and returned 0; a thread it left running holds up the
    interpreter's exit (a host's, say)."""
    body = """
    def straggler():
        time.sleep(0.3)  # main has returned by now
        print("ready", flush=True)
        time.sleep(10)
    threading.Thread(target=straggler).start()
    return 0
    """
    _ended_at_once_by(_signal_probe(body, signal.SIGTERM), signal.SIGTERM)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux's /proc")
def test_the_fallback_thread_never_takes_a_signal_meant_for_the_main_thread() -> None:
    """The kernel gives a process's signal to any thread that does not block it, and only
    the main thread's handler runs at once: the fallback, asleep, must block both."""
    body = SWALLOW_ONCE + """
import os
for task in os.listdir("/proc/self/task"):
    if int(task) != os.getpid():
        with open(f"/proc/self/task/{task}/status") as status:
            masks = dict(line.split(":\\t") for line in status.read().splitlines())
        print("blocked", masks["SigBlk"], flush=True)
return 0
"""
    code, _, out, _ = _signal_probe(body, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    blocked = [int(line.split()[1], 16) for line in out.splitlines() if line.startswith("blocked")]
    assert len(blocked) == 1  # the fallback's thread, still asleep
    for signum in SIGNALS:
        assert blocked[0] & (1 << (signum - 1)), signal.Signals(signum).name


def test_a_signals_exception_swallowed_by_a_weakref_callback_ends_the_process_quietly() -> None:
    """The import system's module locks have weakref callbacks, and an exception raised in
    one is printed ("Exception ignored in ...", with a traceback) and dropped. The
    Interrupted of a signal that lands there ends the process at once, as `main` would,
    and prints no traceback (seen once in CI: a SIGTERM 0.1 s into start-up, as PID 1)."""
    code = textwrap.dedent("""
        import signal, sys, weakref
        from worker.cli import entry
        entry.quiet_swallowed_interrupts()

        class Held:
            pass

        def callback(_ref):
            raise entry.Interrupted(signal.SIGTERM)

        held = Held()
        ref = weakref.ref(held, callback)
        del held
        print("went on after the signal", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 128 + signal.SIGTERM, done
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    assert "rebrand: interrupted by SIGTERM" in done.stderr
    assert "went on" not in done.stdout


# `write_stating` as `_conclude` calls it for --report, then more bookkeeping (the metrics).
REPORT_THEN_MORE = """
from pathlib import Path
from worker.cli.commands import write_stating

def write():
    {before_write}
    Path({path!r}).write_text('{{"exit_code": 0}}')

{before_report}
write_stating(Path({path!r}), write, 0)
print("ready", flush=True)
time.sleep(10)
return 0
"""


@pytest.mark.parametrize(("moment", "code"), [("before", 143), ("during", 0), ("after", 0)])
def test_a_signal_near_the_report_exits_with_the_code_the_report_holds(
        tmp_path: Path, moment: str, code: int) -> None:
    """Before the report is written the signal stops the bookkeeping: no report, exit 143.
    While it is written the signal waits for it; after it, the exit code is the report's."""
    path = tmp_path / "report.json"
    wait = 'print("ready", flush=True)\ntime.sleep(10)'
    body = REPORT_THEN_MORE.format(
        path=str(path),
        before_report=wait if moment == "before" else "",
        before_write=('print("ready", flush=True)\n    time.sleep(0.3)' if moment == "during"
                      else "pass"))
    exit_code, _, _, err = _signal_probe(body, signal.SIGTERM)
    assert exit_code == code, err
    if code == 143:
        assert not path.exists()
        assert err.strip() == "rebrand: interrupted by SIGTERM"
    else:
        assert path.read_text() == '{"exit_code": 0}'
        assert "exit 0, as the report says" in err
        assert "Traceback" not in err


def test_a_signal_held_while_an_output_is_written_keeps_its_default_action() -> None:
    """`signals_held` hands each held signal to the handler that was there; a SIGTERM
    with no Python handler (SIG_DFL) must still end the process, not be dropped."""
    code = textwrap.dedent("""
        import os, signal
        from worker.cli.entry import signals_held
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            print("held", flush=True)
        print("went on after the signal", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.stdout.splitlines() == ["held"]
    assert done.returncode == -signal.SIGTERM
