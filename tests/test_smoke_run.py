"""End to end: a run against a sandbox themes every conference and keeps every other field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import BRAND, SANDBOX_CREDENTIALS, SandboxFactory, settings_for
from worker.body import WRITABLE_FIELDS
from worker.run.job import run_job
from worker.sandbox import ON_THEME

pytestmark = pytest.mark.anyio


async def test_run_themes_every_conference_and_keeps_other_fields(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    async with sandbox_factory(count=120) as sb:
        before = sb.space.seed_snapshot()
        result = await run_job(settings_for(sb.url, backup_dir=tmp_path), SANDBOX_CREDENTIALS)
        assert result.exit_code == 0
        for cid, conference in sb.space.conferences.items():
            for field, value in ON_THEME.items():
                assert conference[field].upper() == value.upper(), (cid, field)
            for field in WRITABLE_FIELDS:
                if field in ON_THEME or before[cid][field] is None:
                    continue
                assert conference[field] == before[cid][field], (cid, field)
        already = sum(1 for c in before.values()
                      if all(str(c[f]).upper() == v.upper() for f, v in ON_THEME.items()))
        assert result.summary.unchanged == already
        assert result.summary.updated == 120 - already
        assert sb.space.put_count == 120 - already
    assert BRAND["light"]["primary"] == ON_THEME["light_primary"]
