"""The container, without a Docker engine: replay the Dockerfile's build and install
steps into a fresh venv and run its ENTRYPOINT from there; hadolint keeps it clean."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support import REPO
from worker.version import __version__

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stage = ""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stage = args.split()[-1]
        out.append((stage, instruction.upper(), args.strip()))
    return out


def _run(command: str, *, cwd: Path, paths: dict[str, str]) -> None:
    for image_path, local in paths.items():
        command = command.replace(image_path, local)
    words = shlex.split(command)
    if words[0] == "python":
        words[0] = sys.executable
    if words[0] == "pip":
        words[:1] = [sys.executable, "-m", "pip"]
    done = subprocess.run(words, cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "PIP_NO_CACHE_DIR": "1"})
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])


def _copy(sources: list[str], dest: str, base: Path) -> None:
    """COPY into `base` (the build stage's WORKDIR, or /work for the runtime)."""
    target = base / dest.removeprefix("/work/").removeprefix("./")
    for source in sources:
        to = target / Path(source).name if dest.endswith("/") else target
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, to, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, to)


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_exec_form_non_root_without_healthcheck_with_a_backup_volume() -> None:
    steps = _instructions()
    runtime = [(i, a) for stage, i, a in steps if stage == steps[-1][0]]
    assert ("USER", "10001") in runtime
    # tini is PID 1 and hands signals to rebrand (Python as PID 1 ignores SIGTERM until a
    # handler is installed).
    assert ("ENTRYPOINT", '["tini", "--", "rebrand"]') in runtime
    assert ("VOLUME", '["/work/rebrand-backups"]') in runtime
    assert ("WORKDIR", "/work") in runtime
    assert not any(i == "HEALTHCHECK" for i, _ in runtime)
    # The only directory the user owns is the backup volume.
    [install] = [a for i, a in runtime if i == "RUN"]
    assert "apt-get install -y --no-install-recommends tini" in install
    assert "chown rebrand /work/rebrand-backups" in install
    assert install.count("chown") == 1


@pytest.mark.timeout(240)
def test_replaying_the_dockerfile_install_gives_a_working_entrypoint(tmp_path: Path) -> None:
    """The build stage's COPY and `pip wheel`, then the runtime stage's venv and
    `pip install --no-index --find-links`, with image paths mapped into tmp_path; the
    system steps (useradd, chown) need root and are checked above instead."""
    src, wheels, venv, work = (tmp_path / d for d in ("src", "wheels", "opt", "work"))
    src.mkdir()
    work.mkdir()
    paths = {"/wheels": str(wheels), "/opt/rebrand": str(venv)}
    steps = _instructions()
    build_stage = next(stage for stage, instruction, _ in steps if instruction == "FROM")
    for stage, instruction, args in steps:
        if instruction == "COPY" and not args.startswith("--from"):
            *sources, dest = args.split()
            _copy(sources, dest, src if stage == build_stage else work)
        elif instruction == "RUN":
            for part in args.split("&&"):
                command = part.strip()
                if command.startswith(("python -m venv", "/opt/rebrand/bin/pip")):
                    _run(command, cwd=src, paths=paths)
    [entrypoint] = [json.loads(a) for _, i, a in steps if i == "ENTRYPOINT"]
    assert entrypoint[:2] == ["tini", "--"]
    exe = venv / "bin" / entrypoint[-1]
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "SIGNALWIRE_PROJECT_ID": "p",
           "SIGNALWIRE_API_TOKEN": "container-test-token"}
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                             timeout=30, check=True, env=env, cwd=work)
    assert version.stdout.startswith("rebrand ")
    validate = subprocess.run([str(exe), "validate", "--config", "config.example.yaml"],
                              capture_output=True, text=True, timeout=30, check=False,
                              env=env, cwd=work)
    assert validate.returncode == 0, validate.stderr
    assert "is valid" in validate.stdout
    # The image's installed package is the wheel, not this checkout.
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import worker; print(worker.__file__)"], capture_output=True,
                           text=True, timeout=30, check=True, cwd=work)
    assert where.stdout.startswith(str(venv))
    # Lean: the sandbox's validator is not installed, and the sandbox commands say how to
    # get it instead of failing on an import.
    lean = subprocess.run([str(venv / "bin" / "python"), "-c", "import openapi_core"],
                          capture_output=True, text=True, timeout=30, check=False, cwd=work)
    assert "No module named 'openapi_core'" in lean.stderr
    demo = subprocess.run([str(exe), "demo"], capture_output=True, text=True, timeout=30,
                          check=False, env=env, cwd=work)
    assert demo.returncode == 2, demo.stderr
    assert "-m pip install 'conference-rebrand[sandbox]'" in demo.stderr
    assert "Traceback" not in demo.stderr


def test_base_image_is_a_build_argument_defaulting_to_the_official_slim_python() -> None:
    steps = _instructions()
    assert steps[0] == ("", "ARG", "BASE_IMAGE=python:3.11-slim")
    froms = [a.split()[0] for _, i, a in steps if i == "FROM"]
    assert froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"]


def test_image_labels_name_source_version_revision_licence_and_description() -> None:
    steps = _instructions()
    runtime = [(i, a) for stage, i, a in steps if stage == steps[-1][0]]
    args = dict(a.partition("=")[::2] for i, a in runtime if i == "ARG")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert args["VERSION"] == __version__
    assert "REVISION" in args
    [label] = [a for i, a in runtime if i == "LABEL"]
    labels = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', label))
    assert labels["version"] == "${VERSION}"
    assert labels["revision"] == "${REVISION}"
    assert labels["licenses"] == project["license"] == "MIT"
    assert labels["description"] == project["description"]
    assert labels["source"].startswith("$")


def test_the_licence_file_is_the_mit_text() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in
                (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"  # .git, .venv, tests, build outputs, journals: all left out
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for _, instruction, args in _instructions():
        if instruction == "COPY" and not args.startswith("--from"):
            copied |= {s.removeprefix("./").rstrip("/") for s in args.split()[:-1]}
    assert allowed == copied
