"""Image checks (CIS Docker Benchmark v1.6, section 4) over ``docker image inspect`` and
``docker history``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from garrison.scan.compliance.catalog import Check, info
from garrison.scan.compliance.users import ROOT, go_atoi
from garrison.scan.types import ComplianceIssue, Severity

SECRET_NAME = re.compile(
    r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH_KEY)",
    re.IGNORECASE,
)
# Values that are secrets whatever their variable is called: AWS access key ids, PEM keys,
# GitHub and Slack tokens (the prefixes their vendors document).
SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{36}|xox[abpr]-)"
)
# A variable that says where a secret is kept, not what it is: Docker's official images read
# POSTGRES_PASSWORD_FILE=/run/secrets/… (their documented way to pass a Docker secret), and
# _PATH and _DIR name files and folders the same way. Such a name with an absolute path is a
# reference; with any other value it may be the secret itself.
REFERENCE_NAME = re.compile(r"_(FILE|PATH|DIR)$", re.IGNORECASE)
# The classic builder records `ADD file:<digest> in /` for the base image's root file system:
# that is how every base image is made, not a Dockerfile choice the user can change.
ADD_INSTRUCTION = re.compile(r"(#\(nop\)\s+|^)ADD\s+(?P<args>.*)$", re.DOTALL)
BASE_ROOTFS_ADD = re.compile(r"^(file|dir):[0-9a-f]+ in /\s*$")


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the image checks read: the inspect's ``Config`` and the history entries."""

    config: Mapping[str, Any]
    history: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    @classmethod
    def from_docker(cls, inspect: Mapping[str, Any], history: Sequence[Any] = ()) -> ImageFacts:
        config = inspect.get("Config") if isinstance(inspect, Mapping) else None
        entries = [h for h in history if isinstance(h, Mapping)]
        return cls(config if isinstance(config, Mapping) else {}, tuple(entries))

    def env(self) -> list[tuple[str, str]]:
        pairs = []
        for item in self.config.get("Env") or []:
            name, _, value = str(item).partition("=")
            pairs.append((name, value))
        return pairs


def is_root(user: str) -> bool:
    """Whether ``USER`` (or ``--user``) runs as uid 0, as runc reads it without a passwd file:
    unset, an empty user with a group (``:1000``), ``root``, or a number Go reads as 0 (``0``,
    ``00:0``). Any other name counts as not root (the image's passwd is not at hand)."""
    name = user.partition(":")[0]
    return name in ("", "root") or go_atoi(name) == ROOT


def _runs_as_root(facts: ImageFacts) -> str | None:
    user = str(facts.config.get("User") or "")
    return f"USER is {user or 'not set'}" if is_root(user) else None


def _no_healthcheck(facts: ImageFacts) -> str | None:
    check = facts.config.get("Healthcheck")
    test = check.get("Test") if isinstance(check, Mapping) else None
    return "no HEALTHCHECK" if not test or list(test) == ["NONE"] else None


def _add_instruction(facts: ImageFacts) -> str | None:
    for entry in facts.history:
        match = ADD_INSTRUCTION.search(str(entry.get("CreatedBy", "")).strip())
        if match and not BASE_ROOTFS_ADD.match(match["args"]):
            return f"history: {' '.join(match[0].split())[:120]}"
    return None


def _is_secret(name: str, value: str) -> bool:
    if not value:
        return False
    if SECRET_VALUE.search(value):
        return True  # a secret wherever it is
    reference = REFERENCE_NAME.search(name) is not None and value.startswith("/")
    return SECRET_NAME.search(name) is not None and not reference


def _secrets_in_env(facts: ImageFacts) -> str | None:
    names = [name for name, value in facts.env() if _is_secret(name, value)]
    return f"secrets in environment variables: {', '.join(names)}" if names else None


RUNS_AS_ROOT = info("4.1", "Image runs as root", Severity.HIGH,
                    "Add a USER instruction with a non-root user.", "image")  # fmt: skip
IMAGE_CHECKS: tuple[Check[ImageFacts], ...] = (
    Check(RUNS_AS_ROOT, _runs_as_root),
    Check(info("4.6", "No HEALTHCHECK instruction", Severity.LOW,
               "Add a HEALTHCHECK instruction.", "image"), _no_healthcheck),
    Check(info("4.9", "ADD instruction in history", Severity.LOW,
               "Use COPY instead of ADD.", "image"), _add_instruction),
    Check(info("4.10", "Secrets in environment variables", Severity.HIGH,
               "Pass secrets at run time (a secret store or mounted file), not with ENV.",
               "image"), _secrets_in_env),
)  # fmt: skip


def with_container_user(issues: Sequence[ComplianceIssue], user: str) -> list[ComplianceIssue]:
    """An image's ``issues`` as they hold for a container of it that runs as ``user`` (its
    ``User``: ``docker create --user``; "" when it has none). dockerd gives a container the
    image's USER only when it has none of its own, so a container's user overrides it and
    GCIS-4.1 is judged on that user instead."""
    if not user:
        return list(issues)
    others = [issue for issue in issues if issue.check_id != RUNS_AS_ROOT.check_id]
    if not is_root(user):
        return others
    # GCIS-4.1 comes first among the image checks, as run_checks orders them.
    return [RUNS_AS_ROOT.issue(f"the container runs as {user}"), *others]
