"""``/api/v1/hosts``: the hosts that report to this console (``garrison defender``), each with
its last status; and revoking one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from garrison.api.deps import Admin, Core, Reader
from garrison.errors import NotFound

router = APIRouter(tags=["hosts"])


@router.get("/api/v1/hosts")
def hosts(console: Core, _: Reader) -> list[dict[str, Any]]:
    """What ``garrison hosts list --json`` prints, with each host's last status."""
    return console.hosts()


@router.post("/api/v1/hosts/{name}/revoke")
def revoke(name: str, console: Core, _: Admin) -> dict[str, Any]:
    """The host's certificate no longer opens the console (404 for no such host)."""
    if not console.revoke_host(name):
        raise NotFound(f"host {name[:64]!r}: no such host")
    return {"name": name, "revoked": True}
