"""The credentials never reach an output, whichever way a form of them got into what is
written: a config file the token was pasted into, a journal that carries it, text that
is escaped for Markdown, HTML or a terminal on its way out. The token below holds
characters each of those escapings changes, and every test looks for any six-character
piece of it, so a form nobody thought of is found too."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.support import BRAND, sandbox_env
from worker.cli.main import main

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
