"""``/api/v1/status``: the defender's last report, models by state, blocked containers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from garrison.api.deps import Core, Reader

router = APIRouter(tags=["status"])


@router.get("/api/v1/status")
def status(console: Core, _: Reader) -> dict[str, Any]:
    """What ``garrison status --json`` prints."""
    return console.status()
