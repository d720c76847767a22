"""`python -m worker.sandbox`: serve a sandbox Space until interrupted."""

from __future__ import annotations

import sys

from worker.sandbox.cli import main

sys.exit(main())
