"""The console: the store's owner, reached by defenders through a console link.

``Console`` is what the CLI and the REST API call; ``ConsoleLink`` is the only way a defender
reports (``InProcessLink`` now, HTTP later); ``sync_models`` is the defender's model chore.
"""

from __future__ import annotations

from garrison.console.core import Console
from garrison.console.inprocess import InProcessLink, LinkStats
from garrison.console.link import ConsoleLink, sync_models

__all__ = ["Console", "ConsoleLink", "InProcessLink", "LinkStats", "sync_models"]
