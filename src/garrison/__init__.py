"""Garrison: container runtime defense.

Garrison learns how each container image normally behaves (its processes, ports,
connections and written paths), compares every running container with that model
and with ordered runtime rules, and alerts, prevents or blocks on a violation.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
