"""`python -m bench.crash_restore`: kill a run with SIGKILL midway, restore, compare.

A sandbox of N conferences with every fault kind switched on, in its own process; a real
`rebrand run` killed with SIGKILL once K conferences were reported updated; then
`rebrand restore` from its journal. Prints the before/mid/after comparison and exits 1
unless every conference is back to its pre-run writable state.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from bench.contest import credentials_env
from bench.sandbox import SandboxKnobs, SandboxProcess
from worker.decide import same_writable_state

FAULTS = ("--fault-500", "0.03", "--fault-503", "0.03", "--fault-429", "0.02",
          "--fault-drop", "0.02")


def _differing(a: dict[str, dict[str, object]], b: dict[str, dict[str, object]]) -> int:
    return sum(1 for cid, conference in a.items() if not same_writable_state(conference, b[cid]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash_restore", description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--kill-after", type=int, default=600,
                        help="SIGKILL once this many conference.updated events were seen")
    parser.add_argument("--latency", type=float, default=0.01)
    ns = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="crash-restore-"))
    knobs = SandboxKnobs(ns.count, ns.latency, None, 10.0, validate=True, extra=FAULTS)
    config = Path(__file__).resolve().parent.parent / "config.example.yaml"
    with SandboxProcess(knobs, work / "sandbox.log") as sb:
        env = {**os.environ, **credentials_env(sb.url, sb.project_id, sb.api_token)}
        before = sb.admin("conferences")["conferences"]
        command = [sys.executable, "-m", "worker", "run", "--config", str(config),
                   "--log-format", "json", "--backup-dir", str(work / "backups")]
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, cwd=work)
        if run.stdout is None:
            raise RuntimeError("the run's stdout is not a pipe")
        updated = 0
        started = time.monotonic()
        for line in run.stdout:
            if b'"conference.updated"' in line:
                updated += 1
                if updated >= ns.kill_after:
                    break
        run.send_signal(signal.SIGKILL)
        run.wait()
        print(f"run: killed with SIGKILL after {updated} conference.updated events "
              f"({time.monotonic() - started:.1f} s), exit {run.returncode}")
        mid = sb.admin("conferences")["conferences"]
        journal = next((work / "backups").glob("*.jsonl"))
        lines = journal.read_bytes().splitlines()
        pre_images = sum(1 for line in lines if b'"pre_image"' in line)
        written = sum(1 for line in lines if b'"written"' in line)
        print(f"journal: {journal.name}: {pre_images} pre-images, {written} written records")
        changed = _differing(mid, before)
        print(f"after the kill: {changed} of {len(before)} conferences differ from before")
        restore = subprocess.run(
            [sys.executable, "-m", "worker", "restore", str(journal), "--log-format", "json",
             "--backup-dir", str(work / "backups")],
            env=env, capture_output=True, cwd=work, check=False)
        summary = orjson.loads(restore.stdout.splitlines()[-1])
        print(f"restore: exit {restore.returncode}; updated {summary['updated']}, "
              f"unchanged {summary['unchanged']}, conflict {summary['conflict']}, "
              f"failed {summary['failed']}, retries {summary['retries']}")
        after = sb.admin("conferences")["conferences"]
        still = _differing(after, before)
        print(f"after the restore: {still} of {len(before)} conferences differ from before "
              "(writable fields; a null display_name counts as its name, which PUT requires)")
    return 0 if still == 0 and restore.returncode == 0 and changed > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
