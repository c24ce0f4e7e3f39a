"""Enrolment tokens: a token enrols once (or as many hosts as it was made for), before it
expires, with its own secret only; what is stored could not be presented; the text parses
whatever its secret holds; and hosts racing with one token enrol no more than it allows."""

from __future__ import annotations

import dataclasses
import hashlib
import string
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.errors import InvalidInput
from garrison.fleet import (
    MemoryTokenBook,
    TokenRecord,
    TokenRefused,
    make_token,
    parse_token,
    redeem,
    spend,
)

NOW = 1_700_000_000.0
HOUR = 3600.0
SECRET_CHARS = string.ascii_letters + string.digits + "-_"


def secret_of(token: str) -> str:
    return token.split("_", 2)[2]


def test_a_fresh_token_is_redeemed_and_spending_it_marks_it_used() -> None:
    book = MemoryTokenBook()
    token, record = make_token(HOUR, now=NOW)
    book.add(record)
    redeem(record, token, NOW + 10)
    spent = spend(book, token, NOW + 10)
    assert spent.used == NOW + 10
    assert book.get(record.id) == spent


def test_a_token_used_twice_is_refused_the_second_time() -> None:
    book = MemoryTokenBook()
    token, record = make_token(HOUR, now=NOW)
    book.add(record)
    spend(book, token, NOW + 1)
    with pytest.raises(TokenRefused, match="used already"):
        spend(book, token, NOW + 2)
    used = book.get(record.id)
    assert used is not None
    with pytest.raises(TokenRefused, match="used already"):
        redeem(used, token, NOW + 2)
    assert book.get(record.id) == used  # the refusal changed nothing


def test_a_token_is_refused_from_the_instant_it_expires() -> None:
    token, record = make_token(HOUR, now=NOW)
    redeem(record, token, NOW + HOUR - 0.001)
    with pytest.raises(TokenRefused, match="expired"):
        redeem(record, token, NOW + HOUR)
    book = MemoryTokenBook()
    book.add(record)
    with pytest.raises(TokenRefused, match="expired"):
        spend(book, token, NOW + 2 * HOUR)
    assert book.get(record.id) == record  # an expired token is not marked used


def test_a_wrong_secret_is_refused_and_not_named_in_the_error() -> None:
    token, record = make_token(HOUR, now=NOW)
    secret = secret_of(token)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(TokenRefused, match="wrong secret") as refused:
        redeem(record, f"gse_{record.id}_{wrong}", NOW)
    assert secret not in str(refused.value)
    assert wrong not in str(refused.value)


def test_another_tokens_secret_does_not_open_this_one() -> None:
    book = MemoryTokenBook()
    mine, record = make_token(HOUR, now=NOW)
    theirs, other = make_token(HOUR, now=NOW)
    book.add(record)
    book.add(other)
    with pytest.raises(TokenRefused, match="wrong secret"):
        spend(book, f"gse_{record.id}_{secret_of(theirs)}", NOW)
    with pytest.raises(TokenRefused, match="wrong secret"):
        redeem(record, theirs, NOW)  # a whole other token, checked against this record
    assert spend(book, mine, NOW).used == NOW


def test_an_unknown_token_is_refused() -> None:
    token, _ = make_token(HOUR, now=NOW)
    with pytest.raises(TokenRefused, match="unknown"):
        spend(MemoryTokenBook(), token, NOW)


def test_a_secret_full_of_underscores_parses_and_redeems() -> None:
    secret = "_a_b-" + "_" * 38
    record = TokenRecord("abc123def456", hashlib.sha256(secret.encode()).hexdigest(), NOW, NOW + 1)
    token = f"gse_abc123def456_{secret}"
    assert parse_token(token) == ("abc123def456", secret)
    redeem(record, token, NOW)


def test_made_tokens_whose_secret_has_underscores_redeem() -> None:
    """About half of all secrets have a '_' (43 characters of 64): make them until one does."""
    made = (make_token(HOUR, now=NOW) for _ in range(200))
    token, record = next((t, r) for t, r in made if "_" in secret_of(t))
    redeem(record, token, NOW)


@given(st.text(alphabet=SECRET_CHARS, min_size=43, max_size=43))
def test_any_secret_of_the_alphabet_round_trips(secret: str) -> None:
    assert parse_token(f"gse_0123456789ab_{secret}") == ("0123456789ab", secret)


@given(st.text())
def test_arbitrary_text_is_refused_as_a_token_and_nothing_else(text: str) -> None:
    record = make_token(HOUR, now=NOW)[1]
    with pytest.raises(TokenRefused):
        redeem(record, text, NOW)


@pytest.mark.parametrize(
    "presented",
    [
        "gt_0123456789ab_" + "a" * 43,  # an API token, not an enrolment one
        "gse_0123456789AB_" + "a" * 43,  # the id is lower case
        "gse_0123456789a_" + "a" * 44,  # the id one short: the secret one long
        "gse_0123456789ab_" + "a" * 42,
        "gse_0123456789ab_" + "a" * 42 + "=",
        "gse_0123456789ab_" + "a" * 43 + "\n",
        "gse_0123456789ab",
    ],
)
def test_malformed_tokens_are_refused(presented: str) -> None:
    with pytest.raises(TokenRefused):
        parse_token(presented)


def test_the_record_holds_only_a_hash_of_the_secret() -> None:
    token, record = make_token(HOUR, now=NOW)
    secret = secret_of(token)
    assert record.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(v) for v in dataclasses.asdict(record).values()]
    assert not any(secret in value for value in stored)
    assert secret not in repr(record)
    assert (record.created, record.expires, record.used) == (NOW, NOW + HOUR, None)
    assert token == f"gse_{record.id}_{secret}"


def test_tokens_are_all_different() -> None:
    made = [make_token(HOUR, now=NOW) for _ in range(100)]
    assert len({r.id for _, r in made}) == len({t for t, _ in made}) == 100


@pytest.mark.parametrize("ttl", [0, -1, 0.5, 31 * 86400.0, float("nan"), float("inf")])
def test_a_lifetime_out_of_bounds_is_refused(ttl: float) -> None:
    with pytest.raises(InvalidInput, match="lifetime"):
        make_token(ttl)


def test_two_hosts_racing_with_one_token_enrol_one() -> None:
    book = MemoryTokenBook()
    token, record = make_token(HOUR, now=NOW)
    book.add(record)
    start = threading.Barrier(16)
    results: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        try:
            spend(book, token, NOW)
            outcome = "enrolled"
        except TokenRefused:
            outcome = "refused"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == ["enrolled"] + ["refused"] * 15


def test_the_in_memory_book_refuses_a_second_record_with_the_same_id() -> None:
    book = MemoryTokenBook()
    _, record = make_token(HOUR, now=NOW)
    book.add(record)
    with pytest.raises(InvalidInput, match="exists already"):
        book.add(record)
    assert not book.mark_used("nosuchtoken0", NOW)


@pytest.mark.parametrize("uses", [0, -1, 100_001, True, 2.0])
def test_a_number_of_uses_out_of_bounds_is_refused(uses: int) -> None:
    with pytest.raises(InvalidInput, match="uses"):
        make_token(HOUR, now=NOW, uses=uses)


def test_sixteen_hosts_racing_for_a_token_of_five_uses_enrol_five() -> None:
    book = MemoryTokenBook()
    token, record = make_token(HOUR, now=NOW, uses=5)
    book.add(record)
    start = threading.Barrier(16)
    results: list[str] = []

    def race() -> None:
        start.wait()
        try:
            spend(book, token, NOW)
            results.append("enrolled")
        except TokenRefused as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    refused = f"enrolment token {record.id} refused: its 5 uses are spent"
    assert sorted(results) == ["enrolled"] * 5 + [refused] * 11
    assert book.get(record.id) == dataclasses.replace(record, used=NOW, uses=5)
