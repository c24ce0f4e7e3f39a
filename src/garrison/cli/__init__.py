"""The ``garrison`` command line: a thin adapter over the core objects."""

from __future__ import annotations

from garrison.cli.app import app, main

__all__ = ["app", "main"]
