"""Password hashing and rules, with argon2-cffi's real default parameters: argon2id hashes,
verification that never raises on a bad hash or text, rehash detection, and NIST 800-63B's
length-only rules."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type
from hypothesis import given
from hypothesis import strategies as st

from garrison.auth import check_password_rules, hash_password, needs_rehash, verify_password
from garrison.auth.passwords import MAX_LENGTH, MIN_LENGTH
from garrison.errors import InvalidInput

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def test_a_hash_is_argon2id_salted_and_verifies_only_its_password(stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$")
    assert PASSWORD not in stored
    assert hash_password(PASSWORD) != stored, "a new salt each time"
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + " ")
    assert not verify_password(stored, "")


def test_hashes_use_the_library_defaults_and_need_no_rehash(stored: str) -> None:
    defaults = PasswordHasher()
    assert defaults.type is Type.ID
    assert f"m={defaults.memory_cost},t={defaults.time_cost},p={defaults.parallelism}" in stored
    assert not needs_rehash(stored)


def test_a_hash_made_with_weaker_parameters_or_not_argon2_needs_a_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    assert verify_password(weak, PASSWORD), "still verifies: rehashed at the next login"
    assert needs_rehash(weak)
    assert needs_rehash("not a hash")


@given(garbage=st.text(max_size=200))
def test_verify_is_false_and_never_raises_on_any_hash_text(garbage: str) -> None:
    assert verify_password(garbage, PASSWORD) is False


def test_verify_is_false_for_a_password_that_is_not_unicode(stored: str) -> None:
    assert verify_password(stored, "\ud800" * 12) is False  # a lone surrogate (JSON "\ud800")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("a" * (MIN_LENGTH - 1), "at least 12 characters"),
        ("", "at least 12 characters"),
        ("a" * (MAX_LENGTH + 1), "at most 1024 characters"),
        ("\ud800" * MIN_LENGTH, "not Unicode text"),
    ],
)
def test_the_rules_refuse_too_short_too_long_and_non_unicode_saying_why(
    password: str, why: str
) -> None:
    with pytest.raises(InvalidInput, match=why) as caught:
        check_password_rules(password)
    assert str(caught.value).startswith("password: ")
    assert "(" in str(caught.value), "the message says why"


@pytest.mark.parametrize(
    "password",
    ["a" * MIN_LENGTH, "a" * MAX_LENGTH, "aaaaaaaaaaaaaaaa", "pass word 12", "ünïcødé pässwörd"],
)
def test_the_rules_have_no_composition_requirement(password: str) -> None:
    check_password_rules(password)  # no digit, capital or symbol asked for
