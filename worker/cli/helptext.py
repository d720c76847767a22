"""The words of `--help`: for each command one sentence for users, real examples, and
the exit codes it can return. Kept apart from the flags so they read as prose."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from worker.errors import ExitCode

_WIDTH = 79
_EXIT_WORDS = {
    ExitCode.OK: "done: every conference ends themed, unchanged or vanished",
    ExitCode.FAILURES: "some conferences failed (each is named in the output)",
    ExitCode.BAD_INPUT: "bad input (config, flags, environment): nothing was sent",
    ExitCode.AUTH: "the Space refused the credentials (401/403)",
    ExitCode.ABORTED: "stopped early: Space unreachable, unsafe link, a listing that would "
                      "not end, an answer with a property the API spec does not name, the "
                      "journal or --report could not be written, --max-failures reached, or "
                      "the question answered no",
    ExitCode.DEADLINE: "--deadline reached: stopped cleanly, what was done stays done; the "
                       "next run resumes (a fleet config names the target)",
    ExitCode.CHANGES_PENDING: "--dry-run: changes are pending (as terraform plan "
                              "-detailed-exitcode)",
    ExitCode.SIGINT: "interrupted by Ctrl-C, after the writes in flight finished",
    ExitCode.SIGTERM: "terminated (SIGTERM), after the writes in flight finished",
}


@dataclass(frozen=True, slots=True)
class CommandHelp:
    summary: str  # one line, in the list of commands
    sentence: str  # opens the command's --help
    examples: tuple[tuple[str, str], ...]  # (command line, what it does)
    exits: tuple[tuple[int, str], ...]

    def description(self) -> str:
        lines = [*textwrap.wrap(self.sentence, _WIDTH), "", "examples:"]
        for line, what in self.examples:
            lines += [f"  # {what}"] if what else []
            lines.append(f"  {line}")
        return "\n".join(lines)

    def epilog(self) -> str:
        lines = ["exit codes:"]
        for code, words in self.exits:
            lines += textwrap.wrap(words, _WIDTH, initial_indent=f"  {code:>3}  ",
                                   subsequent_indent=" " * 7, break_on_hyphens=False)
        return "\n".join(lines)


def _exits(*codes: ExitCode, **overrides: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(c), overrides.get(c.name, _EXIT_WORDS[c])) for c in codes)


_RUNNING = (ExitCode.OK, ExitCode.FAILURES, ExitCode.BAD_INPUT, ExitCode.AUTH,
            ExitCode.ABORTED, ExitCode.DEADLINE)
_SIGNALS = (ExitCode.SIGINT, ExitCode.SIGTERM)

COMMANDS = {
    "run": CommandHelp(
        "re-theme every conference in the Space",
        "Re-theme every Video Conference in the Space to the config's colors, saving each "
        "one's old state first so `rebrand restore` can undo it.",
        (("rebrand run --config config.yaml", "asks first, at a terminal, if more than confirm_above would change"),
         ("rebrand run --config config.yaml --select 'sales-*' --yes", "only the sales rooms"),
         ("rebrand run --config config.yaml --report report.json --deadline 3000",
          "as a CI or CronJob step")),
        _exits(*_RUNNING, ExitCode.CHANGES_PENDING, *_SIGNALS),
    ),
    "plan": CommandHelp(
        "show what run would change; send nothing",
        "Show which conferences `run` would change and each color's old and new value, "
        "sending no writes.",
        (("rebrand plan --config config.yaml", "a table of the changes"),
         ("rebrand plan --config config.yaml --summary-md plan.md", "for a CI job summary"),
         ("rebrand plan --config config.yaml --log-format json | jq .changes", "")),
        _exits(ExitCode.OK, ExitCode.CHANGES_PENDING, *_RUNNING[1:], *_SIGNALS,
               OK="nothing would change",
               CHANGES_PENDING="changes are pending (as terraform plan -detailed-exitcode)",
               FAILURES="some conferences could not be read",
               ABORTED="stopped early: Space unreachable, unsafe link, a listing that would "
                       "not end, an answer with a property the API spec does not name, "
                       "--summary-md or --report could not be written, or --max-failures "
                       "reached"),
    ),
    "restore": CommandHelp(
        "undo a run: put its journal's conferences back",
        "Put every conference a run changed back as its journal recorded it, leaving alone "
        "any that someone else has edited since.",
        # Each names the Space: restore refuses a journal's own say (exit 2), so an example
        # without --space, SIGNALWIRE_SPACE or --config would not run as pasted.
        (("rebrand restore --space example.signalwire.com "
          "rebrand-backups/20261122T015402Z-fdc54f.jsonl",
          "onto the Space the journal's header names"),
         ("rebrand restore --config config.yaml --dry-run --latest",
          "what would be restored: the newest run, the Space from the config"),
         ("rebrand restore --space example.signalwire.com --force "
          "rebrand-backups/20261122T015402Z-fdc54f.jsonl",
          "overwrite later edits too")),
        _exits(*_RUNNING, ExitCode.CHANGES_PENDING, *_SIGNALS,
               OK="every conference is back (or was already)",
               FAILURES="some conferences could not be restored, or were left alone as "
                        "edited since (--force restores those)",
               ABORTED="stopped early: Space unreachable, the journal or --report could not "
                       "be written, or --max-failures reached",
               CHANGES_PENDING="--dry-run: some conferences would be restored"),
    ),
    "validate": CommandHelp(
        "check a config and the credentials (--online: the Space too)",
        "Check a config file and that credentials are set, without contacting the Space; "
        "with --online, also read one page and one conference and check them against the "
        "API spec, writing nothing.",
        (("rebrand validate --config config.yaml", ""),
         ("rebrand validate --config config.yaml --online", "before a first run on a Space")),
        _exits(ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.AUTH, ExitCode.ABORTED,
               OK="the config is valid and credentials are set (and, --online, the Space "
                  "answers as the spec says)",
               BAD_INPUT="the config or the environment needs a change (the message says "
                         "which)",
               AUTH="--online: the Space refused the credentials",
               ABORTED="--online: the Space could not be reached, or its answers do not "
                       "match the spec"),
    ),
    "preview": CommandHelp(
        "see the theme on a conference room, as an HTML page",
        "Write an HTML page that shows the config's theme on a conference room, with its "
        "contrast and color-vision checks; needs no credentials and sends nothing.",
        (("rebrand preview --config config.yaml --out preview.html", ""),
         ("rebrand preview --config config.example.yaml --out brand.html",
          "the example brand, before any Space is set up")),
        _exits(ExitCode.OK, ExitCode.BAD_INPUT,
               OK="written (a theme that fails the contrast check is still drawn, and named "
                  "on stderr)",
               BAD_INPUT="the config needs a change (the message says which)"),
    ),
    "sandbox": CommandHelp(
        "serve a simulated Space on this machine",
        "Serve a simulated Space on loopback that follows the published API, to try "
        "rebrand without an account.",
        (("rebrand sandbox --port 8080 --count 500", "prints its URL and fake credentials"),
         ("rebrand sandbox --port 0 --fault-500 0.05 --fault-429 0.02", "a flaky Space")),
        _exits(ExitCode.OK, ExitCode.BAD_INPUT, OK="stopped by Ctrl-C or SIGTERM",
               BAD_INPUT="a flag needs a change (the message says which)"),
    ),
    "demo": CommandHelp(
        "a simulated Space and a run against it: no account needed",
        "Start a simulated Space with some faults switched on and re-theme it, to see "
        "what a run looks like.",
        (("rebrand demo", "500 conferences"),
         ("rebrand demo --count 5000 --no-faults", ""),
         ("rebrand demo -v", "a line for every conference")),
        _exits(ExitCode.OK, ExitCode.FAILURES, ExitCode.BAD_INPUT, ExitCode.ABORTED,
               ExitCode.DEADLINE, *_SIGNALS, OK="done",
               ABORTED="stopped early (--max-failures reached)"),
    ),
}

OVERVIEW = "\n".join(textwrap.wrap(
    "Re-theme every Video Conference in a SignalWire Space, safely: each conference's "
    "old state is saved before it is changed, so a run can be undone.", _WIDTH))

GETTING_STARTED = """\
get started:
  rebrand demo                            # see a run against a simulated Space
  export SIGNALWIRE_PROJECT_ID=... SIGNALWIRE_API_TOKEN=...
  rebrand plan --config config.yaml       # what would change
  rebrand run --config config.yaml        # change it; the summary says how to undo

`rebrand COMMAND --help` shows a command's flags, examples and exit codes."""
