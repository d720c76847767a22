"""`python -m bench.crash_restore`: kill a run with SIGKILL midway, restore, compare.

For each way a Space may treat the fields a PUT leaves out (`--reset`: reset them to
their defaults, to null, or keep them) and each kill point: a sandbox of N conferences
with every fault kind switched on, in its own process; a real `rebrand run` killed with
SIGKILL once K conferences were reported updated (PUTs in flight then land with no
answer journalled); then `rebrand restore` from its journal. Prints one block per trial
and exits 1 unless every conference is back and every restore exited 0.

"Back" is judged by what a PUT can carry: every writable field the conference had
non-null reads as it did (datetimes as instants, colors in any case, a null display_name
as the name, which PUT requires). A null cannot be sent, so a field that was null reads
whatever the Space makes of an omitted field; on a Space that resets omitted fields, a
theme color that was null must read null again. Those reset fields are counted apart.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from bench.contest import credentials_env
from bench.sandbox import SandboxKnobs, SandboxProcess
from worker.body import WRITABLE_FIELDS, echo_mismatches, writable_state
from worker.sandbox.config import RESET_MODES
from worker.theme import COLOR_FIELDS

FAULTS = ("--fault-500", "0.03", "--fault-503", "0.03", "--fault-429", "0.02",
          "--fault-drop", "0.02")
CONFIG = Path(__file__).resolve().parent.parent / "config.example.yaml"

Conferences = Mapping[str, Mapping[str, Any]]


def differing(now: Conferences, before: Conferences, *, omitted_reset: bool) -> int:
    """Conferences not back as they were, judged by what a PUT can carry."""
    return sum(
        1 for cid, old in before.items()
        if echo_mismatches(writable_state(old), writable_state(now[cid]))
        or (omitted_reset and any(old.get(f) is None and now[cid].get(f) is not None
                                  for f in COLOR_FIELDS))
    )


def nulls_reset(now: Conferences, before: Conferences) -> int:
    """Fields null before that read a value now: no PUT can send them null again."""
    return sum(1 for cid, old in before.items() for f in WRITABLE_FIELDS
               if f != "display_name" and old.get(f) is None and now[cid].get(f) is not None)


def trial(mode: str, kill_after: int, ns: argparse.Namespace, work: Path) -> bool:
    """One kill-and-restore on a fresh sandbox; prints what it saw, True when all is back."""
    knobs = SandboxKnobs(ns.count, ns.latency, None, 10.0, validate=True,
                         extra=(*FAULTS, "--reset", mode))
    with SandboxProcess(knobs, work / "sandbox.log") as sb:
        env = {**os.environ, **credentials_env(sb.url, sb.project_id, sb.api_token)}
        before = sb.admin("conferences")["conferences"]
        command = [sys.executable, "-m", "worker", "run", "--config", str(CONFIG),
                   "--log-format", "json", "--backup-dir", str(work / "backups")]
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, cwd=work,
                               stdin=subprocess.DEVNULL)
        if run.stdout is None:
            raise RuntimeError("the run's stdout is not a pipe")
        updated = 0
        started = time.monotonic()
        for line in run.stdout:
            if b'"conference.updated"' in line:
                updated += 1
                if updated >= kill_after:
                    break
        run.send_signal(signal.SIGKILL)
        run.wait()
        print(f"  run: SIGKILL after {updated} conference.updated events "
              f"({time.monotonic() - started:.1f} s), exit {run.returncode}")
        (journal,) = (work / "backups").glob("*.jsonl")
        lines = journal.read_bytes().splitlines()
        pre_images = sum(1 for line in lines if b'"pre_image"' in line)
        written = sum(1 for line in lines if b'"written"' in line)
        mid = sb.admin("conferences")["conferences"]
        changed = differing(mid, before, omitted_reset=False)
        print(f"  journal: {pre_images} pre-images, {written} written records "
              f"({pre_images - written} pre-images with no answer journalled); "
              f"{changed} of {len(before)} conferences changed")
        restore = subprocess.run(
            [sys.executable, "-m", "worker", "restore", str(journal), "--log-format", "json",
             "--backup-dir", str(work / "restores")],
            env=env, capture_output=True, cwd=work, check=False, stdin=subprocess.DEVNULL)
        summary = orjson.loads(restore.stdout.splitlines()[-1])
        print(f"  restore: exit {restore.returncode}; updated {summary['updated']}, "
              f"unchanged {summary['unchanged']}, conflict {summary['conflict']}, "
              f"failed {summary['failed']}, retries {summary['retries']}")
        after = sb.admin("conferences")["conferences"]
        still = differing(after, before, omitted_reset=mode != "keep")
        print(f"  after the restore: {still} of {len(before)} conferences differ from before; "
              f"{nulls_reset(after, before)} fields null before read the Space's "
              f"{'kept' if mode == 'keep' else 'reset'} value (no PUT can send null)")
    # On a Space that keeps omitted fields, a theme color that was null before stays, and
    # the restore says so: those conferences are failed (exit 1), never conflicts.
    honest = restore.returncode == 0 or (
        mode == "keep" and restore.returncode == 1 and summary["conflict"] == 0)
    return still == 0 and honest and changed > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--kill-after", type=int, nargs="+", default=[100, 400, 1000],
                        help="SIGKILL once this many conference.updated events were seen; "
                             "one trial per value")
    parser.add_argument("--reset", choices=RESET_MODES, nargs="+", default=list(RESET_MODES),
                        help="the sandbox's treatment of fields a PUT omits; one trial each")
    parser.add_argument("--latency", type=float, default=0.01)
    ns = parser.parse_args(argv)
    failures = 0
    for mode in ns.reset:
        for kill_after in ns.kill_after:
            print(f"reset={mode} kill-after={kill_after} count={ns.count}", flush=True)
            work = Path(tempfile.mkdtemp(prefix="crash-restore-"))
            ok = trial(mode, kill_after, ns, work)
            failures += not ok
            print(f"  {'ok' if ok else 'NOT BACK'}", flush=True)
    print(f"{failures} of {len(ns.reset) * len(ns.kill_after)} trials left conferences "
          "not back")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
