"""The release, written once: pyproject.toml reads it from here, and the journal header
and `rebrand --version` report it."""

__version__ = "0.1.0"
