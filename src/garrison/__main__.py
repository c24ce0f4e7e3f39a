"""``python -m garrison`` runs the command line."""

from __future__ import annotations

from garrison.cli import main

main()
