"""What replicas of a console share through the store, on SQLite, PostgreSQL and the in-memory
fake alike: the console's CA (the first stored stays, also when two replicas store theirs at
once through two connections), the serials it revoked, enrolment tokens for several hosts
(no more uses than allowed, also when hosts race), and a host name enrolled only once by
such a token."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from garrison.fleet.enroll import TokenRecord, TokenRefused, make_token, spend
from garrison.store.base import CARecord, HostRecord, RevokedSerial
from garrison.store.tokenbook import StoreTokenBook
from tests.store.test_store_hosts import RacingBook, two_stores


def ca(n: int) -> CARecord:
    return CARecord(f"cert {n}", f"key {n}", 1000.0 + n)


def test_a_store_has_no_ca_until_one_is_added_and_the_first_stays(store) -> None:
    assert store.get_console_ca() is None
    assert store.add_console_ca(ca(1)) == ca(1)
    assert store.add_console_ca(ca(2)) == ca(1)
    assert store.get_console_ca() == ca(1)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_replicas_adding_their_ca_at_once_both_get_one_ca(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with two_stores(kind, request, tmp_path) as stores:
        barrier = threading.Barrier(2)
        got: list[CARecord] = []

        def add(store, n: int) -> None:
            barrier.wait(10)
            got.append(store.add_console_ca(ca(n)))

        threads = [threading.Thread(target=add, args=(s, n)) for n, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(got) == 2
        assert got[0] == got[1] == stores[0].get_console_ca() == stores[1].get_console_ca()


def test_a_serial_is_revoked_once_and_listed_oldest_first(store) -> None:
    assert not store.is_serial_revoked("12345")
    assert store.add_revoked_serial(RevokedSerial("12345", "web", 20.0))
    assert not store.add_revoked_serial(RevokedSerial("12345", "db", 30.0))
    assert store.add_revoked_serial(RevokedSerial("999", "db", 10.0))
    assert store.is_serial_revoked("12345")
    assert not store.is_serial_revoked("1234")
    assert store.list_revoked_serials() == [
        RevokedSerial("999", "db", 10.0),
        RevokedSerial("12345", "web", 20.0),
    ]


def test_a_token_for_three_hosts_is_used_three_times_then_refused(store) -> None:
    book = StoreTokenBook(store)
    text, record = make_token(600.0, now=1000.0, uses=3)
    book.add(record)
    assert [spend(book, text, 1010.0 + n).uses for n in range(3)] == [1, 2, 3]
    with pytest.raises(TokenRefused, match="its 3 uses are spent"):
        spend(book, text, 1020.0)
    found = store.get_enrol_token(record.id)
    assert (found.uses, found.max_uses, found.used) == (3, 3, 1012.0)
    assert store.list_enrol_tokens() == [found]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)  # made before 0004
def test_a_token_used_before_uses_were_counted_stays_spent(store) -> None:
    """Migration 0004 gave every token ``uses`` 0, those used before it too."""
    store.add_enrol_token(TokenRecord("old", "ab" * 32, 100.0, 700.0, used=200.0, uses=0))
    assert not store.mark_enrol_token_used("old", 300.0)
    found = store.get_enrol_token("old")
    assert (found.uses, found.used) == (1, 200.0)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_three_hosts_racing_for_a_token_of_two_uses_enrol_two(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with two_stores(kind, request, tmp_path) as (first, second):
        text, record = make_token(600.0, now=1000.0, uses=2)
        first.add_enrol_token(record)
        barrier = threading.Barrier(3)
        outcomes: list[str] = []

        def present(store) -> None:
            try:
                spend(RacingBook(store, barrier), text, 1010.0)
                outcomes.append("enrolled")
            except TokenRefused as exc:
                outcomes.append(str(exc))

        stores = (first, second, first)
        threads = [threading.Thread(target=present, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        refused = f"enrolment token {record.id} refused: its 2 uses are spent"
        assert sorted(outcomes) == sorted(["enrolled", "enrolled", refused])
        assert first.get_enrol_token(record.id).uses == 2


def test_a_new_host_is_added_only_under_a_name_not_enrolled(store) -> None:
    assert store.add_new_host(HostRecord("web", "111", 10.0))
    assert not store.add_new_host(HostRecord("web", "222", 20.0))
    assert store.revoke_host("web", 30.0)
    assert not store.add_new_host(HostRecord("web", "333", 40.0))
    assert store.get_host("web") == HostRecord("web", "111", 10.0, revoked=30.0)
