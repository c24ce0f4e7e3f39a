"""A private Docker engine and real test images, for development, tests, CI and demos."""

from __future__ import annotations

from garrison.devengine.engine import EngineConfig, PrivateEngine
from garrison.devengine.images import ALL_RECIPES, BUSYBOX, DEBIAN, NGINX, ensure_all
from garrison.devengine.packages import ensure_packages

__all__ = [
    "ALL_RECIPES",
    "BUSYBOX",
    "DEBIAN",
    "NGINX",
    "EngineConfig",
    "PrivateEngine",
    "ensure_all",
    "ensure_packages",
]
