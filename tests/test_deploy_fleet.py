"""The fleet CronJob: valid against the Kubernetes schemas (offline), its args accepted by
the real CLI, and every target's credentials where the fleet config says they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.support import REPO
from worker.cli.main import build_parser
from worker.fleet import parse_fleet, plan_runs

FLEET = REPO / "deploy" / "kubernetes" / "fleet"
K8S_VERSION = "1.33"


def _cronjob() -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all((FLEET / "cronjob.yaml").read_text()) if d]
    return doc


def _pod() -> dict[str, Any]:
    return _cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_fleet_cronjob_is_valid_against_the_kubernetes_schema() -> None:
    kubernetes_validate.validate(_cronjob(), K8S_VERSION, strict=True)


def test_its_args_are_flags_the_cli_accepts_and_its_config_is_the_configmap() -> None:
    [container] = _pod()["containers"]
    ns = build_parser().parse_args(container["args"])
    assert ns.command == "run"
    kustomization = yaml.safe_load((FLEET / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["cronjob.yaml"]
    [generator] = kustomization["configMapGenerator"]
    [config_file] = generator["files"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    assert volumes["config"]["configMap"]["name"] == generator["name"]
    assert ns.config == Path(mounts["config"]) / config_file


def test_every_target_finds_its_project_id_and_its_own_mounted_token(tmp_path: Path) -> None:
    """Build each target's credentials as the pod would see them: its project ID from its
    own Secret's env var, its token from the file its own Secret mounts."""
    [container] = _pod()["containers"]
    raw = yaml.safe_load((FLEET / "fleet.yaml").read_text())
    env_from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
                       for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod()["volumes"]}
    env: dict[str, str] = {}
    for target in raw["targets"]:
        secret = env_from_secret[target["project_id_env"]]
        assert secret == f"rebrand-{target['name']}"
        token_path = Path(target["token_file"])
        volume = volumes[mounts[str(token_path.parent)]]
        assert volume["secret"]["secretName"] == secret  # its own Secret, nobody else's
        env[target["project_id_env"]] = f"{target['name']}-project"
        local = tmp_path / target["name"] / token_path.name
        local.parent.mkdir()
        local.write_text(f"{target['name']}-token-from-secret\n")
        target["token_file"] = str(local)
    runs = plan_runs(parse_fleet(raw), env, {})
    assert {r.name: r.credentials.api_token for r in runs} == {
        t["name"]: f"{t['name']}-token-from-secret" for t in raw["targets"]}
    assert {r.name: r.settings.space.host for r in runs} == {
        "acme": "acme.signalwire.com", "globex": "globex.signalwire.com",
        "initech": "initech.signalwire.com"}
    by_name = {r.name: r.settings for r in runs}
    assert by_name["globex"].rate_limit == 600
    assert by_name["acme"].themes is not None and by_name["acme"].themes.named
    assert by_name["initech"].themes is not None and not by_name["initech"].themes.named


def test_the_fleet_deadline_and_grace_fit_inside_the_job_deadline() -> None:
    spec = _cronjob()["spec"]["jobTemplate"]["spec"]
    [container] = _pod()["containers"]
    ns = build_parser().parse_args(container["args"])
    assert ns.deadline_s + ns.grace_s < spec["activeDeadlineSeconds"]
    assert ns.grace_s < _pod()["terminationGracePeriodSeconds"]
