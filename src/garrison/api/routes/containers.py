"""``/api/v1/containers``: the containers the defender watches and those it blocked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from garrison.api.deps import Core, Operator, Reader, runtime_of
from garrison.runtime.base import ContainerRuntime

router = APIRouter(tags=["containers"])
PATH = "/api/v1/containers"


@router.get(PATH)
def containers(console: Core, _: Reader) -> dict[str, Any]:
    """Ids of the containers the defender watches (its last report) and the blocked ones."""
    report = console.status().get("defender") or {}
    return {
        "watching": list(report.get("watching") or []),
        "blocked": _blocked(console),
    }


@router.get(f"{PATH}/blocked")
def blocked(console: Core, _: Reader) -> list[dict[str, Any]]:
    """What ``garrison containers blocked --json`` prints: each with the audit that blocked
    it and its forensics bundle."""
    return _blocked(console)


@router.post(f"{PATH}/{{ref}}/unblock")
def unblock(
    console: Core,
    _: Operator,
    ref: str,
    runtime: Annotated[ContainerRuntime, Depends(runtime_of)],
) -> dict[str, Any]:
    """Restore the container's restart policy and clear the block; it is not started."""
    try:
        return console.unblock(runtime, ref).to_json()
    finally:
        runtime.close()


def _blocked(console: Core) -> list[dict[str, Any]]:
    return [{**b.to_json(), "audit": a.to_json() if a else None}
            for b, a in console.blocked_with_audits()]  # fmt: skip
