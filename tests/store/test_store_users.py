"""Users, API tokens and sessions in the store, on the real SQLite file and on the in-memory
fake alike: one user per name even for processes racing, a user deleted with its tokens and
sessions in one transaction, the last enabled admin kept (also against two processes
demoting each other at once), expired sessions pruned; and a store made before these tables
gets them when it is opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from garrison.errors import InvalidInput, NotFound
from garrison.store import SQLiteStore
from garrison.store.base import SessionRecord, TokenRecord, UserRecord

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"  # a stand-in: the store never reads it


def user(name: str, role: str = "admin", disabled: bool = False) -> UserRecord:
    return UserRecord(name, role, HASH, 1000.0, disabled)


def token(token_id: str, owner: str, created: float = 1000.0) -> TokenRecord:
    return TokenRecord(token_id, owner, "ci", "ab" * 32, created, None, None)


def session(key: str, owner: str, expires: float = 2000.0) -> SessionRecord:
    return SessionRecord(key, owner, "csrf-" + key, 1000.0, expires)


def test_users_round_trip_listed_by_name(store) -> None:
    for record in (user("zed", "auditor"), user("amy"), user("mo", "operator", disabled=True)):
        store.add_user(record)
    assert store.get_user("mo") == user("mo", "operator", disabled=True)
    assert store.get_user("nobody") is None
    assert [u.name for u in store.list_users()] == ["amy", "mo", "zed"]


def test_a_second_user_of_one_name_is_refused_keeping_the_first(store) -> None:
    store.add_user(user("amy"))
    with pytest.raises(InvalidInput, match=r"^name: a user named 'amy' exists"):
        store.add_user(user("amy", "auditor"))
    assert store.list_users() == [user("amy")]


def test_update_user_changes_what_is_given_and_says_whether_it_exists(store) -> None:
    store.add_user(user("amy"))
    store.add_user(user("bob", "auditor"))
    assert store.update_user("bob", role="operator")
    assert store.update_user("bob", password_hash="new")
    assert store.update_user("bob", disabled=True)
    assert store.get_user("bob") == UserRecord("bob", "operator", "new", 1000.0, True)
    assert store.update_user("bob")
    assert not store.update_user("nobody", role="auditor")
    assert not store.update_user("nobody")


def test_the_last_enabled_admin_is_kept_and_a_refusal_changes_nothing(store) -> None:
    store.add_user(user("amy"))
    store.add_user(user("bob", "operator"))
    store.add_token(token("t1", "amy"))
    store.add_session(session("s1", "amy"))
    for change in (
        lambda: store.update_user("amy", role="operator"),
        lambda: store.update_user("amy", disabled=True),
        lambda: store.delete_user("amy"),
    ):
        with pytest.raises(InvalidInput, match="last enabled admin"):
            change()
    assert store.get_user("amy") == user("amy")
    assert [t.id for t in store.list_tokens("amy")] == ["t1"], "rolled back with the refusal"
    assert store.get_session("s1") is not None
    assert store.update_user("amy", password_hash="new"), "a password change is no demotion"
    assert store.update_user("bob", disabled=True), "nor is a change to someone else"
    assert store.delete_user("bob")


def test_deleting_a_user_takes_its_tokens_and_sessions_and_no_one_elses(store) -> None:
    store.add_user(user("amy"))
    store.add_user(user("bob", "operator"))
    for owner in ("amy", "bob"):
        store.add_token(token(f"t-{owner}", owner))
        store.add_session(session(f"s-{owner}", owner))
    assert store.delete_user("bob")
    assert not store.delete_user("bob")
    assert [t.id for t in store.list_tokens(None)] == ["t-amy"]
    assert store.get_session("s-bob") is None
    assert store.get_session("s-amy") is not None


def test_tokens_listed_oldest_first_touched_and_deleted(store) -> None:
    store.add_user(user("amy"))
    store.add_user(user("bob", "operator"))
    store.add_token(token("t2", "amy", created=1002.0))
    store.add_token(token("t1", "bob", created=1001.0))
    store.add_token(token("t3", "amy", created=1003.0))
    assert [t.id for t in store.list_tokens(None)] == ["t1", "t2", "t3"]
    assert [t.id for t in store.list_tokens("amy")] == ["t2", "t3"]
    assert store.list_tokens("nobody") == []
    store.touch_token("t2", 1500.0)
    assert store.get_token("t2") == TokenRecord("t2", "amy", "ci", "ab" * 32, 1002.0, None, 1500.0)
    store.touch_token("gone", 1500.0)  # nothing to record: nothing happens
    assert store.delete_token("t2")
    assert not store.delete_token("t2")
    assert store.get_token("t2") is None


def test_a_token_or_session_for_no_user_and_a_token_id_twice_are_refused(store) -> None:
    store.add_user(user("amy"))
    with pytest.raises(NotFound):
        store.add_token(token("t1", "nobody"))
    with pytest.raises(NotFound):
        store.add_session(session("s1", "nobody"))
    assert store.list_tokens(None) == []
    assert store.get_session("s1") is None
    store.add_token(token("t1", "amy"))
    with pytest.raises(InvalidInput):
        store.add_token(token("t1", "amy", created=5.0))
    assert store.get_token("t1") == token("t1", "amy")


def test_sessions_are_pruned_when_expired_and_ended_by_user(store) -> None:
    store.add_user(user("amy"))
    store.add_user(user("bob", "operator"))
    store.add_session(session("old", "amy", expires=1500.0))
    store.add_session(session("new", "amy", expires=3000.0))
    store.add_session(session("bob1", "bob"))
    store.add_session(session("bob2", "bob"))
    assert store.get_session("old") == session("old", "amy", expires=1500.0)
    assert store.prune_sessions(1499.0) == 0
    assert store.prune_sessions(1500.0) == 1
    assert store.get_session("old") is None
    assert store.delete_sessions_of("bob") == 2
    assert store.delete_sessions_of("bob") == 0
    assert store.delete_session("new")
    assert not store.delete_session("new")


# -- SQLite across processes ------------------------------------------------------------------

RACER = """
import sys, time
from pathlib import Path
from garrison.errors import InvalidInput
from garrison.store import SQLiteStore
from garrison.store.base import UserRecord
store = SQLiteStore.in_dir(sys.argv[1])
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
try:
    if sys.argv[3] == "add":
        store.add_user(UserRecord(sys.argv[4], "admin", sys.argv[5], 1000.0))
    elif sys.argv[3] == "demote":
        store.update_user(sys.argv[4], role="operator")
    else:
        store.delete_user(sys.argv[4])
    print("done")
except InvalidInput as exc:
    print("refused", exc)
store.close()
"""


def race(folder: Path, *commands: list[str]) -> list[str]:
    """Run each command in its own process, all let go at once; what each printed."""
    go = folder / "go"
    go.unlink(missing_ok=True)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER, str(folder), str(go), *command], **pipes)
        for command in commands
    ]
    go.touch()
    ran = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in ran]
    return [out.split(" ", 1)[0].strip() for out, _ in ran]


def test_processes_racing_to_add_one_name_leave_one_user(tmp_path: Path) -> None:
    SQLiteStore.in_dir(tmp_path).close()
    for round_ in range(3):
        name = f"admin{round_}"
        outcomes = race(tmp_path, *(["add", name, f"hash-{n}"] for n in range(4)))
        assert sorted(outcomes) == ["done", "refused", "refused", "refused"]
        store = SQLiteStore.in_dir(tmp_path)
        winner = outcomes.index("done")
        assert store.get_user(name).password_hash == f"hash-{winner}", "the winner's, whole"
        store.close()


@pytest.mark.parametrize("change", ["demote", "delete"])
def test_two_admins_removing_each_other_at_once_leave_one(tmp_path: Path, change: str) -> None:
    """Check-then-write in the store would let both succeed: none would be left."""
    for round_ in range(3):
        folder = tmp_path / f"round-{round_}"
        folder.mkdir()
        store = SQLiteStore.in_dir(folder)
        store.add_user(user("amy"))
        store.add_user(user("bob"))
        store.close()
        outcomes = race(folder, [change, "amy"], [change, "bob"])
        assert sorted(outcomes) == ["done", "refused"]
        store = SQLiteStore.in_dir(folder)
        admins = [u.name for u in store.list_users() if u.role == "admin"]
        store.close()
        assert admins == [["amy", "bob"][outcomes.index("refused")]]
