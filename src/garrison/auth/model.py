"""Who may use the console: users with a role, their API tokens, their page sessions. What
leaves ``Accounts`` carries no hash and no secret (the store's records do)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from garrison.errors import InvalidInput

Role = Literal["admin", "operator", "auditor"]
# Lowest first: each role includes the rights of those before it.
ROLES: tuple[Role, ...] = ("auditor", "operator", "admin")


def check_role(role: str) -> Role:
    """``role`` as a Role; InvalidInput naming the field otherwise."""
    for known in ROLES:
        if role == known:
            return known
    raise InvalidInput(f"role: must be one of {', '.join(ROLES)}, not {str(role)[:20]!r}")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    created: float
    disabled: bool = False

    def can(self, need: Role) -> bool:
        """Whether the user has the rights of ``need``: admin ⊇ operator ⊇ auditor; a disabled
        user has none."""
        return not self.disabled and ROLES.index(self.role) >= ROLES.index(need)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "created": iso(self.created),
            "disabled": self.disabled,
        }


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token as its owner sees it: the public id (``gt_<id>_…``), never the secret."""

    id: str  # 12 characters [a-z0-9]
    user: str
    name: str  # what the user called it ("ci", "laptop")
    created: float
    expires: float | None = None
    last_used: float | None = None  # to the minute: not a write per request

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "created": iso(self.created),
            "expires": iso(self.expires),
            "lastUsed": iso(self.last_used),
        }


@dataclass(frozen=True, slots=True)
class Session:
    """A page session. ``csrf``: what a form (field ``csrf_token``) or an htmx request (header
    ``X-CSRF-Token``) that changes anything must echo."""

    user: str
    csrf: str
    created: float
    expires: float


def iso(when: float | None) -> str | None:
    """ISO 8601 UTC with a "Z", as audits' times; None stays None."""
    if when is None:
        return None
    return dt.datetime.fromtimestamp(when, tz=dt.UTC).isoformat().replace("+00:00", "Z")
