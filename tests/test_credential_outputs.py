"""The credentials never reach an output, whichever way a form of them got into what is
written: a config file the token was pasted into, a journal that carries it, text that
is escaped for Markdown, HTML or a terminal on its way out. The token below holds
characters each of those escapings changes, and every test looks for any six-character
piece of it, so a form nobody thought of is found too."""

from __future__ import annotations

import argparse
import copy
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.support import BRAND, SANDBOX_CREDENTIALS, rebrand, sandbox_env, serve_app, write_config
from tests.test_hostile_server import conference, ids, space_app
from worker.cli import commands
from worker.cli import fleet as fleet_cli
from worker.cli.human import Ending, Verbosity
from worker.cli.main import main
from worker.cli.screen import Screen
from worker.cli.style import Palette
from worker.config import parse_settings
from worker.contrast import Level
from worker.credentials import Credentials
from worker.errors import ExitCode
from worker.outcome import Change, Kind, Outcome
from worker.palettes import PlanAudit
from worker.run.api import snippet
from worker.run.fleet import TargetResult
from worker.run.job import JobResult
from worker.run.logs import Scrubber, configure_logging, scrub, secret_forms
from worker.run.probe import ProbeResult
from worker.run.report import Reporter
from worker.run.stopping import Stop
from worker.text import markdown_cell

pytestmark = pytest.mark.anyio

TOKEN = "Zq7_s*E+c<r>e&t|VALUE93"  # a test credential: Markdown and HTML both escape it


def pieces(token: str = TOKEN) -> set[str]:
    """Every six-character piece of the token: none may show anywhere."""
    return {token[i:i + 6] for i in range(len(token) - 5)}


def leaked(*written: str) -> set[str]:
    """The pieces of the token in what was written, in any case (a host name is shown
    lower-cased, and the token with it)."""
    everything = "\n".join(written).lower()
    return {piece for piece in pieces() if piece.lower() in everything}


# 4. Config errors quote the bad value: a token pasted into the file is that value.

_PASTED = {
    "as the space": {"space": TOKEN, "theme": BRAND},
    "as a theme color": {"space": "example.signalwire.com",
                         "theme": {**BRAND, "light": {**BRAND["light"], "primary": TOKEN}}},
    "as a key": {"space": "example.signalwire.com", "theme": BRAND, TOKEN: "x"},
    "as concurrency": {"space": "example.signalwire.com", "theme": BRAND,
                       "concurrency": TOKEN},
    "as two rules' name": {"space": "example.signalwire.com",
                           "rules": [{"name": TOKEN, "select": {"include": ["a*"]},
                                      "theme": BRAND},
                                     {"name": TOKEN, "theme": copy.deepcopy(BRAND)}]},
}


@pytest.mark.parametrize("where", [*_PASTED, "breaking the YAML"])
@pytest.mark.parametrize("command", ["plan", "validate"])
def test_a_config_error_never_quotes_the_environments_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, command: str
) -> None:
    config = tmp_path / "rebrand.yaml"
    if where in _PASTED:
        config.write_text(yaml.safe_dump(_PASTED[where], allow_unicode=True), encoding="utf-8")
    else:
        config.write_text(f'space: "{TOKEN}\ntheme: {{}}\n', encoding="utf-8")
    summary = tmp_path / "plan.md"
    args = ["--config", str(config)] + (["--summary-md", str(summary)] if command == "plan"
                                        else [])
    code = main([command, *args], env=sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "rebrand: error:" in err
    written = [out, err, summary.read_text()] if command == "plan" else [out, err]
    assert not leaked(*written), err


def test_a_usage_error_never_quotes_the_environments_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "plan.md"
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--config", str(tmp_path / "rebrand.yaml"), "--summary-md", str(summary),
              "--concurrency", TOKEN], env=sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN))
    out, err = capsys.readouterr()
    assert exited.value.code == 2, err
    assert "--concurrency" in err
    assert not leaked(out, err, summary.read_text()), err


# 2, 3 and 5. What the Space (or a journal) named a conference goes into the plan's
# Markdown and HTML escaped: escaped first, the token took a form the scrub did not know.

SECRETS = Credentials(SANDBOX_CREDENTIALS.project_id, TOKEN).secrets
# A room whose own white background the theme's light foreground would make unreadable:
# the contrast audit keeps it as an example, and the preview draws its palette.
_BEFORE = (("light_primary", "#000000"), ("light_background", "#FFFFFF"),
           ("light_foreground", "#111111"), ("layout", "grid-responsive"))


def _planned_with_the_token() -> Outcome:
    return Outcome(Kind.PLANNED, ids(1)[0], f"room {TOKEN}", rule=None, changes=(
        Change("light_primary", f"#{TOKEN}", "#0A84FF"),
        Change("light_foreground", "#111111", "#FEFEFE")), before=_BEFORE)


def _reporter(audit: PlanAudit | None = None) -> Reporter:
    # As the CLI sets it up: the events are scrubbed as they are rendered.
    configure_logging("json", secrets=SECRETS)
    reporter = Reporter(keep_plans=True)
    if audit is not None:
        reporter.listeners.append(audit.observe)
    reporter.record(_planned_with_the_token())
    return reporter


def _result(reporter: Reporter) -> JobResult:
    return JobResult(reporter.summary(), ExitCode.CHANGES_PENDING, None)


def _namespace(tmp_path: Path, **more: object) -> argparse.Namespace:
    return argparse.Namespace(command="plan", dry_run=True, report=tmp_path / "report.json",
                              summary_md=tmp_path / "plan.md", metrics_file=None,
                              pushgateway=None, **more)


def test_a_plan_written_for_a_person_or_a_ci_summary_never_shows_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = PlanAudit(Level.AA, partial=True, group=True)
    reporter = _reporter(audit)
    ns = _namespace(tmp_path)
    screen = Screen("console", Palette(), Verbosity.NORMAL, "console", SECRETS)
    code = commands._conclude(_result(reporter), ns, reporter, screen,
                              Ending("plan", 0, dry_run=True), secrets=SECRETS, audit=audit)
    out, err = capsys.readouterr()
    assert code == ExitCode.CHANGES_PENDING
    assert audit.failing == 1  # the audit's example is in the summary, and at the terminal
    markdown = (tmp_path / "plan.md").read_text()
    assert "room" in markdown and "room" in out
    assert not leaked(out, err, markdown, (tmp_path / "report.json").read_text()), markdown


def test_a_fleets_plan_table_and_summary_never_show_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = _reporter()
    ns = _namespace(tmp_path)
    code = fleet_cli.conclude([TargetResult("acme", _result(reporter), reporter)], ns, Stop(),
                              "console", secrets=SECRETS, dry_run=True)
    out, err = capsys.readouterr()
    assert code == ExitCode.CHANGES_PENDING
    markdown = (tmp_path / "plan.md").read_text()
    assert "room" in markdown and "room" in out
    assert not leaked(out, err, markdown, (tmp_path / "report.json").read_text()), out


def test_the_plan_preview_page_never_shows_the_token(tmp_path: Path) -> None:
    audit = PlanAudit(Level.AA, partial=True, group=True)
    _reporter(audit)
    rules = parse_settings({"space": "example.signalwire.com", "theme": BRAND}, {}).themes
    assert rules is not None
    page = tmp_path / "preview.html"
    commands._write_plan_preview(page, audit, rules, "json", Scrubber(SECRETS))
    html = page.read_text()
    assert "room" in html and "data-count" in html  # the room's palette is drawn
    assert not leaked(html)


# 1. `validate --online` quotes the Space's answers in the problems it finds.


def test_validate_online_never_prints_the_token_an_answer_quotes(
    capsys: pytest.CaptureFixture[str]
) -> None:
    cid = ids(1)[0]
    found = ProbeResult((f"conference {cid}: name: {TOKEN!r} is not a string",
                         f"listing: data[0].{TOKEN}: not in the spec"), (), 1, cid)
    code = commands._report_probe(found, "https://example.signalwire.com", Scrubber(SECRETS))
    out, err = capsys.readouterr()
    assert code == ExitCode.ABORTED
    assert "not in the spec" in out
    assert not leaked(out, err), out


# 4 and 5. A value in the config is shown as it is (a rule's name in `validate`, in the
# preview, in the journal): a token pasted into the file is refused before it is used.


def _rule_named_the_token(tmp_path: Path) -> Path:
    config = tmp_path / "rebrand.yaml"
    config.write_text(yaml.safe_dump({"space": "example.signalwire.com", "rules": [
        {"name": f"rule {TOKEN}", "select": {"include": ["sales-*"]}, "theme": BRAND},
        {"name": "rest", "theme": copy.deepcopy(BRAND)}]}), encoding="utf-8")
    return config


@pytest.mark.parametrize("command", ["validate", "preview"])
def test_a_token_pasted_into_the_config_is_refused_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    page = tmp_path / "preview.html"
    args = ["--out", str(page)] if command == "preview" else []
    code = main([command, "--config", str(_rule_named_the_token(tmp_path)), *args],
                env=sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN))
    out, err = capsys.readouterr()
    written = [out, err, page.read_text() if page.exists() else ""]
    assert not leaked(*written), written
    assert code == ExitCode.BAD_INPUT, err
    assert "rules[0].name: holds the API token" in err


def test_a_fleet_refuses_a_config_that_holds_a_targets_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump({
        "rules": [{"name": f"rule {TOKEN}", "select": {"include": ["sales-*"]},
                   "theme": BRAND}, {"name": "rest", "theme": copy.deepcopy(BRAND)}],
        "targets": [{"name": "acme", "space": "acme.signalwire.com",
                     "project_id_env": "ACME_PROJECT_ID", "token_env": "ACME_API_TOKEN"}]}),
        encoding="utf-8")
    env = {**sandbox_env(), "ACME_PROJECT_ID": "acme-project", "ACME_API_TOKEN": TOKEN}
    code = main(["validate", "--config", str(config)], env=env)
    out, err = capsys.readouterr()
    assert not leaked(out, err), out
    assert code == ExitCode.BAD_INPUT, err
    assert "rules[0].name: holds the API token" in err


# 5. A server's error body may quote the token as an HTML page or a Markdown table
# would write it: those are forms of it too.


@pytest.mark.parametrize("escaped", ["html", "markdown"])
async def test_an_error_body_quoting_the_token_escaped_for_html_or_markdown_is_scrubbed(
    tmp_path: Path, escaped: str
) -> None:
    cid = ids(1)[0]
    form = {"html": html.escape(TOKEN), "markdown": markdown_cell(TOKEN)}[escaped]
    assert leaked(form)  # the escaped form still shows pieces of the token

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid)]}

    async def put(_request: web.Request) -> web.Response:
        return web.json_response({"errors": [{"message": f"bad header: Basic {form}"}]},
                                 status=422)

    async with serve_app(space_app(pages, [], put=put)) as url:
        config = write_config(tmp_path, url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            "--report", tmp_path / "report.json",
                            env=sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN))
    assert ran.code == ExitCode.FAILURES, ran.err
    report = (tmp_path / "report.json").read_text()
    assert "bad header: Basic [REDACTED]" in report
    assert not leaked(ran.out, ran.err, report), report


def test_a_fleet_error_never_quotes_a_targets_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(yaml.safe_dump({"theme": BRAND, "targets": [
        {"name": "acme", "space": TOKEN, "project_id_env": "ACME_PROJECT_ID",
         "token_env": "ACME_API_TOKEN"}]}), encoding="utf-8")
    env = {**sandbox_env(), "ACME_PROJECT_ID": "acme-project", "ACME_API_TOKEN": TOKEN}
    code = main(["plan", "--config", str(config), "--summary-md", str(tmp_path / "plan.md")],
                env=env)
    out, err = capsys.readouterr()
    assert code == ExitCode.BAD_INPUT, err
    assert "targets[0].space: holds the API token" in err
    assert not leaked(out, err, (tmp_path / "plan.md").read_text()), err



def test_an_html_error_pages_title_is_cleaned_before_its_tags_are_taken_out() -> None:
    """The token's `<r>` is a tag to the page: taken out first, it left the rest of the
    token in a form no search knew."""
    page = f"<!doctype html><html><head><title>bad {TOKEN}</title></head></html>".encode()
    words = snippet(page, None, lambda text: scrub(text, secret_forms(SECRETS)))
    assert words == "answer: an HTML page: bad [REDACTED]"
    assert not leaked(words)

# 5. The same, written so that only a browser or a Markdown viewer shows it: HTML numeric
# character references, or a backslash before each punctuation mark. Nobody decodes it on
# the way out, but whoever pastes the text into either reads the token.

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_ENCODINGS: dict[str, Callable[[str], str]] = {
    "as it is": lambda s: s,  # in an HTML page, the token's `<r>` is a tag
    "decimal references": lambda s: "".join(f"&#{ord(c)};" for c in s),
    "hex references": lambda s: "".join(f"&#x{ord(c):x};" for c in s),
    "mixed-case hex references": lambda s: "".join(
        f"&#X{ord(c):X}" if i % 2 else f"&#x{ord(c):x};" for i, c in enumerate(s)),
    "some letters as references": lambda s: "".join(
        f"&#{ord(c)};" if i % 3 == 0 else html.escape(c) for i, c in enumerate(s)),
    "markdown backslash escapes": lambda s: _PUNCTUATION.sub(r"\\\1", s),
}
# How a server's error answer may carry the words: each goes through a different path.
_SHAPES: dict[str, Callable[[str], web.Response]] = {
    "422 message": lambda words: web.json_response(
        {"errors": [{"message": words, "attribute": "name"}]}, status=422),
    "error field": lambda words: web.json_response({"error": words}, status=400),
    "html page": lambda words: web.Response(
        text=f"<!doctype html><html><head><title>{words}</title></head><body>no</body></html>",
        content_type="text/html", status=400),
    "unknown shape": lambda words: web.json_response({"detail": {"why": words}}, status=400),
}


def shown(text: str) -> str:
    """`text` as a browser or a Markdown viewer shows it: references and escapes decoded."""
    return html.unescape(re.sub(r"\\+([!-/:-@\[-`{-~])", r"\1", text))


def _failures(report: str) -> dict[str, list[str]]:
    return {f["conference_id"]: f["errors"] for f in json.loads(report)["failures"]}


async def test_an_error_answer_quoting_a_secret_as_a_browser_or_markdown_decodes_it_is_scrubbed(
    tmp_path: Path
) -> None:
    """Every encoding in every shape of error answer, for the token and for the
    Authorization header (which holds the project id): one conference each."""
    credentials = Credentials(SANDBOX_CREDENTIALS.project_id, TOKEN)
    header = credentials.secrets[1]  # base64 of project_id:token
    cases = [(encoding, shape, secret) for encoding in _ENCODINGS for shape in _SHAPES
             for secret in (TOKEN, header)]
    cids = ids(len(cases))
    by_id = dict(zip(cids, cases, strict=True))
    for encoding, _shape, secret in cases:
        assert shown(_ENCODINGS[encoding](secret)) == secret

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [conference(cid, n) for n, cid in enumerate(cids)]}

    async def put(request: web.Request) -> web.Response:
        encoding, shape, secret = by_id[request.match_info["id"]]
        return _SHAPES[shape](f"bad header: Basic {_ENCODINGS[encoding](secret)} refused")

    async with serve_app(space_app(pages, [], put=put)) as url:
        config = write_config(tmp_path, url)
        ran = await rebrand("run", "--config", config, "--backup-dir", tmp_path / "b",
                            "--report", tmp_path / "report.json",
                            "--max-failures", str(len(cases) + 1),
                            env=sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN))
    assert ran.code == ExitCode.FAILURES, ran.err
    report = (tmp_path / "report.json").read_text()
    failures = _failures(report)
    assert set(failures) == set(cids)
    for cid, errors in failures.items():
        words = " ".join(errors)
        assert "[REDACTED]" in words and "refused" in words, (by_id[cid], words)
        assert credentials.secrets[1] not in shown(words), (by_id[cid], words)
    assert not leaked(shown(ran.out), shown(ran.err), shown(report)), report
    assert header not in shown(ran.out + ran.err + report)


# 1. A field that reaches a log line without passing `_clean` (what the Space named a
# conference) may hold the token in another case: the line's last scrub ignores case too.


@pytest.mark.parametrize("cased", [str.upper, str.lower, str.swapcase])
async def test_a_name_holding_the_token_in_another_case_never_reaches_a_log_line(
    tmp_path: Path, cased: Callable[[str], str]
) -> None:
    cid = ids(1)[0]

    def pages(_number: int, _request: web.Request) -> dict[str, Any]:
        return {"links": {}, "data": [{**conference(cid), "name": f"room {cased(TOKEN)}"}]}

    async with serve_app(space_app(pages, [])) as url:
        ran = await rebrand("plan", "--config", write_config(tmp_path, url),
                            env=sandbox_env(SIGNALWIRE_API_TOKEN=TOKEN))
    assert ran.code == ExitCode.CHANGES_PENDING, ran.err
    planned = [e for e in ran.events() if e.get("event") == "conference.planned"]
    assert [e["name"] for e in planned] == ["room [REDACTED]"], ran.out
    assert not leaked(ran.out, ran.err), ran.out
