"""MITRE ATT&CK (enterprise, containers) for each attack type an audit can name.

One tactic and one technique per attack type, the one an analyst would file the finding under
first; names as https://attack.mitre.org spells them (v15). An attack type with no entry (a
custom rule, the gate, Garrison about itself) has none: ``mitre_of`` answers ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mitre:
    tactic_id: str
    tactic: str
    technique_id: str
    technique: str

    @property
    def tactic_text(self) -> str:
        return f"{self.tactic_id} {self.tactic}"

    @property
    def technique_text(self) -> str:
        return f"{self.technique_id} {self.technique}"


_EXECUTION = ("TA0002", "Execution")
_PERSISTENCE = ("TA0003", "Persistence")
_PRIVILEGE = ("TA0004", "Privilege Escalation")
_EVASION = ("TA0005", "Defense Evasion")
_DISCOVERY = ("TA0007", "Discovery")
_C2 = ("TA0011", "Command and Control")
_IMPACT = ("TA0040", "Impact")

_TABLE: dict[str, tuple[tuple[str, str], str, str]] = {
    "unexpectedProcess": (_EXECUTION, "T1059", "Command and Scripting Interpreter"),
    "unexpectedParent": (_EXECUTION, "T1059", "Command and Scripting Interpreter"),
    "explicitlyDeniedProcess": (_EXECUTION, "T1059", "Command and Scripting Interpreter"),
    "reverseShell": (_EXECUTION, "T1059.004", "Command and Scripting Interpreter: Unix Shell"),
    "cryptoMiner": (_IMPACT, "T1496", "Resource Hijacking"),
    "lateralMovement": (_DISCOVERY, "T1046", "Network Service Discovery"),
    "suidBinary": (_PRIVILEGE, "T1548.001", "Abuse Elevation Control Mechanism: Setuid and Setgid"),
    "driftBinary": (_C2, "T1105", "Ingress Tool Transfer"),
    "filelessExecution": (_EVASION, "T1620", "Reflective Code Loading"),
    "executableCreation": (_C2, "T1105", "Ingress Tool Transfer"),
    "binaryDirWrite": (_PERSISTENCE, "T1554", "Compromise Host Software Binary"),
    "sshAccess": (_PERSISTENCE, "T1098.004", "Account Manipulation: SSH Authorized Keys"),
    "administrativeAccounts": (_PERSISTENCE, "T1136.001", "Create Account: Local Account"),
    "unexpectedFileWrite": (_IMPACT, "T1565.001", "Data Manipulation: Stored Data Manipulation"),
    "explicitlyDeniedFile": (_IMPACT, "T1565.001", "Data Manipulation: Stored Data Manipulation"),
    "unexpectedListeningPort": (_C2, "T1571", "Non-Standard Port"),
    "explicitlyDeniedListeningPort": (_C2, "T1571", "Non-Standard Port"),
    "unexpectedOutboundPort": (_C2, "T1571", "Non-Standard Port"),
    "explicitlyDeniedOutboundPort": (_C2, "T1571", "Non-Standard Port"),
    "unexpectedOutboundAddress": (_C2, "T1071", "Application Layer Protocol"),
    "explicitlyDeniedIP": (_C2, "T1071", "Application Layer Protocol"),
}


def mitre_of(attack_type: str) -> Mitre | None:
    entry = _TABLE.get(attack_type)
    if entry is None:
        return None
    (tactic_id, tactic), technique_id, technique = entry
    return Mitre(tactic_id, tactic, technique_id, technique)
