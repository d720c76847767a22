"""The command line: everything only `rebrand` at a terminal or in a job needs.

`main` parses and dispatches, `commands` turns flags and environment into a run, and the
rest serve them (terminal progress, confirmation, signals, metrics files, tables). Nothing
below this layer imports it (checked by the import contracts in pyproject.toml).
"""
