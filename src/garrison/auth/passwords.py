"""Password hashing: argon2id through argon2-cffi, with the library's default parameters.

Those defaults are RFC 9106's second recommended option (argon2id, t=3, m=64 MiB, p=4; a
16-byte salt, a 32-byte hash): memory-hard enough for a login form, cheap enough that a
console answering a few logins a minute does not notice, and maintained by people who follow
the research. Should they change in a later argon2-cffi, ``needs_rehash`` says so and a login
rehashes with the new ones (``Accounts.login``).

Rules follow NIST SP 800-63B §5.1.1.2: a minimum length and nothing else — composition rules
make passwords harder to remember, not to guess.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from garrison.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password``, as a PHC string (``$argon2id$v=19$…``)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` is the one of ``password_hash``; False (never an exception) for a
    wrong password, a hash that is not an argon2 one, or text that is not Unicode (a lone
    surrogate from a JSON escape cannot be encoded)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, ValueError):  # InvalidHashError, UnicodeEncodeError
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than those in force."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except ValueError:  # InvalidHashError: not an argon2 hash, make one that is
        return True


def check_password_rules(password: str) -> None:
    """InvalidInput when the password is shorter than 12 or longer than 1024 characters, or
    is not Unicode text (it could not be hashed)."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"password: at least {MIN_LENGTH} characters (length is what makes a password "
            f"hard to guess; any characters will do)"
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(
            f"password: at most {MAX_LENGTH} characters (a longer one adds nothing, and "
            f"hashing megabytes at every login would be a denial of service)"
        )
    try:
        password.encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput("password: not Unicode text (a lone surrogate)") from exc
