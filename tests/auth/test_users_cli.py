"""``garrison users …`` as an administrator runs it, on a real data directory: passwords from
standard input, a token's secret printed once, no hash or secret in any listing, and each
mistake refused in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from garrison.auth import Accounts
from garrison.store import SQLiteStore

PASSWORD = "correct horse battery"
OTHER = "staple tangerine cloud"


def garrison(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    wide = os.environ | {"COLUMNS": "250", "NO_COLOR": "1"}
    command = [sys.executable, "-m", "garrison", "users", *args, "--data-dir", str(data_dir)]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=120, env=wide, check=False
    )


def ok(data_dir: Path, *args: str, stdin: str = "") -> str:
    ran = garrison(data_dir, *args, stdin=stdin)
    assert ran.returncode == 0, ran.stderr
    assert "$argon2" not in ran.stdout + ran.stderr
    return ran.stdout


def refused(data_dir: Path, *args: str, stdin: str = "") -> str:
    """Exit status 1 and one line on stderr, no traceback; the line."""
    ran = garrison(data_dir, *args, stdin=stdin)
    assert ran.returncode == 1, ran
    assert "Traceback" not in ran.stdout + ran.stderr
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("garrison: "), lines
    return lines[0]


def accounts_in(data_dir: Path) -> Accounts:
    return Accounts(SQLiteStore.in_dir(data_dir))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with the admin "alice", added as a user would."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    ok(folder, "add", "alice", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    return folder


def test_users_added_with_a_password_from_stdin_log_in_and_list_without_hashes(
    data_dir: Path,
) -> None:
    said = ok(data_dir, "add", "bob", "--role", "operator", "--password-stdin",
              stdin=OTHER + "\r\n")  # fmt: skip
    assert "user bob added, role operator" in said
    listed = ok(data_dir, "list")
    assert re.search(r"alice\W+admin\W+enabled", listed)
    assert re.search(r"bob\W+operator\W+enabled", listed)
    docs = json.loads(ok(data_dir, "list", "--json"))
    assert [(d["name"], d["role"], d["disabled"]) for d in docs] == [
        ("alice", "admin", False), ("bob", "operator", False),
    ]  # fmt: skip
    assert set(docs[0]) == {"name", "role", "created", "disabled"}
    accounts = accounts_in(data_dir)
    assert accounts.login("alice", PASSWORD) is not None
    assert accounts.login("bob", OTHER) is not None, "the line ending is not part of it"
    assert accounts.store.get_user("bob").password_hash.startswith("$argon2id$")
    accounts.store.close()


def test_a_token_secret_is_printed_once_and_works_until_revoked(data_dir: Path) -> None:
    made = ok(data_dir, "token", "create", "alice", "--name", "ci", "--ttl", "90d")
    secret, *rest = made.splitlines()
    assert re.fullmatch(r"gt_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", secret)
    assert "not shown again" in " ".join(rest)
    accounts = accounts_in(data_dir)
    try:
        user = accounts.user_of_token(secret)
        assert user is not None
        assert user.name == "alice"
        (token,) = accounts.tokens()
        assert token.expires == pytest.approx(time.time() + 90 * 86400, abs=120)
        listed = ok(data_dir, "token", "list") + ok(data_dir, "token", "list", "--json")
        assert token.id in listed
        assert secret not in listed
        assert secret.split("_", 2)[2] not in listed
        (doc,) = json.loads(ok(data_dir, "token", "list", "--user", "alice", "--json"))
        assert set(doc) == {"id", "user", "name", "created", "expires", "lastUsed"}
        assert "revoked" in ok(data_dir, "token", "revoke", token.id)
        assert accounts.user_of_token(secret) is None
    finally:
        accounts.store.close()


def test_passwd_role_disable_enable_and_remove(data_dir: Path) -> None:
    ok(data_dir, "add", "bob", "--role", "auditor", "--password-stdin", stdin=PASSWORD)
    assert "sessions ended" in ok(data_dir, "passwd", "bob", "--password-stdin", stdin=OTHER)
    assert "bob is now operator" in ok(data_dir, "role", "bob", "operator")
    ok(data_dir, "disable", "bob")
    assert json.loads(ok(data_dir, "list", "--json"))[1]["disabled"] is True
    accounts = accounts_in(data_dir)
    try:
        assert accounts.login("bob", OTHER) is None, "disabled"
        ok(data_dir, "enable", "bob")
        assert accounts.login("bob", PASSWORD) is None
        user = accounts.login("bob", OTHER)
        assert user is not None
        assert user.role == "operator"
        ok(data_dir, "remove", "bob")
        assert [u.name for u in accounts.users()] == ["alice"]
    finally:
        accounts.store.close()


def test_each_mistake_is_refused_in_one_line(data_dir: Path) -> None:
    cases = [
        (("add", "bob", "--role", "operator", "--password-stdin"), "short\n", "password: at least"),
        (("add", "Bob", "--role", "operator", "--password-stdin"), PASSWORD, "name: lower-case"),
        (("add", "bob", "--role", "root", "--password-stdin"), PASSWORD, "role: must be one of"),
        (("add", "alice", "--role", "admin", "--password-stdin"), PASSWORD, "exists"),
        (("passwd", "nobody", "--password-stdin"), PASSWORD, "no such user"),
        (("remove", "alice"), "", "last enabled admin"),
        (("role", "alice", "auditor"), "", "last enabled admin"),
        (("disable", "alice"), "", "last enabled admin"),
        (("token", "create", "alice", "--name", "ci", "--ttl", "90x"), "", "ttl: not a duration"),
        (("token", "create", "nobody", "--name", "ci"), "", "no such user"),
        (("token", "revoke", "aaaaaaaaaaaa"), "", "no such token"),
        (("token", "list", "--user", "nobody"), "", "no such user"),
    ]
    for args, stdin, needle in cases:
        assert needle in refused(data_dir, *args, stdin=stdin), args
    assert [d["name"] for d in json.loads(ok(data_dir, "list", "--json"))] == ["alice"]
