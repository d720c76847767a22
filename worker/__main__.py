"""`python -m worker` is `rebrand`."""

from worker.cli.main import main

raise SystemExit(main())
