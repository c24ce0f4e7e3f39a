"""The in-memory store's hosts, enrolment tokens, console CA and model command queue (a part of
``MemoryStore``): the same rules as the SQL stores (store/sql_hosts.py), under the store's
lock."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from garrison.errors import InvalidInput
from garrison.model.commands import ModelCommand
from garrison.store.base import CARecord, HostRecord, RevokedSerial, check_command, check_kind

if TYPE_CHECKING:
    from garrison.fleet.enroll import TokenRecord as EnrolToken


class MemoryHosts:
    """Needs the store's ``_lock``."""

    _lock: threading.Lock

    def __init__(self) -> None:
        self._hosts: dict[str, HostRecord] = {}
        self._enrol_tokens: dict[str, EnrolToken] = {}
        self._commands: dict[int, ModelCommand] = {}
        self._done: dict[int, float] = {}  # command id → when it was first applied
        self._acks: set[tuple[int, str]] = set()  # (command id, host)
        self._command_ids = itertools.count(1)
        self._console_ca: CARecord | None = None
        self._revoked_serials: dict[str, RevokedSerial] = {}

    # -- hosts ------------------------------------------------------------------------------

    def enrol_host(self, record: HostRecord) -> None:
        check_kind(record.name, "host name")
        with self._lock:
            old = self._hosts.get(record.name)
            seen = record.last_seen if old is None else old.last_seen
            self._hosts[record.name] = dataclasses.replace(record, revoked=None, last_seen=seen)

    def add_new_host(self, record: HostRecord) -> bool:
        check_kind(record.name, "host name")
        with self._lock:
            if record.name in self._hosts:
                return False
            self._hosts[record.name] = dataclasses.replace(record, revoked=None)
            return True

    def get_host(self, name: str) -> HostRecord | None:
        with self._lock:
            return self._hosts.get(name)

    def list_hosts(self) -> list[HostRecord]:
        with self._lock:
            return [self._hosts[n] for n in sorted(self._hosts)]

    def revoke_host(self, name: str, when: float) -> bool:
        with self._lock:
            old = self._hosts.get(name)
            if old is None:
                return False
            if old.revoked is None:
                self._hosts[name] = dataclasses.replace(old, revoked=when)
            return True

    def host_seen(self, name: str, when: float) -> None:
        with self._lock:
            old = self._hosts.get(name)
            if old is not None and (old.last_seen is None or old.last_seen < when):
                self._hosts[name] = dataclasses.replace(old, last_seen=when)

    def delete_host(self, name: str) -> bool:
        with self._lock:
            self._acks = {(i, h) for i, h in self._acks if h != name}
            return self._hosts.pop(name, None) is not None

    # -- enrolment tokens -------------------------------------------------------------------

    def add_enrol_token(self, record: EnrolToken) -> None:
        with self._lock:
            if record.id in self._enrol_tokens:
                raise InvalidInput(f"enrolment token {record.id[:16]} exists already")
            self._enrol_tokens[record.id] = record

    def get_enrol_token(self, token_id: str) -> EnrolToken | None:
        with self._lock:
            return self._enrol_tokens.get(token_id)

    def mark_enrol_token_used(self, token_id: str, when: float) -> bool:
        with self._lock:
            record = self._enrol_tokens.get(token_id)
            if record is None or record.spent:
                return False
            self._enrol_tokens[token_id] = dataclasses.replace(
                record, used=when, uses=record.uses + 1
            )
            return True

    def list_enrol_tokens(self) -> list[EnrolToken]:
        with self._lock:
            found = list(self._enrol_tokens.values())
        return sorted(found, key=lambda t: (t.created, t.id), reverse=True)

    def delete_enrol_token(self, token_id: str) -> bool:
        with self._lock:
            return self._enrol_tokens.pop(token_id, None) is not None

    # -- the console's CA and the serials it revoked --------------------------------------

    def get_console_ca(self) -> CARecord | None:
        with self._lock:
            return self._console_ca

    def add_console_ca(self, record: CARecord) -> CARecord:
        with self._lock:
            if self._console_ca is None:
                self._console_ca = record
            return self._console_ca

    def add_revoked_serial(self, record: RevokedSerial) -> bool:
        with self._lock:
            if record.serial in self._revoked_serials:
                return False
            self._revoked_serials[record.serial] = record
            return True

    def is_serial_revoked(self, serial: str) -> bool:
        with self._lock:
            return serial in self._revoked_serials

    def list_revoked_serials(self) -> list[RevokedSerial]:
        with self._lock:
            found = list(self._revoked_serials.values())
        return sorted(found, key=lambda r: (r.revoked, r.serial))

    # -- model commands ---------------------------------------------------------------------

    def add_model_command(self, command: ModelCommand) -> ModelCommand:
        check_command(command)
        with self._lock:
            stored = dataclasses.replace(command, id=next(self._command_ids))
            self._commands[stored.id or 0] = stored
        return stored

    def pending_model_commands(self, host: str | None = None) -> list[ModelCommand]:
        with self._lock:
            queued = [self._commands[i] for i in sorted(self._commands)]
            if host is None:
                return [c for c in queued if c.id not in self._done]
            enrolled = self._hosts.get(host)
            if enrolled is None:
                return []
            return [
                c for c in queued
                if c.time >= enrolled.enrolled and (c.id or 0, host) not in self._acks
            ]  # fmt: skip

    def finish_model_commands(self, ids: Sequence[int], host: str | None = None) -> None:
        now = time.time()
        with self._lock:
            for command_id in ids:
                if command_id not in self._commands:
                    continue
                self._done.setdefault(command_id, now)
                if host is not None:
                    self._acks.add((command_id, host))
