"""Compliance checks with stable IDs mapped to the CIS Docker Benchmark.

Pure functions over the dicts Docker gives: a ``containers/create`` request body or a
``docker inspect`` of a container, an image inspect with its history, an exec request body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from garrison.scan.compliance.catalog import CheckInfo, run_checks
from garrison.scan.compliance.container import CONTAINER_CHECKS, EXEC_CHECKS, ExecRequest
from garrison.scan.compliance.image import IMAGE_CHECKS, ImageFacts, with_container_user
from garrison.scan.compliance.spec import ContainerSpec, Mount
from garrison.scan.compliance.users import PasswdReader, exec_uid, no_passwd
from garrison.scan.types import ComplianceIssue

_INFOS: list[CheckInfo] = [
    *(c.info for c in CONTAINER_CHECKS),
    *(c.info for c in EXEC_CHECKS),
    *(c.info for c in IMAGE_CHECKS),
]
CATALOG: dict[str, CheckInfo] = {i.check_id: i for i in _INFOS}


def check_container(doc: Mapping[str, Any]) -> list[ComplianceIssue]:
    """Issues of a container: ``doc`` is a create request body or a container inspect."""
    return run_checks(CONTAINER_CHECKS, ContainerSpec.from_any(doc))


def check_image(inspect: Mapping[str, Any], history: Sequence[Any] = ()) -> list[ComplianceIssue]:
    """Issues of an image, from its inspect and (for ADD) its history."""
    return run_checks(IMAGE_CHECKS, ImageFacts.from_docker(inspect, history))


def check_image_for_container(
    doc: Mapping[str, Any], image_issues: Sequence[ComplianceIssue]
) -> list[ComplianceIssue]:
    """The image's issues as they hold for one container of it (``doc``: a create request
    body or a container inspect): the container's ``User`` (``--user``) overrides the image's
    USER, so ``GCIS-4.1`` is judged on it — run as ``1000`` or ``app`` it passes, as ``root``,
    ``0`` or ``0:0`` it fails, whatever the image says."""
    return with_container_user(image_issues, ContainerSpec.from_any(doc).user())


def check_exec(body: Mapping[str, Any], passwd: PasswdReader = no_passwd) -> list[ComplianceIssue]:
    """Issues of a ``containers/{id}/exec`` request body (privileged exec, exec as root): its
    ``User`` is resolved as runc resolves it, names through ``passwd`` (the container's
    ``/etc/passwd``; without one only ``root`` is known)."""
    body = body if isinstance(body, Mapping) else {}
    uid = exec_uid(str(body.get("User") or ""), passwd)
    return run_checks(EXEC_CHECKS, ExecRequest(body, uid))


def resolve_check_id(text: str) -> str:
    """``GCIS-5.4``, ``gcis-5.4`` and the bare CIS number ``5.4`` name the same check."""
    key = text.strip().upper()
    check_id = key if key.startswith("GCIS-") else f"GCIS-{key}"
    if check_id not in CATALOG:
        raise KeyError(text)
    return check_id


__all__ = [
    "CATALOG",
    "CheckInfo",
    "ContainerSpec",
    "ImageFacts",
    "Mount",
    "PasswdReader",
    "check_container",
    "check_exec",
    "check_image",
    "check_image_for_container",
    "resolve_check_id",
]
