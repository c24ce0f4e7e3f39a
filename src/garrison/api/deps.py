"""What a route depends on: the console, and the user with the role it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from garrison.api.auth import allow
from garrison.auth import User
from garrison.console import Console
from garrison.runtime.base import ContainerRuntime


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def runtime_of(request: Request) -> ContainerRuntime:
    """The container runtime, for what must reach it (unblock); made per request."""
    factory = request.app.state.runtime_factory
    runtime: ContainerRuntime = factory()
    return runtime


Core = Annotated[Console, Depends(console_of)]
Reader = Annotated[User, Depends(allow("auditor"))]
Operator = Annotated[User, Depends(allow("operator"))]
Admin = Annotated[User, Depends(allow("admin"))]
