"""`python -m worker` is `rebrand`."""

from worker.cli.entry import main

raise SystemExit(main())
