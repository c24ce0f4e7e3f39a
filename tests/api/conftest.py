"""The REST API in process (its ASGI app, the real one), on a real SQLite store, with one
user and one token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from garrison.api import create_app
from garrison.console import Console
from garrison.runtime.fake import FakeRuntime

PASSWORD = "correct horse battery"


@dataclass
class Api:
    app: FastAPI
    console: Console
    runtime: FakeRuntime
    tokens: dict[str, str]  # role → its user's token

    def client(self, role: str | None = None) -> TestClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return TestClient(self.app, headers=headers, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One per test module: a user costs an argon2 hash (64 MiB, three passes)."""
    console = Console.open(tmp_path_factory.mktemp("api") / "data")
    runtime = FakeRuntime()
    accounts = console.accounts()
    tokens = {}
    for role in ("admin", "operator", "auditor"):
        accounts.add_user(f"{role}-1", role, PASSWORD)
        tokens[role] = accounts.new_token(f"{role}-1", "tests")[1]
    try:
        yield Api(create_app(console, lambda: runtime), console, runtime, tokens)
    finally:
        console.close()
