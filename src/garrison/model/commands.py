"""User commands on models, queued by the console and applied by the defender that holds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from garrison.errors import InvalidInput
from garrison.model.runtime_model import RuntimeModel

ModelOp = Literal["relearn", "extend", "learn-start", "learn-stop"]
MODEL_OPS: tuple[str, ...] = get_args(ModelOp)


@dataclass(frozen=True, slots=True)
class ModelCommand:
    op: ModelOp
    profile_id: str
    seconds: float = 0.0  # for extend
    time: float = 0.0
    id: int | None = None  # assigned by the store

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op,
            "profileId": self.profile_id,
            "seconds": self.seconds,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelCommand:
        found = doc.get("id")
        return cls(check_op(str(doc["op"])), str(doc["profileId"]), float(doc["seconds"]),
                   float(doc["time"]), None if found is None else int(found))  # fmt: skip


def check_op(op: str) -> ModelOp:
    if op not in MODEL_OPS:
        raise InvalidInput(f"unknown model command {op!r}; use one of {', '.join(MODEL_OPS)}")
    return op  # type: ignore[return-value]


def apply(model: RuntimeModel, command: ModelCommand) -> None:
    """Run a command on the model it names; the model's generation becomes the command's id
    (garrison.model.merge), the same on every host that applies it."""
    model.generation = max(model.generation, command.id or 0)
    if command.op == "relearn":
        model.relearn()
    elif command.op == "extend":
        model.extend(command.seconds)
    elif command.op == "learn-start":
        model.learn_start()
    else:
        model.learn_stop()
