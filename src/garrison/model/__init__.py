"""Per-image runtime models: what a container of an image normally does, and its learning states.

``ModelBook`` holds a defender's models; ``RuntimeModel`` is one image's model; documents
(``to_doc``/``from_doc``) are what the store keeps and ``garrison models show --json`` prints.
"""

from __future__ import annotations

from garrison.model.anomaly import (
    RULE_NAME,
    UNEXPECTED_FILE_WRITE,
    UNEXPECTED_LISTENING_PORT,
    UNEXPECTED_OUTBOUND_ADDRESS,
    UNEXPECTED_OUTBOUND_PORT,
    UNEXPECTED_PROCESS,
)
from garrison.model.book import ModelBook
from garrison.model.clock import Clock, FakeClock, system_clock
from garrison.model.commands import MODEL_OPS, ModelCommand, ModelOp
from garrison.model.lifecycle import LearningConfig, State
from garrison.model.paths import WrittenPaths
from garrison.model.profile import Identity, profile_id
from garrison.model.runtime_model import RuntimeModel, StaticPart

__all__ = [
    "MODEL_OPS",
    "RULE_NAME",
    "UNEXPECTED_FILE_WRITE",
    "UNEXPECTED_LISTENING_PORT",
    "UNEXPECTED_OUTBOUND_ADDRESS",
    "UNEXPECTED_OUTBOUND_PORT",
    "UNEXPECTED_PROCESS",
    "Clock",
    "FakeClock",
    "Identity",
    "LearningConfig",
    "ModelBook",
    "ModelCommand",
    "ModelOp",
    "RuntimeModel",
    "State",
    "StaticPart",
    "WrittenPaths",
    "profile_id",
    "system_clock",
]
