"""Enrolment tokens: how an operator lets a new host ask the console for a
certificate.

The console makes a token (``make_token``) and shows it once, as ``gse_<id>_<secret>``; the
operator hands it to the host, which presents it with its certificate request. The id is
public (it names the token in lists); the secret is 256 random bits, so, as for API tokens,
only its SHA-256 is stored: a stolen store holds no token anyone could present. A token lives
minutes to days, and is spent by its first use — a copy found later in a shell history or a
ticket enrols nothing — or, made for several hosts (a DaemonSet's nodes share one), by its
last: each use enrols one host, and no more hosts than it was made for.

Storage is not this module's: a ``TokenBook`` keeps the records. ``MemoryTokenBook`` is the
in-memory book (one process, lost at exit), for tests and for a console without a store.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

from garrison.errors import GarrisonError, InvalidInput

PREFIX = "gse"
ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 12
SECRET_BYTES = 32
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet, '_' and '-' among them.
SECRET_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
SECRET_LENGTH = 43
MAX_TTL = 30 * 86400.0  # an enrolment token is for a host being set up, not a standing key
MAX_USES = 100_000  # hosts one token may enrol at most: a large cluster's nodes


class TokenRefused(GarrisonError):
    """An enrolment token was presented and refused: malformed, unknown, wrong, expired or
    used already. ``str(error)`` never contains the secret."""


@dataclass(frozen=True)
class TokenRecord:
    """What is stored of a token: never its secret, only the secret's SHA-256 (hex).
    Times are epoch seconds; ``used`` is when it was last used, None until then; ``uses`` of
    its ``max_uses`` are spent."""

    id: str
    secret_hash: str
    created: float
    expires: float
    used: float | None = None
    max_uses: int = 1
    uses: int = 0

    @property
    def spent(self) -> bool:
        return self.uses >= self.max_uses


class TokenBook(Protocol):
    """Where tokens are kept. ``mark_used`` is the one write that matters: it must be atomic,
    so that two hosts presenting the same token at once enrol one host, not two."""

    def add(self, record: TokenRecord) -> None: ...

    def get(self, token_id: str) -> TokenRecord | None: ...

    def mark_used(self, token_id: str, when: float) -> bool:
        """Record one use; False when the token is unknown or its uses are all spent."""
        ...


def make_token(
    ttl_seconds: float, now: float | None = None, uses: int = 1
) -> tuple[str, TokenRecord]:
    """A new token living ``ttl_seconds`` from ``now`` (default: the time now) for ``uses``
    hosts: the text to give the operator, shown this once, and the record to store.
    InvalidInput for a lifetime that is not between a second and thirty days, or a number of
    uses not between 1 and MAX_USES."""
    if not 1 <= ttl_seconds <= MAX_TTL:
        raise InvalidInput(f"token lifetime: between 1 and {MAX_TTL:.0f} seconds")
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= MAX_USES:
        raise InvalidInput(f"token uses: between 1 and {MAX_USES}")
    created = time.time() if now is None else now
    token_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    record = TokenRecord(token_id, _sha256(secret), created, created + ttl_seconds, None, uses)
    return f"{PREFIX}_{token_id}_{secret}", record


def parse_token(presented: str) -> tuple[str, str]:
    """(id, secret) of a presented token; TokenRefused when it is not one. The secret's
    alphabet has '_' in it, so the text splits at its first two '_' only."""
    parts = presented.split("_", 2) if isinstance(presented, str) else []
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenRefused("enrolment token refused: not a gse_… token")
    _, token_id, secret = parts
    if len(token_id) != ID_LENGTH or not set(token_id) <= set(ID_ALPHABET):
        raise TokenRefused("enrolment token refused: malformed id")
    if len(secret) != SECRET_LENGTH or not set(secret) <= SECRET_ALPHABET:
        raise TokenRefused(f"enrolment token {token_id} refused: malformed secret")
    return token_id, secret


def redeem(record: TokenRecord, presented: str, now: float) -> None:
    """Check ``presented`` against ``record`` at ``now``: TokenRefused when it is another
    token, its secret is wrong, it has expired or its uses are spent. The secret is checked first,
    so whoever does not hold it learns nothing of the token's state."""
    token_id, secret = parse_token(presented)
    matches = hmac.compare_digest(record.secret_hash, _sha256(secret))
    if token_id != record.id or not matches:
        raise TokenRefused(f"enrolment token {token_id} refused: unknown or wrong secret")
    if record.spent:
        raise TokenRefused(f"enrolment token {token_id} refused: {_spent(record)}")
    if now >= record.expires:
        raise TokenRefused(f"enrolment token {token_id} refused: it has expired")


def spend(book: TokenBook, presented: str, now: float) -> TokenRecord:
    """Redeem ``presented`` from ``book`` and spend one use; the record as it now stands.
    TokenRefused as ``redeem``, and when other requests spent it in the meantime."""
    token_id, _ = parse_token(presented)
    record = book.get(token_id)
    if record is None:
        raise TokenRefused(f"enrolment token {token_id} refused: unknown or wrong secret")
    redeem(record, presented, now)
    if not book.mark_used(token_id, now):
        raise TokenRefused(f"enrolment token {token_id} refused: {_spent(record)}")
    return replace(record, used=now, uses=record.uses + 1)


def _spent(record: TokenRecord) -> str:
    if record.max_uses == 1:
        return "it was used already"
    return f"its {record.max_uses} uses are spent"


class MemoryTokenBook:
    """The in-memory book: records in a dict behind a lock, gone when the process ends."""

    def __init__(self) -> None:
        self._records: dict[str, TokenRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: TokenRecord) -> None:
        """InvalidInput when a token with the same id is there already."""
        with self._lock:
            if record.id in self._records:
                raise InvalidInput(f"enrolment token {record.id} exists already")
            self._records[record.id] = record

    def get(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            return self._records.get(token_id)

    def mark_used(self, token_id: str, when: float) -> bool:
        with self._lock:
            record = self._records.get(token_id)
            if record is None or record.spent:
                return False
            self._records[token_id] = replace(record, used=when, uses=record.uses + 1)
            return True


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
