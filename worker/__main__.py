"""`python -m worker` is `rebrand`."""

from worker.cli import main

raise SystemExit(main())
