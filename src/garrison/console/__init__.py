"""The console: the store's owner, reached by defenders through a console link.

``Console`` is what the CLI and the REST API call; ``RemoteConsole`` answers as it does through
a console's REST API, for the CLI (``ConsoleLike`` is what both offer); ``ConsoleLink`` is the
only way a defender reports (``InProcessLink`` now, HTTP later); ``sync_models`` is the
defender's model chore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.console.interface import BundleShelf, ConsoleLike
from garrison.console.link import ConsoleLink, sync_models
from garrison.console.remote_settings import RemoteSettings

if TYPE_CHECKING:
    from garrison.console.core import Console
    from garrison.console.inprocess import InProcessLink, LinkStats
    from garrison.console.remote import RemoteConsole

# Loaded on first use: the console and its in-process link bring the store and SQLAlchemy,
# which a defender reporting to a remote console never needs (some 25 MiB of its memory);
# RemoteConsole brings httpx, which a defender and a local command never need (some 7 MiB).
_LAZY = {
    "Console": "garrison.console.core",
    "InProcessLink": "garrison.console.inprocess",
    "LinkStats": "garrison.console.inprocess",
    "RemoteConsole": "garrison.console.remote",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(module), name)


__all__ = [
    "BundleShelf",
    "Console",
    "ConsoleLike",
    "ConsoleLink",
    "InProcessLink",
    "LinkStats",
    "RemoteConsole",
    "RemoteSettings",
    "sync_models",
]
