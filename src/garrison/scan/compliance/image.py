"""Image checks (CIS Docker Benchmark v1.6, section 4) over ``docker image inspect`` and
``docker history``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from garrison.scan.compliance.catalog import Check, info
from garrison.scan.types import Severity

ROOT_USERS = frozenset({"", "root", "0"})
SECRET_NAME = re.compile(
    r"(PASSW(OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH_KEY)",
    re.IGNORECASE,
)
# Values that are secrets whatever their variable is called: AWS access key ids, PEM keys,
# GitHub and Slack tokens (the prefixes their vendors document).
SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|gh[pousr]_[A-Za-z0-9]{36}|xox[abpr]-)"
)
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


def _runs_as_root(facts: ImageFacts) -> str | None:
    user = str(facts.config.get("User") or "")
    return f"USER is {user or 'not set'}" if user.partition(":")[0] in ROOT_USERS else None


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


def _secrets_in_env(facts: ImageFacts) -> str | None:
    names = [n for n, v in facts.env() if v and (SECRET_NAME.search(n) or SECRET_VALUE.search(v))]
    return f"secrets in environment variables: {', '.join(names)}" if names else None


IMAGE_CHECKS: tuple[Check[ImageFacts], ...] = (
    Check(info("4.1", "Image runs as root", Severity.HIGH,
               "Add a USER instruction with a non-root user.", "image"), _runs_as_root),
    Check(info("4.6", "No HEALTHCHECK instruction", Severity.LOW,
               "Add a HEALTHCHECK instruction.", "image"), _no_healthcheck),
    Check(info("4.9", "ADD instruction in history", Severity.LOW,
               "Use COPY instead of ADD.", "image"), _add_instruction),
    Check(info("4.10", "Secrets in environment variables", Severity.HIGH,
               "Pass secrets at run time (a secret store or mounted file), not with ENV.",
               "image"), _secrets_in_env),
)  # fmt: skip
