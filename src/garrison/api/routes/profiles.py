"""``/api/v1/profiles/container``: runtime models, and the commands that change them.

A command is queued; the defender holding the model applies it within about a second.
``REF`` is an image name, an image id or a profile id (or a prefix of 4 characters or more).
An image name holds ``/``: the path takes it whole, as ``/api/v1/images`` does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from garrison.api.deps import Core, Operator, Reader
from garrison.model.commands import ModelCommand

router = APIRouter(tags=["models"])
PATH = "/api/v1/profiles/container"
MAX_EXTEND = 365 * 86400.0


class Extend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(3600.0, gt=0, le=MAX_EXTEND, description="More learning time")


@router.get(PATH)
def list_models(console: Core, _: Reader) -> list[dict[str, Any]]:
    """Every model, as ``garrison models list --json`` prints it (``hostCount``: how many
    hosts saved it)."""
    return console.list_models()


@router.get(f"{PATH}/{{ref:path}}")
def show_model(console: Core, _: Reader, ref: str) -> dict[str, Any]:
    """One model, whole, with the hosts that saved it (``hosts``: ``host``, ``firstSaved``,
    ``lastSaved``)."""
    return console.show_model(ref)


@router.post(f"{PATH}/{{ref:path}}/relearn")
def relearn(console: Core, _: Operator, ref: str) -> list[dict[str, Any]]:
    """Forget what was learned; learn again from scratch."""
    return _queued(console.relearn(ref))


@router.post(f"{PATH}/{{ref:path}}/extend")
def extend(console: Core, _: Operator, ref: str, body: Extend) -> list[dict[str, Any]]:
    """Keep what was learned; learn ``seconds`` more."""
    return _queued(console.extend(ref, body.seconds))


@router.post(f"{PATH}/{{ref:path}}/learn-start")
def learn_start(console: Core, _: Operator, ref: str) -> list[dict[str, Any]]:
    """Learn until learn-stop."""
    return _queued(console.learn_start(ref))


@router.post(f"{PATH}/{{ref:path}}/learn-stop")
def learn_stop(console: Core, _: Operator, ref: str) -> list[dict[str, Any]]:
    """Stop learning now: the model turns active."""
    return _queued(console.learn_stop(ref))


def _queued(commands: list[ModelCommand]) -> list[dict[str, Any]]:
    return [c.to_json() for c in commands]
