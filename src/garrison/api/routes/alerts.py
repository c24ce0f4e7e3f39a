"""``/api/v1/alerts/…``: channels (secrets redacted), alert profiles, the outbox."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query

from garrison.alerts.channel import redacted
from garrison.alerts.profiles import load_profiles
from garrison.api.deps import Admin, Core, Reader

router = APIRouter(tags=["alerts"])
PATH = "/api/v1/alerts"


@router.get(f"{PATH}/channels")
def channels(console: Core, _: Reader) -> list[dict[str, Any]]:
    """The channels, their URLs' secrets redacted (as the CLI prints them)."""
    return [{"name": c.name, "url": redacted(c.url), "created": c.created}
            for c in console.list_channels()]  # fmt: skip


@router.get(f"{PATH}/profiles")
def profiles(console: Core, _: Reader) -> dict[str, Any]:
    """The alert profiles in force."""
    return console.alert_profiles().model_dump(mode="json")


@router.put(f"{PATH}/profiles")
def put_profiles(console: Core, _: Admin, doc: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Replace the profiles (the channels they name must exist)."""
    loaded = load_profiles(json.dumps(doc), "profiles")
    console.apply_alert_profiles(loaded)
    return loaded.model_dump(mode="json")


@router.get(f"{PATH}/outbox")
def outbox(
    console: Core,
    _: Reader,
    state: Literal["", "pending", "sent", "skipped"] = "",
    limit: Annotated[int, Query(ge=0, le=100_000)] = 100,
) -> list[dict[str, Any]]:
    """What was forwarded to each channel and what waits, newest first."""
    return [d.to_json() for d in console.list_deliveries(state, limit)]
