"""Run and restore end to end under the readings the spec leaves open, several at once:
the form of `links.next` and of the last page's, what a PUT does to the fields it leaves
out, whether a 429 says when to come back; with a rate limit and faults on top. Each
reading has its own tests elsewhere; these combine them (every value of each meets every
other in at least one case) and ask the two things that matter: the run themes every
conference exactly once, and the restore puts every one back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import (
    BRAND,
    PATIENT_RETRY,
    SANDBOX_CREDENTIALS,
    SandboxFactory,
    not_back,
    restore_settings,
    settings_for,
)
from worker.errors import ExitCode
from worker.run.job import restore_job, run_job
from worker.run.journal import read_journal
from worker.sandbox import FaultConfig
from worker.theme import COLOR_FIELDS

pytestmark = pytest.mark.anyio

# (next_form, last_next, reset, retry_after)
READINGS = [
    ("absolute", "absent", "nulls", True),
    ("relative", "empty", "defaults", False),
    ("query", "absent", "keep", False),
    ("query", "empty", "nulls", True),
    ("relative", "absent", "keep", True),
    ("absolute", "empty", "defaults", False),
    ("query", "empty", "defaults", True),
    ("absolute", "absent", "keep", False),
]


def _flat(theme: dict[str, dict[str, str]]) -> dict[str, str]:
    return {f"{mode}_{role}": value for mode, roles in theme.items()
            for role, value in roles.items()}


@pytest.mark.parametrize(("next_form", "last_next", "reset", "retry_after"), READINGS,
                         ids=["-".join(map(str, r)) for r in READINGS])
async def test_run_then_restore_under_combined_readings(
    sandbox_factory: SandboxFactory, tmp_path: Path,
    next_form: str, last_next: str, reset: str, retry_after: bool,
) -> None:
    # 429s at random, with or without Retry-After (the Space's own limit without it is
    # tested in test_pipeline: its adaptive crawl would make this slow), and 5xx and
    # dropped answers, whose writes may have landed.
    faults = FaultConfig(error_429=0.1, error_500=0.05, error_503=0.05, drop_after_apply=0.05,
                         retry_after_s=0.0)
    async with sandbox_factory(count=30, next_form=next_form, last_next=last_next,
                               reset=reset, retry_after=retry_after, faults=faults,
                               put_rate_limit=None, on_theme_fraction=0.0) as sb:
        # A room with a color unset cannot have it cleared again by any PUT on a Space
        # that keeps omitted fields (tested on its own in test_restore): here all are set.
        for conference in sb.space.conferences.values():
            for color in COLOR_FIELDS:
                conference[color] = conference[color] or "#101010"
        before = {cid: dict(c) for cid, c in sb.space.conferences.items()}
        run = await run_job(settings_for(sb.url, backup_dir=tmp_path / "run", page_size=7,
                                         retry=PATIENT_RETRY), SANDBOX_CREDENTIALS)
        assert run.exit_code == ExitCode.OK, run.error
        assert run.summary.listed == 30
        assert run.summary.updated == 30
        assert sb.space.status_counts[429], "no 429 was met"
        theme = _flat(BRAND)
        for conference in sb.space.conferences.values():
            assert {f: str(conference[f]).upper() for f in theme} == {
                f: v.upper() for f, v in theme.items()}
        # Every other field as it was: the theme's colors are all that changed.
        themed = {cid: {**c, **theme} for cid, c in before.items()}
        assert not_back(themed, sb.space.conferences, omitted_reset=reset != "keep") == []

        assert run.journal is not None
        restored = await restore_job(
            restore_settings(sb.url, backup_dir=tmp_path / "restore", retry=PATIENT_RETRY),
            SANDBOX_CREDENTIALS, read_journal(run.journal))
        assert restored.exit_code == ExitCode.OK, restored.error
        assert restored.summary.updated == 30
        assert not_back(before, sb.space.conferences, omitted_reset=reset != "keep") == []
