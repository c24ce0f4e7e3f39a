"""The defender: one per host. It follows containers, feeds sensor events to the models
and the policy, and reports through the console link."""

from __future__ import annotations

from garrison.defender.core import Defender

__all__ = ["Defender"]
