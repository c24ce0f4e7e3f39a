"""``Accounts`` on the real SQLite store and the in-memory one alike: users and roles, logins,
API tokens and sessions, with a fake clock for expiry.

Passwords are hashed with argon2id at a lower cost than in production (these tests are about
accounts; test_passwords.py proves the production parameters) — the real library all the
same, swapped in where the hasher lives.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.auth import ROLES, Accounts, ApiToken, Session, User, passwords
from garrison.console import Console
from garrison.errors import InvalidInput, NotFound, StoreError
from garrison.model.clock import FakeClock
from garrison.store import MemoryStore, SQLiteStore

PASSWORD = "correct horse battery"
OTHER = "staple tangerine cloud"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", CHEAP)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def accounts(store: SQLiteStore | MemoryStore, clock: FakeClock) -> Accounts:
    made = Accounts(store, clock)
    made.add_user("root", "admin", PASSWORD)
    return made


# -- users and roles ----------------------------------------------------------------------------


def test_roles_nest_and_a_disabled_user_has_no_right() -> None:
    rights = {r: {need for need in ROLES if User("u", r, 0.0).can(need)} for r in ROLES}
    assert rights == {
        "auditor": {"auditor"},
        "operator": {"auditor", "operator"},
        "admin": {"auditor", "operator", "admin"},
    }
    assert not any(User("u", "admin", 0.0, disabled=True).can(need) for need in ROLES)


@pytest.mark.parametrize(
    ("name", "role", "password", "field"),
    [
        ("Bob", "operator", PASSWORD, "name"),
        ("1bob", "operator", PASSWORD, "name"),
        ("bob\n", "operator", PASSWORD, "name"),
        ("b" * 65, "operator", PASSWORD, "name"),
        ("", "operator", PASSWORD, "name"),
        ("bob smith", "operator", PASSWORD, "name"),
        ("bob", "root", PASSWORD, "role"),
        ("bob", "Admin", PASSWORD, "role"),
        ("bob", "operator", "short", "password"),
        ("bob", "operator", "x" * 1025, "password"),
    ],
)
def test_add_user_refuses_a_bad_field_naming_it_and_stores_nothing(
    accounts: Accounts, name: str, role: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        accounts.add_user(name, role, password)
    assert str(caught.value).startswith(f"{field}: ")
    assert [u.name for u in accounts.users()] == ["root"]


def test_names_up_to_64_characters_of_the_allowed_alphabet_are_taken(accounts: Accounts) -> None:
    for name in ("b", "bob.smith_2-x", "b" * 64):
        assert accounts.add_user(name, "auditor", PASSWORD).name == name


def test_an_existing_name_is_refused_and_the_first_user_kept(accounts: Accounts) -> None:
    accounts.add_user("bob", "auditor", PASSWORD)
    with pytest.raises(InvalidInput, match=r"^name: a user named 'bob' exists"):
        accounts.add_user("bob", "admin", OTHER)
    assert accounts.user("bob").role == "auditor"
    assert accounts.login("bob", PASSWORD) is not None


def test_hashes_are_argon2id_in_the_store_and_in_no_json(accounts: Accounts, store) -> None:
    user = accounts.add_user("bob", "operator", PASSWORD)
    stored = store.get_user("bob").password_hash
    assert stored.startswith("$argon2id$")
    token, secret = accounts.new_token("bob", "ci")
    documents = json.dumps(
        [user.to_json(), [u.to_json() for u in accounts.users()], token.to_json(),
         [t.to_json() for t in accounts.tokens()]]
    )  # fmt: skip
    for leak in ("$argon2", stored, secret, secret.split("_", 2)[2], PASSWORD):
        assert leak not in documents


def test_to_json_gives_iso_utc_times_and_null_for_none(accounts: Accounts, clock) -> None:
    assert accounts.user("root").to_json() == {
        "name": "root", "role": "admin", "created": "2023-11-14T22:13:20Z", "disabled": False,
    }  # fmt: skip
    token, _ = accounts.new_token("root", "ci")
    assert token.to_json() == {
        "id": token.id, "user": "root", "name": "ci", "created": "2023-11-14T22:13:20Z",
        "expires": None, "lastUsed": None,
    }  # fmt: skip


def test_an_unknown_user_is_not_found(accounts: Accounts) -> None:
    for call in (
        lambda: accounts.user("nobody"),
        lambda: accounts.set_password("nobody", PASSWORD),
        lambda: accounts.set_role("nobody", "auditor"),
        lambda: accounts.set_disabled("nobody", True),
        lambda: accounts.remove_user("nobody"),
        lambda: accounts.new_token("nobody", "ci"),
        lambda: accounts.tokens("nobody"),
        lambda: accounts.new_session("nobody"),
        lambda: accounts.revoke_token("aaaaaaaaaaaa"),
    ):
        with pytest.raises(NotFound):
            call()


def test_the_last_enabled_admin_cannot_be_removed_demoted_or_disabled(
    accounts: Accounts,
) -> None:
    for change in (
        lambda: accounts.remove_user("root"),
        lambda: accounts.set_role("root", "operator"),
        lambda: accounts.set_disabled("root", True),
    ):
        with pytest.raises(InvalidInput, match="last enabled admin"):
            change()
    assert accounts.users() == [User("root", "admin", accounts.clock())]


def test_with_a_second_admin_one_may_go_but_not_both(accounts: Accounts) -> None:
    accounts.add_user("second", "admin", PASSWORD)
    assert accounts.set_role("root", "operator").role == "operator"
    with pytest.raises(InvalidInput, match="last enabled admin"):
        accounts.set_disabled("second", True)
    accounts.set_role("root", "admin")
    assert accounts.set_disabled("second", True).disabled
    with pytest.raises(InvalidInput, match="last enabled admin"):
        accounts.remove_user("root")  # a disabled admin does not count
    accounts.set_disabled("second", False)
    accounts.remove_user("root")
    assert [u.name for u in accounts.users()] == ["second"]


def test_set_role_validates_the_role(accounts: Accounts) -> None:
    accounts.add_user("bob", "auditor", PASSWORD)
    with pytest.raises(InvalidInput, match=r"^role: "):
        accounts.set_role("bob", "superuser")
    assert accounts.set_role("bob", "operator") == User("bob", "operator", accounts.clock())


# -- logins ---------------------------------------------------------------------------------------


def test_a_wrong_password_and_an_unknown_user_both_return_none_after_one_verify_each(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from garrison.auth import accounts as module  # noqa: PLC0415 - the name login calls

    verified: list[str] = []
    real = module.verify_password

    def counting(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(module, "verify_password", counting)
    assert accounts.login("root", PASSWORD) == accounts.user("root")
    assert accounts.login("root", OTHER) is None
    assert accounts.login("nobody", PASSWORD) is None
    assert accounts.login("Not A Name!", PASSWORD) is None
    assert len(verified) == 4, "an unknown name costs the same one argon2 verify"
    assert all(h.startswith("$argon2id$") for h in verified)


def test_a_disabled_user_cannot_log_in_until_enabled(accounts: Accounts) -> None:
    accounts.add_user("bob", "operator", PASSWORD)
    accounts.set_disabled("bob", True)
    assert accounts.login("bob", PASSWORD) is None
    accounts.set_disabled("bob", False)
    assert accounts.login("bob", PASSWORD) is not None


def test_a_password_longer_than_allowed_is_refused_without_hashing(accounts: Accounts) -> None:
    assert accounts.login("root", PASSWORD + "x" * 2000) is None


def test_login_rehashes_a_hash_made_with_other_parameters(accounts: Accounts, store) -> None:
    older = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(PASSWORD)
    store.update_user("root", password_hash=older)
    assert accounts.login("root", PASSWORD) is not None
    rehashed = store.get_user("root").password_hash
    assert rehashed != older
    assert not CHEAP.check_needs_rehash(rehashed), "made with the parameters in force"
    assert accounts.login("root", PASSWORD) is not None


def test_set_password_checks_the_rules_replaces_it_and_ends_sessions(accounts: Accounts) -> None:
    cookie, _ = accounts.new_session("root")
    with pytest.raises(InvalidInput, match=r"^password: "):
        accounts.set_password("root", "short")
    assert accounts.session(cookie) is not None, "a refused change ends nothing"
    _, secret = accounts.new_token("root", "ci")
    accounts.set_password("root", OTHER)
    assert accounts.login("root", PASSWORD) is None
    assert accounts.login("root", OTHER) is not None
    assert accounts.session(cookie) is None
    assert accounts.user_of_token(secret) is not None, "tokens are not passwords"


# -- the first admin ------------------------------------------------------------------------


def test_the_bootstrap_creates_one_admin_whose_password_logs_in_and_only_once(store) -> None:
    accounts = Accounts(store, FakeClock())
    password = accounts.bootstrap_admin()
    assert password is not None
    assert len(password) >= 24
    assert accounts.bootstrap_admin() is None
    assert [(u.name, u.role) for u in accounts.users()] == [("admin", "admin")]
    assert accounts.login("admin", password) is not None


def test_the_bootstrap_does_nothing_once_any_user_exists(accounts: Accounts) -> None:
    assert accounts.bootstrap_admin() is None
    assert [u.name for u in accounts.users()] == ["root"]


def test_threads_bootstrapping_at_once_make_one_admin(store) -> None:
    accounts = Accounts(store, FakeClock())
    start = threading.Barrier(4)
    results: list[str | None] = []

    def bootstrap() -> None:
        start.wait()
        results.append(accounts.bootstrap_admin())

    threads = [threading.Thread(target=bootstrap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    passwords_given = [p for p in results if p is not None]
    assert len(passwords_given) == 1
    assert accounts.login("admin", passwords_given[0]) is not None
    assert len(accounts.users()) == 1


BOOTSTRAP = """
import sys, time
from pathlib import Path
from garrison.auth import Accounts
from garrison.store import SQLiteStore
store = SQLiteStore.in_dir(sys.argv[1])
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
print(Accounts(store).bootstrap_admin() or "")
store.close()
"""


def test_processes_bootstrapping_one_store_at_once_make_one_admin(tmp_path: Path) -> None:
    SQLiteStore.in_dir(tmp_path).close()
    go = tmp_path / "go"
    command = [sys.executable, "-c", BOOTSTRAP, str(tmp_path), str(go)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(command, **pipes) for _ in range(3)]
    go.touch()
    ran = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in ran]
    given_out = [out.strip() for out, _ in ran if out.strip()]
    assert len(given_out) == 1
    store = SQLiteStore.in_dir(tmp_path)
    try:
        assert [u.name for u in store.list_users()] == ["admin"]
        assert Accounts(store).login("admin", given_out[0]) is not None
    finally:
        store.close()


# -- API tokens ---------------------------------------------------------------------------------


def test_a_token_works_until_revoked(accounts: Accounts) -> None:
    token, secret = accounts.new_token("root", "ci")
    assert token == ApiToken(token.id, "root", "ci", accounts.clock())
    assert secret.startswith(f"gt_{token.id}_")
    assert accounts.user_of_token(secret) == accounts.user("root")
    accounts.revoke_token(token.id)
    assert accounts.user_of_token(secret) is None
    assert accounts.tokens() == []
    with pytest.raises(NotFound):
        accounts.revoke_token(token.id)


def test_a_token_works_until_it_expires(accounts: Accounts, clock: FakeClock) -> None:
    token, secret = accounts.new_token("root", "ci", ttl=3600)
    assert token.expires == clock() + 3600
    clock.advance(3599)
    assert accounts.user_of_token(secret) is not None
    clock.advance(1)
    assert accounts.user_of_token(secret) is None
    assert [t.id for t in accounts.tokens("root")] == [token.id], "still listed, as expired"


def test_a_token_stops_while_its_user_is_disabled_and_goes_with_its_user(
    accounts: Accounts,
) -> None:
    accounts.add_user("bob", "operator", PASSWORD)
    _, secret = accounts.new_token("bob", "ci")
    accounts.set_disabled("bob", True)
    assert accounts.user_of_token(secret) is None
    accounts.set_disabled("bob", False)
    assert accounts.user_of_token(secret) == accounts.user("bob")
    accounts.remove_user("bob")
    assert accounts.user_of_token(secret) is None
    assert accounts.tokens() == []


def test_a_token_acts_with_its_users_role_now(accounts: Accounts) -> None:
    accounts.add_user("bob", "operator", PASSWORD)
    _, secret = accounts.new_token("bob", "ci")
    accounts.set_role("bob", "auditor")
    user = accounts.user_of_token(secret)
    assert user is not None
    assert not user.can("operator")


def test_only_the_sha256_of_a_token_secret_is_stored(accounts: Accounts, store) -> None:
    token, presented = accounts.new_token("root", "ci")
    secret = presented.removeprefix(f"gt_{token.id}_")
    assert len(secret) == 43
    record = store.get_token(token.id)
    assert record.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(record)


def test_a_token_records_its_last_use_at_most_once_a_minute(
    accounts: Accounts, clock: FakeClock
) -> None:
    _, secret = accounts.new_token("root", "ci")
    first = clock()
    accounts.user_of_token(secret)
    clock.advance(59)
    accounts.user_of_token(secret)
    assert accounts.tokens()[0].last_used == first, "no write within the minute"
    clock.advance(1)
    accounts.user_of_token(secret)
    assert accounts.tokens()[0].last_used == first + 60


def test_tokens_list_by_user_oldest_first(accounts: Accounts, clock: FakeClock) -> None:
    accounts.add_user("bob", "auditor", PASSWORD)
    a, _ = accounts.new_token("root", "a")
    clock.advance(1)
    b, _ = accounts.new_token("bob", "b")
    clock.advance(1)
    c, _ = accounts.new_token("root", "c")
    assert accounts.tokens() == [a, b, c]
    assert accounts.tokens("root") == [a, c]


@pytest.mark.parametrize(
    ("name", "ttl", "field"),
    [("", None, "name"), ("x" * 65, None, "name"), ("ci\x1b[2J", None, "name"),
     ("ci", 0, "ttl"), ("ci", -5, "ttl"), ("ci", float("nan"), "ttl"),
     ("ci", float("inf"), "ttl"), ("ci", 1e300, "ttl")],
)  # fmt: skip
def test_new_token_refuses_a_bad_name_or_ttl(
    accounts: Accounts, name: str, ttl: float | None, field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"^{field}: "):
        accounts.new_token("root", name, ttl)
    assert accounts.tokens() == []


@pytest.fixture
def a_real_token(accounts: Accounts) -> str:
    return accounts.new_token("root", "ci")[1]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(
    presented=st.text()
    | st.from_regex(r"gt_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", fullmatch=True)
    | st.from_regex(r"\Agt_[^_]*_.*", fullmatch=True),
    cut=st.integers(min_value=0, max_value=70),
    extra=st.text(max_size=3),
)
def test_any_text_presented_as_a_token_or_cookie_never_raises(
    accounts: Accounts, a_real_token: str, presented: str, cut: int, extra: str
) -> None:
    assert accounts.user_of_token(presented) is None
    assert accounts.session(presented) is None
    mangled = a_real_token[:cut] + extra + a_real_token[cut + len(extra) :]
    if mangled != a_real_token:
        assert accounts.user_of_token(mangled) is None


# -- sessions -------------------------------------------------------------------------------------


def test_a_session_lasts_until_it_expires_and_is_then_deleted(
    accounts: Accounts, store, clock: FakeClock
) -> None:
    cookie, session = accounts.new_session("root", ttl=600)
    assert session == Session("root", session.csrf, clock(), clock() + 600)
    assert accounts.session(cookie) == (accounts.user("root"), session)
    clock.advance(599)
    assert accounts.session(cookie) is not None
    clock.advance(1)
    assert accounts.session(cookie) is None
    assert store.get_session(hashlib.sha256(cookie.encode()).hexdigest()) is None


def test_a_session_lasts_twelve_hours_by_default(accounts: Accounts, clock: FakeClock) -> None:
    _, session = accounts.new_session("root")
    assert session.expires - session.created == 12 * 3600


def test_a_new_session_prunes_the_expired_ones(accounts: Accounts, store, clock) -> None:
    old, _ = accounts.new_session("root", ttl=60)
    clock.advance(61)
    accounts.new_session("root")
    assert store.get_session(hashlib.sha256(old.encode()).hexdigest()) is None


def test_only_the_sha256_of_a_cookie_is_stored_and_each_has_its_csrf(
    accounts: Accounts, store
) -> None:
    cookie, session = accounts.new_session("root")
    other, second = accounts.new_session("root")
    record = store.get_session(hashlib.sha256(cookie.encode()).hexdigest())
    assert record.user == "root"
    assert cookie not in repr(record)
    assert len({cookie, other, session.csrf, second.csrf}) == 4
    assert len(session.csrf) >= 43


def test_a_session_ends_with_logout_and_with_its_user_disabled_or_removed(
    accounts: Accounts,
) -> None:
    accounts.add_user("bob", "operator", PASSWORD)
    first, _ = accounts.new_session("bob")
    accounts.end_session(first)
    assert accounts.session(first) is None
    accounts.end_session(first)  # twice: nothing happens
    second, _ = accounts.new_session("bob")
    accounts.set_disabled("bob", True)
    assert accounts.session(second) is None
    with pytest.raises(InvalidInput, match="disabled"):
        accounts.new_session("bob")
    accounts.set_disabled("bob", False)
    assert accounts.session(second) is None, "disabling ended it for good"
    third, _ = accounts.new_session("bob")
    accounts.remove_user("bob")
    assert accounts.session(third) is None


def test_the_console_gives_accounts_on_its_store_and_clock(store, clock: FakeClock) -> None:
    accounts = Console(store, clock=clock).accounts()
    assert accounts.store is store
    assert accounts.clock is clock


class FullDiskStore(MemoryStore):
    """The in-memory store with the writes a check makes along the way failing, as SQLite's
    do on a full disk."""

    def touch_token(self, token_id: str, when: float) -> None:
        raise StoreError("store: database or disk is full")

    def delete_session(self, key_hash: str) -> bool:
        raise StoreError("store: database or disk is full")


def test_a_store_that_cannot_write_still_lets_credentials_be_checked(clock: FakeClock) -> None:
    accounts = Accounts(FullDiskStore(), clock)
    accounts.add_user("root", "admin", PASSWORD)
    _, secret = accounts.new_token("root", "ci")
    cookie, _ = accounts.new_session("root", ttl=60)
    assert accounts.user_of_token(secret) is not None, "its last use is not recorded, that's all"
    clock.advance(60)
    assert accounts.session(cookie) is None, "expired: refused, not an error"


def test_the_first_user_must_be_an_admin(
    store: SQLiteStore | MemoryStore, clock: FakeClock
) -> None:
    fresh = Accounts(store, clock)
    with pytest.raises(InvalidInput, match="role: the first user must be an admin, not operator"):
        fresh.add_user("bob", "operator", PASSWORD)
    assert fresh.users() == []
    fresh.add_user("root", "admin", PASSWORD)
    assert fresh.add_user("bob", "operator", PASSWORD).role == "operator"
