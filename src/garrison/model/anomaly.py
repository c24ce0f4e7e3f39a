"""Audits for events outside an active model.

Attack types, named as Prisma Cloud names them where it has a name:

- ``unexpectedProcess`` (processes): an executable path the model does not hold.
- ``unexpectedListeningPort`` (network): a listening protocol/port the model does not hold.
- ``unexpectedOutboundPort`` (network): an outbound connection to a protocol/port it does not
  hold (one audit per remote address and port).
- ``unexpectedOutboundAddress`` (network): a known outbound port, but a remote address the
  model does not hold (never raised once the model learned more than ``MAX_ADDRESSES``).
- ``unexpectedFileWrite`` (filesystem): a write in a directory the model does not cover (one
  audit per directory, so a burst of files in a new directory is one finding with a count).
"""

from __future__ import annotations

from dataclasses import dataclass

from garrison.audit.record import Audit, AuditType
from garrison.model.paths import directory_of, to_text
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent

RULE_NAME = "Default - alert on suspicious runtime behavior"

UNEXPECTED_PROCESS = "unexpectedProcess"
UNEXPECTED_LISTENING_PORT = "unexpectedListeningPort"
UNEXPECTED_OUTBOUND_PORT = "unexpectedOutboundPort"
UNEXPECTED_OUTBOUND_ADDRESS = "unexpectedOutboundAddress"
UNEXPECTED_FILE_WRITE = "unexpectedFileWrite"


@dataclass(frozen=True, slots=True)
class Where:
    """Where an event happened: the fields every audit of it carries."""

    container: ContainerInfo
    host: str
    profile_id: str

    def audit(
        self,
        kind: tuple[AuditType, str],
        msg: str,
        *,
        time: float,
        pid: int,
        process_path: str,
        command: str = "",
        user: str = "",
        parent_path: str = "",
        file_path: str = "",
        remote: tuple[str, int] = ("", 0),
    ) -> Audit:
        return Audit(
            time=time,
            hostname=self.host,
            type=kind[0],
            attackType=kind[1],
            effect="alert",
            msg=msg,
            containerId=self.container.id,
            containerName=self.container.name,
            imageName=self.container.image_name,
            imageId=self.container.image_id,
            labels=dict(self.container.labels),
            ruleName=RULE_NAME,
            pid=pid,
            processPath=process_path,
            parentPath=parent_path,
            filePath=file_path,
            remoteIP=remote[0],
            port=remote[1],
            command=command,
            user=user,
            profileId=self.profile_id,
        )


def process_audit(event: ProcessEvent, where: Where) -> Audit:
    msg = f"{event.path} launched but is not found in the runtime model"
    return where.audit(
        ("processes", UNEXPECTED_PROCESS),
        msg,
        time=event.time,
        pid=event.pid,
        process_path=event.path,
        command=event.command,
        user=event.user,
        parent_path=event.parent_path,
    )


def listening_audit(event: NetEvent, where: Where) -> Audit:
    port = f"{event.local_port}/{event.protocol}"
    msg = f"{_who(event)} listens on port {port}, which is not found in the runtime model"
    return _net_audit(event, where, UNEXPECTED_LISTENING_PORT, msg)


def outbound_port_audit(event: NetEvent, where: Where) -> Audit:
    port = f"{event.remote_port}/{event.protocol}"
    msg = (
        f"{_who(event)} connected to {event.remote_ip}:{port}: "
        f"outbound port {port} is not found in the runtime model"
    )
    return _net_audit(event, where, UNEXPECTED_OUTBOUND_PORT, msg)


def outbound_address_audit(event: NetEvent, where: Where) -> Audit:
    port = f"{event.remote_port}/{event.protocol}"
    msg = (
        f"{_who(event)} connected to {event.remote_ip}:{port}: "
        f"outbound address {event.remote_ip} is not found in the runtime model"
    )
    return _net_audit(event, where, UNEXPECTED_OUTBOUND_ADDRESS, msg)


def _who(event: NetEvent | FileEvent) -> str:
    return event.process_path or "a process"


def _net_audit(event: NetEvent, where: Where, attack: str, msg: str) -> Audit:
    return where.audit(
        ("network", attack),
        msg,
        time=event.time,
        pid=event.pid or 0,
        process_path=event.process_path,
        remote=(event.remote_ip, event.remote_port)
        if event.kind != "listen"
        else ("", event.local_port),
    )


def file_audit(event: FileEvent, where: Where) -> Audit:
    directory = to_text(directory_of(event.path))
    msg = f"{_who(event)} wrote in {directory}, a directory not found in the runtime model"
    return where.audit(
        ("filesystem", UNEXPECTED_FILE_WRITE),
        msg,
        time=event.time,
        pid=event.pid,
        process_path=event.process_path,
        file_path=event.path,
    )
