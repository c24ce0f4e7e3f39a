"""``/api/v1/users`` and ``/api/v1/tokens``: who may use the console (admins only), and
each user's own API tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from garrison.api.auth import accounts_of
from garrison.api.deps import Admin, Reader
from garrison.auth import Role

router = APIRouter(tags=["users"])
MAX_TTL = 5 * 365 * 86400.0


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    role: Role
    password: str = Field(min_length=12, max_length=1024)


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    ttl: float | None = Field(None, gt=0, le=MAX_TTL, description="Seconds it lives; none: ever")


@router.get("/api/v1/users/me")
def me(user: Reader) -> dict[str, Any]:
    """Who the credentials of this request belong to."""
    return user.to_json()


@router.get("/api/v1/users")
def users(request: Request, _: Admin) -> list[dict[str, Any]]:
    return [u.to_json() for u in accounts_of(request).users()]


@router.post("/api/v1/users", status_code=201)
def add_user(request: Request, _: Admin, body: NewUser) -> dict[str, Any]:
    return accounts_of(request).add_user(body.name, body.role, body.password).to_json()


@router.delete("/api/v1/users/{name}", status_code=204)
def remove_user(request: Request, _: Admin, name: str) -> None:
    accounts_of(request).remove_user(name)


@router.get("/api/v1/tokens")
def tokens(request: Request, user: Reader) -> list[dict[str, Any]]:
    """Your tokens; an admin sees everyone's."""
    owner = None if user.can("admin") else user.name
    return [t.to_json() for t in accounts_of(request).tokens(owner)]


@router.post("/api/v1/tokens", status_code=201)
def new_token(request: Request, user: Reader, body: NewToken) -> dict[str, Any]:
    """A token for yourself; its secret is in this answer only."""
    token, secret = accounts_of(request).new_token(user.name, body.name, body.ttl)
    return {**token.to_json(), "secret": secret}


@router.delete("/api/v1/tokens/{token_id}", status_code=204)
def revoke_token(request: Request, user: Reader, token_id: str) -> None:
    """Revoke one of your tokens (an admin: anyone's)."""
    accounts = accounts_of(request)
    if not user.can("admin") and token_id not in {t.id for t in accounts.tokens(user.name)}:
        raise HTTPException(404, f"no token {token_id} of yours")
    accounts.revoke_token(token_id)
