"""What the verdict engine answers: decisions, their effects, and the attack types they name.

A decision is one finding about one event. Evaluation returns every finding, strongest first
(block, then prevent, then alert); the defender turns each into an audit and acts on the first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from garrison.audit.record import AuditType
from garrison.sensors.events import Verdict

# What a finding does. "disable" in a rule file means "do not look"; it never reaches a decision.
Action = Literal["alert", "prevent", "block"]
RuleEffect = Literal["disable", "alert", "prevent", "block"]

STRENGTH: dict[str, int] = {"disable": 0, "alert": 1, "prevent": 2, "block": 3}


class AttackType:
    """The ``attackType`` of each finding, named as Prisma Cloud names them where it has a name.

    The model's anomaly names (garrison.model.anomaly) are the same strings.
    """

    UNEXPECTED_PROCESS = "unexpectedProcess"
    UNEXPECTED_PARENT = "unexpectedParent"
    DENIED_PROCESS = "explicitlyDeniedProcess"
    CRYPTO_MINER = "cryptoMiner"
    LATERAL_MOVEMENT = "lateralMovement"
    REVERSE_SHELL = "reverseShell"
    SUID_BINARY = "suidBinary"
    DRIFT_BINARY = "driftBinary"
    FILELESS = "filelessExecution"
    UNEXPECTED_LISTENING_PORT = "unexpectedListeningPort"
    UNEXPECTED_OUTBOUND_PORT = "unexpectedOutboundPort"
    UNEXPECTED_OUTBOUND_ADDRESS = "unexpectedOutboundAddress"
    DENIED_LISTENING_PORT = "explicitlyDeniedListeningPort"
    DENIED_OUTBOUND_PORT = "explicitlyDeniedOutboundPort"
    DENIED_IP = "explicitlyDeniedIP"
    UNEXPECTED_FILE_WRITE = "unexpectedFileWrite"
    DENIED_FILE = "explicitlyDeniedFile"
    EXECUTABLE_CREATION = "executableCreation"
    BINARY_DIR_WRITE = "binaryDirWrite"
    SSH_ACCESS = "sshAccess"
    ADMIN_ACCOUNTS = "administrativeAccounts"
    CUSTOM_RULE = "customRule"


@dataclass(frozen=True, slots=True)
class Decision:
    """One finding: the Audit fields that depend on the policy, not on the container."""

    effect: Action
    type: AuditType
    attackType: str
    ruleName: str
    msg: str

    def audit_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``garrison.audit.record.Audit``, beside the container's."""
        return {
            "effect": self.effect,
            "type": self.type,
            "attackType": self.attackType,
            "ruleName": self.ruleName,
            "msg": self.msg,
        }


def strongest_first(decisions: Iterable[Decision]) -> list[Decision]:
    """Order findings block, prevent, alert; equal effects keep their order."""
    return sorted(decisions, key=lambda d: -STRENGTH[d.effect])


def verdict_of(decisions: Sequence[Decision]) -> Verdict:
    """A permission event is refused when a finding prevents or blocks (a blocked container's
    process must not run on while the container is being stopped)."""
    if any(d.effect != "alert" for d in decisions):
        return Verdict.DENY
    return Verdict.ALLOW
