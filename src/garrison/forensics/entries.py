"""What the journal keeps of each thing Garrison sees: the fields of one entry, by kind.

Kinds: ``spawn`` (an exec), ``write`` (a file written or created), ``listen`` and
``connect`` (sockets), ``audit``, and the container's ``start``, ``stop`` and ``block``.
Field names follow the audits' (``processPath``, ``remoteIP``…), so one reader reads both.
"""

from __future__ import annotations

from typing import Any

from garrison.audit.record import Audit
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent
from garrison.text import clip

COMMAND_MAX = 4096  # characters of a command line kept

Fields = dict[str, Any]


def of_event(event: ProcessEvent | FileEvent | NetEvent) -> tuple[str, Fields]:
    """The kind and fields of a sensor's event."""
    if isinstance(event, ProcessEvent):
        return "spawn", _spawn(event)
    if isinstance(event, FileEvent):
        fields = {"path": event.path, "fileKind": event.kind, "pid": event.pid,
                  "processPath": event.process_path}  # fmt: skip
        return "write", fields
    fields = {"protocol": event.protocol, "localIP": event.local_ip, "port": event.local_port,
              "pid": event.pid or 0, "processPath": event.process_path}  # fmt: skip
    if event.kind == "listen":
        return "listen", fields
    return "connect", fields | {"remoteIP": event.remote_ip, "port": event.remote_port}


def _spawn(event: ProcessEvent) -> Fields:
    fields: Fields = {
        "pid": event.pid,
        "ppid": event.ppid,
        "path": event.path,
        "parentPath": event.parent_path,
        "command": clip(" ".join(event.argv), COMMAND_MAX),
        "user": event.user,
        "uid": event.uid,
        "source": event.source,
    }
    if event.resolved_path and event.resolved_path != event.path:
        fields["resolvedPath"] = event.resolved_path
    if event.fileless:
        fields |= {"fileless": True, "sha256": event.sha256}
    if event.killed:
        fields["killed"] = True
    return fields


def of_audit(audit: Audit) -> Fields:
    """An audit as the journal keeps it (the store has it whole)."""
    return {
        "type": audit.type,
        "attackType": audit.attackType,
        "effect": audit.effect,
        "msg": audit.msg,
        "ruleName": audit.ruleName,
        "pid": audit.pid,
        "processPath": audit.processPath,
    }
