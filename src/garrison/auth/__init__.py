"""Who may use the console: users with a role (admin ⊇ operator ⊇ auditor), argon2id
password logins with server-side sessions and a CSRF token, and API tokens for the CLI and
automation. ``Accounts`` is the core object the API, the pages and ``garrison users`` call."""

from __future__ import annotations

from garrison.auth.accounts import Accounts, check_name
from garrison.auth.model import ROLES, ApiToken, Role, Session, User, check_role
from garrison.auth.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)

__all__ = [
    "ROLES",
    "Accounts",
    "ApiToken",
    "Role",
    "Session",
    "User",
    "check_name",
    "check_password_rules",
    "check_role",
    "hash_password",
    "needs_rehash",
    "verify_password",
]
