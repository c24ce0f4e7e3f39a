"""Pure evaluation of file writes and network events (see evaluate.py for the principles)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from garrison.policy import subjects
from garrison.policy.compiled import EffectivePolicy, NetworkPolicy, custom_findings
from garrison.policy.decision import AttackType, Decision, strongest_first
from garrison.policy.detections import (
    is_admin_accounts,
    is_binary_dir_write,
    is_bytecode_cache,
    is_ssh_keys,
)
from garrison.policy.inputs import ACTIVE, FileFacts, ModelView
from garrison.sensors.events import FileEvent, NetEvent

NO_FILE_FACTS = FileFacts()

FileCheck = Callable[[FileEvent, FileFacts], bool]
_FILE_CHECKS: tuple[tuple[str, str, FileCheck, str], ...] = (
    (
        "new_executables",
        AttackType.EXECUTABLE_CREATION,
        lambda e, f: f.is_elf,
        "{who} wrote the executable {path}",
    ),
    (
        "binary_dirs",
        AttackType.BINARY_DIR_WRITE,
        lambda e, f: (
            is_binary_dir_write(e.path)
            and not (is_bytecode_cache(e.path, e.process_path) and not f.is_elf)
        ),
        "{who} {verb} {path} in a directory of binaries",
    ),
    (
        "ssh_keys",
        AttackType.SSH_ACCESS,
        lambda e, f: is_ssh_keys(e.path),
        "{who} changed the SSH authorized keys {path}",
    ),
    (
        "admin_accounts",
        AttackType.ADMIN_ACCOUNTS,
        lambda e, f: is_admin_accounts(e.path),
        "{who} changed the administrative accounts file {path}",
    ),
)


def evaluate_file(
    policy: EffectivePolicy,
    model: ModelView,
    event: FileEvent,
    facts: FileFacts = NO_FILE_FACTS,
) -> list[Decision]:
    """Findings for one write (or, at open time, one open for writing). A delete, a rename
    or a link is judged as a write to the entry's path."""
    fs, found, who = policy.filesystem, [], event.process_path or "a process"
    verb = "deleted" if event.kind == "delete" else "wrote"
    if fs.denied.matches(event.path):
        msg = f"{who} {verb} {event.path}, explicitly denied by rule {policy.rule_name!r}"
        found.append(_file(policy, fs.denied_effect, AttackType.DENIED_FILE, msg))
    if not fs.allowed.matches(event.path):
        for field, attack, check, template in _FILE_CHECKS:
            effect = getattr(fs.detections, field)
            if effect != "disable" and check(event, facts):
                msg = template.format(who=who, path=event.path, verb=verb)
                found.append(_file(policy, effect, attack, msg))
        if fs.effect != "disable" and model.state == ACTIVE and not model.knows_write(event.path):
            # One finding per directory (the msg is part of the audit key), as the model words it.
            directory = event.path.rsplit("/", 1)[0] or "/"
            msg = f"{who} wrote in {directory}, a directory not found in the runtime model"
            found.append(_file(policy, fs.effect, AttackType.UNEXPECTED_FILE_WRITE, msg))
    if fs.custom:
        found += custom_findings(policy, fs.custom, "filesystem", subjects.of_file(event))
    if event.via:
        found = [_through(d, event.via) for d in found]
    return strongest_first(found) if len(found) > 1 else found


def _through(decision: Decision, link: str) -> Decision:
    msg = f"{decision.msg} (written through its hard link {link})"
    return dataclasses.replace(decision, msg=msg)


def _file(policy: EffectivePolicy, effect: str, attack: str, msg: str) -> Decision:
    return Decision(effect, "filesystem", attack, policy.rule_name, msg)  # type: ignore[arg-type]


def _net(policy: EffectivePolicy, effect: str, attack: str, msg: str) -> Decision:
    return Decision(effect, "network", attack, policy.rule_name, msg)  # type: ignore[arg-type]


def evaluate_network(policy: EffectivePolicy, model: ModelView, event: NetEvent) -> list[Decision]:
    """Findings for one listening socket or outbound connection."""
    if event.kind == "listen":
        found = _listen(policy, model, event)
    else:
        found = _connect(policy, model, event)
        if policy.network.custom:
            subject = subjects.of_connect(event)
            found += custom_findings(policy, policy.network.custom, "network", subject)
    return strongest_first(found) if len(found) > 1 else found


def _who(event: NetEvent) -> str:
    return event.process_path or "a process"


def _listen(policy: EffectivePolicy, model: ModelView, event: NetEvent) -> list[Decision]:
    n, port = policy.network, f"{event.local_port}/{event.protocol}"
    if n.listening_denied.matches(event.protocol, event.local_port):
        msg = f"{_who(event)} listens on port {port}, explicitly denied"
        return [_net(policy, n.listening_denied_effect, AttackType.DENIED_LISTENING_PORT, msg)]
    if n.effect == "disable" or model.state != ACTIVE:
        return []
    if n.listening_allowed.matches(event.protocol, event.local_port):
        return []
    if model.knows_listening(event.protocol, event.local_port):
        return []
    msg = f"{_who(event)} listens on port {port}, which is not found in the runtime model"
    return [_net(policy, n.effect, AttackType.UNEXPECTED_LISTENING_PORT, msg)]


def _connect(policy: EffectivePolicy, model: ModelView, event: NetEvent) -> list[Decision]:
    n, found = policy.network, []
    where = f"{event.remote_ip}:{event.remote_port}/{event.protocol}"
    if n.ips_denied.matches(event.remote_ip):
        msg = f"{_who(event)} connected to {where}: address explicitly denied"
        found.append(_net(policy, n.ips_denied_effect, AttackType.DENIED_IP, msg))
    if n.outbound_denied.matches(event.protocol, event.remote_port):
        msg = f"{_who(event)} connected to {where}: port explicitly denied"
        found.append(_net(policy, n.outbound_denied_effect, AttackType.DENIED_OUTBOUND_PORT, msg))
    if not found and not _outbound_allowed(n, event):
        found += _outbound_anomaly(policy, model, event, where)
    return found


def _outbound_allowed(n: NetworkPolicy, event: NetEvent) -> bool:
    return n.outbound_allowed.matches(event.protocol, event.remote_port) or n.ips_allowed.matches(
        event.remote_ip
    )


def _outbound_anomaly(
    policy: EffectivePolicy, model: ModelView, event: NetEvent, where: str
) -> list[Decision]:
    effect = policy.network.effect
    if effect == "disable" or model.state != ACTIVE:
        return []
    if not model.knows_outbound_port(event.protocol, event.remote_port):
        msg = f"{_who(event)} connected to {where}: outbound port not found in the runtime model"
        return [_net(policy, effect, AttackType.UNEXPECTED_OUTBOUND_PORT, msg)]
    if not model.knows_outbound_address(event.remote_ip):
        msg = f"{_who(event)} connected to {where}: address not found in the runtime model"
        return [_net(policy, effect, AttackType.UNEXPECTED_OUTBOUND_ADDRESS, msg)]
    return []
