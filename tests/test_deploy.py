"""The Kubernetes manifests: valid against the Kubernetes schemas (offline), and their
container args are flags the real CLI accepts, consistent with the pod around them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support import REPO
from worker.cli.main import build_parser
from worker.config import parse_settings
from worker.shard import Shard, resolve_shard

K8S = REPO / "deploy" / "kubernetes"
# A release kubernetes-validate ships schemas for, with podFailurePolicy and
# backoffLimitPerIndex both GA.
K8S_VERSION = "1.33"
MANIFESTS = ("cronjob.yaml", "indexed-job.yaml", "restore-job.yaml", "backups-pvc.yaml")
# What a pod needs between the tool's --deadline plus drain and activeDeadlineSeconds:
# start-up, the summary, the report and the metrics push.
MARGIN_S = 60


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


def _pod_specs() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, job spec, pod spec) for every Job and CronJob."""
    out = []
    for name in MANIFESTS:
        for doc in _documents(name):
            if doc["kind"] == "CronJob":
                job = doc["spec"]["jobTemplate"]["spec"]
            elif doc["kind"] == "Job":
                job = doc["spec"]
            else:
                continue
            out.append((name, job, job["template"]["spec"]))
    return out


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(name: str) -> None:
    for doc in _documents(name):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_does_catch_a_mistake() -> None:
    [doc] = _documents("cronjob.yaml")
    broken = copy.deepcopy(doc)
    broken["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_both_workloads_are_there() -> None:
    assert sorted(name for name, _, _ in _pod_specs()) == \
        ["cronjob.yaml", "indexed-job.yaml", "restore-job.yaml"]


@pytest.mark.parametrize(("name", "job", "pod"), _pod_specs())
def test_container_args_are_real_cli_flags_consistent_with_the_pod(
    name: str, job: dict[str, Any], pod: dict[str, Any]
) -> None:
    [container] = pod["containers"]
    ns = build_parser().parse_args(container["args"])
    assert ns.command == ("restore" if name == "restore-job.yaml" else "run")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert str(ns.config).startswith(mounts["config"] + "/")
    assert "configMap" in volumes["config"]
    assert str(ns.backup_dir) == mounts["backups"] == "/work/rebrand-backups"
    # The pod outlives the tool's own drain, so the summary is always written.
    assert pod["terminationGracePeriodSeconds"] > ns.grace_s
    # The tool stops itself (exit 5, summary written) before Kubernetes kills it.
    assert ns.deadline_s is not None
    assert ns.deadline_s + ns.grace_s + MARGIN_S <= job["activeDeadlineSeconds"]
    env = {e["name"]: e for e in container["env"]}
    token_file = env["SIGNALWIRE_API_TOKEN_FILE"]["value"]
    assert token_file.startswith(mounts["credentials"] + "/")
    assert "SIGNALWIRE_API_TOKEN" not in env  # the token never sits in the pod's env
    secret = volumes["credentials"]["secret"]
    assert env["SIGNALWIRE_PROJECT_ID"]["valueFrom"]["secretKeyRef"]["name"] == \
        secret["secretName"]
    assert [i["path"] for i in secret["items"]] == [Path(token_file).name]


@pytest.mark.parametrize(("name", "job", "pod"), _pod_specs())
def test_jobs_fail_fast_on_exit_2_or_3_ignore_disruptions_and_never_restart(
    name: str, job: dict[str, Any], pod: dict[str, Any]
) -> None:
    assert pod["restartPolicy"] == "Never"
    rules = job["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail[0]["onExitCodes"] == {"containerName": pod["containers"][0]["name"],
                                      "operator": "In", "values": [2, 3]}
    assert {"action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules


@pytest.mark.parametrize(("name", "job", "pod"), _pod_specs())
def test_pods_run_locked_down_and_sized(name: str, job: dict[str, Any],
                                        pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["memory"] == "128Mi"
    assert container["resources"]["limits"]["memory"] == "256Mi"


def test_cronjob_never_overlaps_and_has_deadlines() -> None:
    [doc] = _documents("cronjob.yaml")
    spec = doc["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
    assert spec["jobTemplate"]["spec"]["backoffLimit"] >= 0


def test_indexed_job_shard_count_matches_its_completions_and_covers_every_index() -> None:
    [job] = [d for d in _documents("indexed-job.yaml") if d["kind"] == "Job"]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    [container] = spec["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    count = int(env["REBRAND_SHARD_COUNT"])
    assert count == spec["completions"] == spec["parallelism"]
    ns = build_parser().parse_args(container["args"])
    shards = [resolve_shard(ns.shard, {"JOB_COMPLETION_INDEX": str(i), **env})
              for i in range(spec["completions"])]
    assert shards == [Shard(i, count) for i in range(count)]


def test_kustomization_lists_files_that_exist_and_a_config_the_tool_accepts() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    [generator] = kustomization["configMapGenerator"]
    assert generator["name"] == "rebrand-config"
    [config_file] = generator["files"]
    raw = yaml.safe_load((K8S / config_file).read_text(encoding="utf-8"))
    settings = parse_settings(raw, {})
    assert settings.theme.colors
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    # Both workloads mount the generated ConfigMap by that name.
    for _, _, pod in _pod_specs():
        names = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
        assert names == [generator["name"]]


@pytest.mark.parametrize(("name", "job", "pod"), _pod_specs())
def test_a_deadline_reached_is_not_retried_within_the_job(
    name: str, job: dict[str, Any], pod: dict[str, Any]
) -> None:
    """Exit 5 (deadline reached, progress kept): the Job (or, for a shard, its index)
    fails at once; the next run resumes. Exit 4 (API unreachable) stays retried."""
    action = "FailIndex" if "backoffLimitPerIndex" in job else "FailJob"
    rules = job["podFailurePolicy"]["rules"]
    assert {"action": action,
            "onExitCodes": {"containerName": pod["containers"][0]["name"],
                            "operator": "In", "values": [5]}} in rules
    for rule in rules:
        assert 4 not in rule.get("onExitCodes", {}).get("values", [])


def test_the_deadline_consistency_check_catches_a_deadline_too_long() -> None:
    [doc] = _documents("cronjob.yaml")
    job = doc["spec"]["jobTemplate"]["spec"]
    args = list(job["template"]["spec"]["containers"][0]["args"])
    args[args.index("--deadline") + 1] = str(job["activeDeadlineSeconds"] - 30)
    ns = build_parser().parse_args(args)
    assert ns.deadline_s + ns.grace_s + MARGIN_S > job["activeDeadlineSeconds"]


def test_the_cronjob_keeps_its_volume_tidy() -> None:
    [doc] = _documents("cronjob.yaml")
    [container] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ns = build_parser().parse_args(container["args"])
    assert ns.keep_days == 30
    assert ns.compress_journals


def test_the_restore_job_undoes_the_newest_run_from_the_cronjobs_volume() -> None:
    [restore] = _documents("restore-job.yaml")
    [cron] = _documents("cronjob.yaml")
    pod = restore["spec"]["template"]["spec"]
    cron_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    ns = build_parser().parse_args(pod["containers"][0]["args"])
    assert ns.latest and ns.journal is None
    assert ns.config is not None  # the Space comes from the same ConfigMap as the runs'

    def claim(spec: dict[str, Any]) -> str:
        [volume] = [v for v in spec["volumes"] if v["name"] == "backups"]
        return str(volume["persistentVolumeClaim"]["claimName"])

    assert claim(pod) == claim(cron_pod) == "rebrand-backups"
    assert pod["containers"][0]["env"] == cron_pod["containers"][0]["env"]


def test_the_backup_volume_is_sized_from_the_journal_weight() -> None:
    """About 1.05 GB per million conferences a run changes: the CronJob's volume holds
    a first run over at least 3 million, the shards' one over at least 4 million."""
    def gib(name: str) -> float:
        [pvc] = [d for d in _documents(name) if d["kind"] == "PersistentVolumeClaim"]
        return float(pvc["spec"]["resources"]["requests"]["storage"].removesuffix("Gi"))

    per_million_gb = 1.05
    assert gib("backups-pvc.yaml") * 1.073741824 >= 3 * per_million_gb
    assert gib("indexed-job.yaml") * 1.073741824 >= 4 * per_million_gb
