"""The in-memory store's users, API tokens and sessions (a part of ``MemoryStore``): the same
rules as SQLite, each change checked and made under the store's lock."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from garrison.errors import InvalidInput, NotFound
from garrison.store.base import (
    SessionRecord,
    TokenRecord,
    UserRecord,
    last_admin,
    user_exists,
)


class MemoryUsers:
    """Needs the store's ``_lock``."""

    _lock: threading.Lock

    def __init__(self) -> None:
        self._users: dict[str, UserRecord] = {}
        self._tokens: dict[str, TokenRecord] = {}
        self._sessions: dict[str, SessionRecord] = {}

    def add_user(self, record: UserRecord) -> None:
        with self._lock:
            if record.name in self._users:
                raise user_exists(record.name)
            self._users[record.name] = record

    def get_user(self, name: str) -> UserRecord | None:
        with self._lock:
            return self._users.get(name)

    def list_users(self) -> list[UserRecord]:
        with self._lock:
            return [self._users[n] for n in sorted(self._users)]

    def update_user(
        self,
        name: str,
        *,
        role: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> bool:
        with self._lock:
            old = self._users.get(name)
            if old is None:
                return False
            new = dataclasses.replace(
                old,
                role=old.role if role is None else role,
                password_hash=old.password_hash if password_hash is None else password_hash,
                disabled=old.disabled if disabled is None else disabled,
            )
            demotes = (role is not None and role != "admin") or disabled is True
            if demotes and not self._admins_left({name: new}):
                raise last_admin(name)
            self._users[name] = new
            return True

    def delete_user(self, name: str) -> bool:
        with self._lock:
            old = self._users.get(name)
            if old is None:
                return False
            if _enabled_admin(old) and not self._admins_left({name: None}):
                raise last_admin(name)
            del self._users[name]
            self._tokens = {k: t for k, t in self._tokens.items() if t.user != name}
            self._sessions = {k: s for k, s in self._sessions.items() if s.user != name}
            return True

    def _admins_left(self, change: dict[str, UserRecord | None]) -> bool:
        """Whether an enabled admin remains once ``change`` (name → new record, or None:
        removed) is made."""
        after = {**self._users, **change}
        return any(_enabled_admin(u) for u in after.values() if u is not None)

    def add_token(self, record: TokenRecord) -> None:
        with self._lock:
            if record.id in self._tokens:
                raise InvalidInput(f"token id {record.id[:16]!r} exists")
            self._check_user(record.user)
            self._tokens[record.id] = record

    def get_token(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(token_id)

    def list_tokens(self, user: str | None = None) -> list[TokenRecord]:
        with self._lock:
            found = [t for t in self._tokens.values() if user in (None, t.user)]
        return sorted(found, key=lambda t: (t.created, t.id))

    def delete_token(self, token_id: str) -> bool:
        with self._lock:
            return self._tokens.pop(token_id, None) is not None

    def touch_token(self, token_id: str, when: float) -> None:
        with self._lock:
            token = self._tokens.get(token_id)
            if token is not None:
                self._tokens[token_id] = dataclasses.replace(token, last_used=when)

    def add_session(self, record: SessionRecord) -> None:
        with self._lock:
            self._check_user(record.user)
            self._sessions[record.key_hash] = record

    def get_session(self, key_hash: str) -> SessionRecord | None:
        with self._lock:
            return self._sessions.get(key_hash)

    def delete_session(self, key_hash: str) -> bool:
        with self._lock:
            return self._sessions.pop(key_hash, None) is not None

    def delete_sessions_of(self, user: str) -> int:
        return self._drop_sessions(lambda s: s.user == user)

    def prune_sessions(self, now: float) -> int:
        return self._drop_sessions(lambda s: s.expires <= now)

    def _drop_sessions(self, gone: Callable[[SessionRecord], bool]) -> int:
        with self._lock:
            kept = {k: s for k, s in self._sessions.items() if not gone(s)}
            dropped = len(self._sessions) - len(kept)
            self._sessions = kept
        return dropped

    def _check_user(self, name: str) -> None:
        if name not in self._users:
            raise NotFound(f"user {name[:64]!r}: no such user")


def _enabled_admin(user: UserRecord) -> bool:
    return user.role == "admin" and not user.disabled
