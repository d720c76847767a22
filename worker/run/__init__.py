"""One run's I/O: the Space's HTTP client, the producer and consumers joined by a bounded
stream, the journal, the rate limiter and the reporter, and the jobs that wire them.

It decides nothing itself (the rules are the pure modules one level up) and knows
nothing of the command line (checked by the import contracts in pyproject.toml).
"""
