"""The values custom rule expressions read, taken from each kind of event."""

from __future__ import annotations

from garrison.policy.expression import ExprInput
from garrison.policy.matchers import basename
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent


def of_process(event: ProcessEvent) -> ExprInput:
    return ExprInput(
        proc_name=basename(event.path),
        proc_pname=basename(event.parent_path),
        proc_path=event.path,
        proc_user=event.user,
        proc_cmdline=event.command,
    )


def of_file(event: FileEvent) -> ExprInput:
    return ExprInput(
        proc_name=basename(event.process_path),
        proc_path=event.process_path,
        file_path=event.path,
        file_dir=event.path.rsplit("/", 1)[0] or "/",
    )


def of_connect(event: NetEvent) -> ExprInput:
    return ExprInput(
        proc_name=basename(event.process_path),
        proc_path=event.process_path,
        net_outgoing_port=event.remote_port,
        net_outgoing_ip=event.remote_ip,
    )
