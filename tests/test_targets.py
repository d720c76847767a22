"""Targets: each Space named with where its credentials live, every mistake named by target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.errors import ConfigError
from worker.targets import parse_targets

THEME = {"light": {"primary": "#0A84FF"}}


def _target(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "acme", "space": "acme.signalwire.com",
                            "project_id_env": "ACME_PROJECT_ID", "token_env": "ACME_API_TOKEN"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_a_target_reads_its_own_variables_only() -> None:
    (target,) = parse_targets([_target()])
    env = {"ACME_PROJECT_ID": "acme-project", "ACME_API_TOKEN": "acme-token-123",
           "SIGNALWIRE_PROJECT_ID": "other", "SIGNALWIRE_API_TOKEN": "other-token-123"}
    credentials = target.credentials(env)
    assert (credentials.project_id, credentials.api_token) == ("acme-project", "acme-token-123")
    assert target.space.origin == "https://acme.signalwire.com"
    assert target.rules is None and target.select is None and target.rate_limit is None


def test_a_target_may_read_its_token_from_a_mounted_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-token-123\n")
    (target,) = parse_targets([_target(token_env=None, token_file=str(secret))])
    assert target.credentials({"ACME_PROJECT_ID": "p"}).api_token == "file-token-123"


def test_missing_variables_name_the_target_and_the_variable() -> None:
    (target,) = parse_targets([_target()])
    with pytest.raises(ConfigError, match=r"targets\.acme: ACME_API_TOKEN is not set"):
        target.credentials({"ACME_PROJECT_ID": "p"})
    with pytest.raises(ConfigError, match=r"targets\.acme: ACME_PROJECT_ID and ACME_API_TOKEN"):
        target.credentials({})
    with pytest.raises(ConfigError, match=r"targets\.acme: ACME_API_TOKEN: only 3 characters"):
        target.credentials({"ACME_PROJECT_ID": "p", "ACME_API_TOKEN": "abc"})


def test_a_target_carries_its_own_theme_rules_select_and_rate() -> None:
    a, b = parse_targets([
        _target(theme=THEME, select={"include": ["team-*"]}, rate_limit=300),
        _target(name="globex", space="globex.signalwire.com", project_id_env="G_ID",
                token_env="G_TOKEN", rules=[{"name": "all", "theme": THEME}]),
    ])
    assert a.rules is not None and not a.rules.named
    assert a.select is not None and a.select.include == ("team-*",)
    assert a.rate_limit == 300.0
    assert b.rules is not None and [r.name for r in b.rules.rules] == ["all"]


@pytest.mark.parametrize(("raw", "message"), [
    ([], "targets: must be a non-empty list"),
    ([_target(name="Acme")], "targets[0].name: 'Acme' is not a target name"),
    ([_target(), _target(space="x.signalwire.com")], "targets[1].name: 'acme' is used"),
    ([_target(), _target(name="again")], "targets.again: same Space and project"),
    ([_target(space=None)], "targets.acme.space: missing"),
    ([_target(space=5)], "targets.acme.space: 5 is not a Space address; write it as text"),
    ([_target(space="http://example.com")], "targets.acme.space: plain http://"),
    ([_target(project_id_env=None)], "targets.acme.project_id_env: missing"),
    ([_target(token_env=None)], "targets.acme: name where its token lives"),
    ([_target(token_file="/x")], "targets.acme: `token_env` and `token_file` are both given"),
    ([_target(token_env="sk-live 123")], "targets.acme.token_env: is not an environment variable"),
    ([_target(api_token="sk-live-123")], "targets.acme.api_token: credentials are never read"),
    ([_target(colour=1)], "targets.acme.colour: unknown key"),
    ([_target(theme=THEME, rules=[{"theme": THEME}])], "targets.acme: `theme` and `rules`"),
    ([_target(theme={"light": {"primary": "red"}})],
     "targets.acme.theme.light.primary: 'red' is not a #RRGGBB color"),
    ([_target(rate_limit=0)], "targets.acme.rate_limit: 0 is not a positive number"),
    ([_target(rate_limit=True)], "targets.acme.rate_limit: True is not a positive number"),
])
def test_mistakes_name_the_target(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_targets(raw)
    assert str(caught.value).startswith(message)
    assert "sk-live" not in str(caught.value)
