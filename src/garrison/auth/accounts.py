"""``Accounts``: users and their roles, API tokens for the CLI and automation, server-side
sessions for the pages — over the store, which keeps only hashes of what authenticates.

A password is hashed with argon2id (slow on purpose: it may be a guessable one). A token's
secret and a session's cookie are 256 random bits each, out of reach of guessing, so a plain
SHA-256 of them is what is stored and compared: a stolen store does not let anyone in, and
checking a token costs no argon2 per request.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import re
import secrets
import string

from garrison.auth.model import ApiToken, Session, User, check_role
from garrison.auth.passwords import (
    MAX_LENGTH,
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)
from garrison.errors import InvalidInput, NotFound, StoreError
from garrison.model.clock import Clock, system_clock
from garrison.store.base import SessionRecord, Store, TokenRecord, UserRecord

NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")  # fullmatch: "$" would allow a final newline
# gt_<id>_<secret>: the id is public (it names the token in lists); the secret is
# secrets.token_urlsafe(32), 43 characters of the URL-safe base64 alphabet.
TOKEN = re.compile(r"gt_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")
TOKEN_ID_ALPHABET = string.ascii_lowercase + string.digits
TOKEN_ID_LENGTH = 12
TOUCH_EVERY = 60.0  # a token's last use is recorded to the minute: not a write per request
SESSION_TTL = 12 * 3600.0
MAX_TTL = 3650 * 86400.0  # ten years, as durations in the configuration
BOOTSTRAP_NAME = "admin"


class Accounts:
    def __init__(self, store: Store, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock

    # -- users --------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str) -> User:
        """InvalidInput naming the field: a bad name, role or password, or a name taken; and
        a first user who is not an admin (nobody could then manage users)."""
        checked = check_role(role)
        if checked != "admin" and not any(
            r.role == "admin" and not r.disabled for r in self.store.list_users()
        ):
            raise InvalidInput(f"role: the first user must be an admin, not {checked}")
        record = UserRecord(check_name(name), checked, _hashed(password), self.clock())
        self.store.add_user(record)
        return _user(record)

    def users(self) -> list[User]:
        """By name."""
        return [_user(r) for r in self.store.list_users()]

    def user(self, name: str) -> User:
        return _user(self._record(name))

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's sessions end (its tokens go on working)."""
        if not self.store.update_user(name, password_hash=_hashed(password)):
            raise _no_user(name)
        self.store.delete_sessions_of(name)

    def set_role(self, name: str, role: str) -> User:
        """InvalidInput when it would leave no enabled admin."""
        if not self.store.update_user(name, role=check_role(role)):
            raise _no_user(name)
        return self.user(name)

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disabled: its sessions end, its tokens are refused while it stays so. InvalidInput
        when it would leave no enabled admin."""
        if not self.store.update_user(name, disabled=bool(disabled)):
            raise _no_user(name)
        if disabled:
            self.store.delete_sessions_of(name)
        return self.user(name)

    def remove_user(self, name: str) -> None:
        """The user with its tokens and sessions; InvalidInput for the last enabled admin."""
        if not self.store.delete_user(name):
            raise _no_user(name)

    def login(self, name: str, password: str) -> User | None:
        """The user when the name and password match and it is enabled; None otherwise. An
        unknown name costs the same argon2 verify as a known one, so that the time an answer
        takes does not tell which names exist."""
        if not isinstance(password, str) or len(password) > MAX_LENGTH:
            return None  # refused on its length alone, whatever the name
        dummy = _dummy_hash()  # made before any lookup: its one-time cost singles out no name
        record = self.store.get_user(name) if isinstance(name, str) else None
        matched = verify_password(record.password_hash if record else dummy, password)
        if record is None or not matched or record.disabled:
            return None
        if needs_rehash(record.password_hash):  # parameters raised since it was hashed
            with _best_effort():
                self.store.update_user(record.name, password_hash=hash_password(password))
        return _user(record)

    def bootstrap_admin(self) -> str | None:
        """On a store without users: the user "admin" (role admin) with a random password,
        which is returned to be shown once; None when a user exists. Two processes at once:
        the store lets one add it, the other gets None."""
        if self.store.list_users():
            return None
        password = secrets.token_urlsafe(18)
        try:
            self.add_user(BOOTSTRAP_NAME, "admin", password)
        except InvalidInput:  # the name is taken: another process made it first
            return None
        return password

    def _record(self, name: str) -> UserRecord:
        record = self.store.get_user(name)
        if record is None:
            raise _no_user(name)
        return record

    # -- API tokens -----------------------------------------------------------------------------

    def new_token(self, user: str, name: str, ttl: float | None = None) -> tuple[ApiToken, str]:
        """A token for ``user`` living ``ttl`` seconds (None: until revoked), and what to
        present: ``gt_<id>_<secret>``, shown this once (only the secret's SHA-256 is kept)."""
        self._record(user)
        now = self.clock()
        expires = None if ttl is None else now + _check_ttl(ttl)
        token_id = "".join(secrets.choice(TOKEN_ID_ALPHABET) for _ in range(TOKEN_ID_LENGTH))
        secret = secrets.token_urlsafe(32)
        record = TokenRecord(token_id, user, _token_name(name), _sha256(secret), now, expires)
        self.store.add_token(record)
        return _token(record), f"gt_{token_id}_{secret}"

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Those of ``user`` (NotFound when there is none), or everyone's; oldest first."""
        if user is not None:
            self._record(user)
        return [_token(r) for r in self.store.list_tokens(user)]

    def revoke_token(self, token_id: str) -> None:
        if not self.store.delete_token(token_id):
            raise NotFound(f"token {token_id[:16]!r}: no such token")

    def user_of_token(self, presented: str) -> User | None:
        """The user a presented token stands for; None when it is malformed, unknown, revoked
        or expired, or its user is disabled or removed."""
        record = self._token_of(presented)
        now = self.clock()
        if record is None or (record.expires is not None and now >= record.expires):
            return None
        owner = self.store.get_user(record.user)
        if owner is None or owner.disabled:
            return None
        if record.last_used is None or now - record.last_used >= TOUCH_EVERY:
            with _best_effort():
                self.store.touch_token(record.id, now)
        return _user(owner)

    def _token_of(self, presented: str) -> TokenRecord | None:
        found = TOKEN.fullmatch(presented) if isinstance(presented, str) else None
        if found is None:
            return None
        record = self.store.get_token(found[1])
        if record is None or not hmac.compare_digest(record.secret_hash, _sha256(found[2])):
            return None
        return record

    # -- page sessions ----------------------------------------------------------------------

    def new_session(self, user: str, ttl: float = SESSION_TTL) -> tuple[str, Session]:
        """A session for ``user`` (who has just logged in): the cookie's value, to be set
        once, and the session (only the cookie's SHA-256 is kept)."""
        if self._record(user).disabled:
            raise InvalidInput(f"name: user {user[:64]!r} is disabled")
        now = self.clock()
        session = Session(user, secrets.token_urlsafe(32), now, now + _check_ttl(ttl))
        self.store.prune_sessions(now)  # the table holds those logged in, not every login
        cookie = secrets.token_urlsafe(32)
        key = _sha256(cookie)
        self.store.add_session(SessionRecord(key, user, session.csrf, now, session.expires))
        return cookie, session

    def session(self, cookie: str) -> tuple[User, Session] | None:
        """The user and session of a cookie; None when unknown, expired (then deleted), or
        its user is disabled or removed."""
        key = _sha256(cookie) if isinstance(cookie, str) else ""
        record = self.store.get_session(key) if key else None
        if record is None:
            return None
        if self.clock() >= record.expires:
            with _best_effort():
                self.store.delete_session(key)
            return None
        owner = self.store.get_user(record.user)
        if owner is None or owner.disabled:
            return None
        return _user(owner), Session(record.user, record.csrf, record.created, record.expires)

    def end_session(self, cookie: str) -> None:
        """Log out (nothing happens for an unknown cookie)."""
        self.store.delete_session(_sha256(cookie))


def check_name(name: str) -> str:
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise InvalidInput(
            "name: lower-case letters, digits, '.', '_' and '-', starting with a letter, "
            "at most 64 characters"
        )
    return name


def _hashed(password: str) -> str:
    check_password_rules(password)
    return hash_password(password)


@functools.cache
def _dummy_hash() -> str:
    """What an unknown name's password is verified against (no password matches it)."""
    return hash_password(secrets.token_urlsafe(32))


def _best_effort() -> contextlib.suppress:
    """For a write that only keeps things tidy (a token's last use, a rehash, an expired
    session's row): a full disk must not turn a valid credential away, nor an expired one
    into an error instead of a refusal."""
    return contextlib.suppress(StoreError)


def _token_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable():
        raise InvalidInput("name: a token's name is 1 to 64 printable characters")
    return name


def _check_ttl(ttl: float) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL:
        raise InvalidInput(f"ttl: a number of seconds above 0 and at most {MAX_TTL:.0f}")
    return float(ttl)


def _sha256(text: str) -> str:
    # surrogatepass: a cookie is any text a client sends; hashing it must not raise
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _user(record: UserRecord) -> User:
    return User(record.name, check_role(record.role), record.created, record.disabled)


def _token(record: TokenRecord) -> ApiToken:
    return ApiToken(
        record.id, record.user, record.name, record.created, record.expires, record.last_used
    )


def _no_user(name: str) -> NotFound:
    return NotFound(f"user {str(name)[:64]!r}: no such user")
