"""The benchmark: the worker against the recipe and the official SDK on a sandbox Space.

A script, not a test: `python -m bench --help`. Each contestant runs as a subprocess
against a freshly seeded sandbox in a process of its own, and every run is verified.
"""
