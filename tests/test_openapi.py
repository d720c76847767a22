"""The API spec rebrand carries: one file, read at start, named by `rebrand --version`."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib.resources import files

from tests.support import REPO
from worker import openapi


def test_the_recorded_source_is_that_of_the_bundled_file() -> None:
    """Updating openapi.yaml without updating SOURCE and SOURCE_SHA256 fails here, so
    `--version` never names a source the file did not come from."""
    text = files("worker").joinpath("openapi.yaml").read_bytes()
    assert hashlib.sha256(text).hexdigest() == openapi.SOURCE_SHA256


def test_version_names_the_spec_it_carries() -> None:
    ran = subprocess.run([sys.executable, "-m", "worker", "--version"], capture_output=True,
                         text=True, cwd=REPO, check=False)
    assert ran.returncode == 0, ran.stderr
    first, second = ran.stdout.splitlines()
    assert first.startswith("rebrand ")
    version = openapi.document()["info"]["version"]
    assert second.startswith(f"API spec: SignalWire Video Conferences API {version}, ")
    assert openapi.SOURCE in second and openapi.SOURCE_SHA256[:12] in second


def test_the_sandbox_serves_the_same_document_the_worker_checks_against() -> None:
    from worker.sandbox import spec

    document = spec.spec_document()
    assert document["components"]["schemas"] == openapi.document()["components"]["schemas"]
    # The sandbox's lower-cased auth scheme stays in its own copy.
    scheme = openapi.document()["components"]["securitySchemes"]
    assert any(s["scheme"] == "Basic" for s in scheme.values())
