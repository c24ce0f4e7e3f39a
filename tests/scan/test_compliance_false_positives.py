"""Compliance false positives of issue 17, on documents captured from a private engine on this
machine (tests/scan/data/compliance_*): an image that passes its secrets as files
(``ENV POSTGRES_PASSWORD_FILE=/run/secrets/…``, USER 1000:1000, a HEALTHCHECK), the busybox
test image (no USER), and containers created from them with ``--user 1000``, ``--user app``,
``--user 0:0`` and no ``--user``.

A variable naming where a secret is kept is not a secret (GCIS-4.10); a container's own user
overrides its image's USER (GCIS-4.1), in ``scan container`` and in the gate's creates alike."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from garrison.scan.compliance import check_image
from garrison.scan.compliance.image import is_root
from garrison.scan.gate import Gate
from garrison.scan.rules import Policies, parse_policy
from garrison.scan.scanner import ContainerRef, ImageRef, Scanner, ScanParts, empty_inventory
from garrison.scan.types import ComplianceIssue, Finding, Inventory

DATA = Path(__file__).parent / "data"
BUSYBOX = "garrison-test/busybox:latest"
SECRET_FILES = "compliance-secret-files:1"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def image(name: str, prefix: str) -> ImageRef:
    inspect = load(f"compliance_{prefix}_inspect.json")
    return ImageRef(inspect["Id"], name, inspect, load(f"compliance_{prefix}_history.json"))


IMAGES = {BUSYBOX: image(BUSYBOX, "busybox"), SECRET_FILES: image(SECRET_FILES, "secret_files")}


def user_check(issues: list[ComplianceIssue] | tuple[ComplianceIssue, ...]) -> list[str]:
    return [issue.detail for issue in issues if issue.check_id == "GCIS-4.1"]


# -- GCIS-4.10: secrets in environment variables -----------------------------------------------


def test_secret_files_in_a_real_image_are_references_and_the_secret_beside_them_is_not() -> None:
    ref = IMAGES[SECRET_FILES]
    issues = check_image(ref.inspect, ref.history)
    # POSTGRES_PASSWORD_FILE, API_TOKEN_PATH, TLS_PRIVATE_KEY_PATH and SECRETS_DIR say where
    # the secrets are; SESSION_SECRET is one.
    assert [(i.check_id, i.detail) for i in issues] == [
        ("GCIS-4.10", "secrets in environment variables: SESSION_SECRET")
    ]


@pytest.mark.parametrize(
    ("variable", "secret"),
    [
        ("POSTGRES_PASSWORD_FILE=/run/secrets/db", False),
        ("GITHUB_TOKEN_PATH=/etc/gh/token", False),
        ("SECRET_DIR=/run/secrets", False),
        ("db_password_file=/run/secrets/db", False),  # names are matched in any case
        ("PASSWORD=hunter2", True),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
        ("PASSWORD_FILE=hunter2", True),  # not a path: the password itself
        ("API_TOKEN_PATH=secrets/token", True),  # not an absolute path
        ("TOKEN_FILE_BACKUP=/run/secrets/token", True),  # does not end in _FILE
        ("CERT_FILE=-----BEGIN RSA PRIVATE KEY-----", True),  # a key, whatever the name
        ("PASSWORD_FILE=", False),  # empty: nothing is there, as before
    ],
)
def test_a_reference_is_a_secret_name_ending_in_file_path_or_dir_with_an_absolute_path(
    variable: str, secret: bool
) -> None:
    issues = check_image({"Config": {"User": "1000", "Env": [variable]}})
    flagged = [i.detail for i in issues if i.check_id == "GCIS-4.10"]
    name = variable.partition("=")[0]
    assert flagged == ([f"secrets in environment variables: {name}"] if secret else [])


# -- GCIS-4.1: who the container runs as --------------------------------------------------------


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "00", "+0", ":1000", "root:app"])
def test_users_runc_runs_as_uid_0_are_root(user: str) -> None:
    assert is_root(user)


@pytest.mark.parametrize("user", ["1000", "1000:1000", "app", "app:root", "1000:0", "10"])
def test_other_users_are_not_root(user: str) -> None:
    assert not is_root(user)


def scanner_for(container: str, image_name: str) -> Scanner:
    """A scanner whose one container is the captured ``container``, of ``image_name``."""
    inspect = load(f"compliance_container_{container}_inspect.json")
    ref = ContainerRef(inspect["Id"], inspect["Name"].lstrip("/"), inspect, IMAGES[image_name])
    return Scanner(
        ScanParts(IMAGES.__getitem__, empty_inventory, lambda _inv: [], container=lambda _r: ref)
    )


@pytest.mark.parametrize(
    ("container", "image_name", "expected"),
    [
        ("user_1000", BUSYBOX, []),  # the false positive: the image has no USER
        ("user_app", BUSYBOX, []),
        ("user_root", SECRET_FILES, ["the container runs as 0:0"]),  # its image's is 1000:1000
        ("user_inherited", SECRET_FILES, []),  # inspect holds the image's 1000:1000
    ],
)
def test_scan_container_judges_gcis_4_1_on_the_containers_user(
    container: str, image_name: str, expected: list[str]
) -> None:
    check = scanner_for(container, image_name).check_container("any")
    assert user_check(check.issues) == expected


def test_scan_container_without_a_user_keeps_its_images_verdict() -> None:
    # Created with no --user from busybox (no USER): root, as the image says.
    inspect = load("gate_container_priv_inspect.json")
    assert inspect["Config"]["User"] == ""
    ref = ContainerRef(inspect["Id"], "priv", inspect, IMAGES[BUSYBOX])
    parts = ScanParts(IMAGES.__getitem__, empty_inventory, lambda _i: [], container=lambda _r: ref)
    assert user_check(Scanner(parts).check_container("priv").issues) == ["USER is not set"]


def test_the_other_image_checks_still_hold_for_a_container() -> None:
    check = scanner_for("user_root", SECRET_FILES).check_container("any")
    image_ids = [i.check_id for i in check.issues if i.target == "image"]
    assert image_ids == ["GCIS-4.1", "GCIS-4.10"]


# -- the gate: containers/create ----------------------------------------------------------------


def create(body: dict[str, Any]) -> bytes:
    doc = {
        "RequestMethod": "POST",
        "RequestUri": "/v1.41/containers/create?name=web",
        "RequestHeaders": {},
        "RequestBody": base64.b64encode(json.dumps(body).encode()).decode(),
    }
    return json.dumps(doc).encode()


def captured_create() -> dict[str, Any]:
    """``docker create --user 1000 … garrison-test/busybox`` as dockerd sent it to the plugin."""
    raw = load("gate_authz_create_compliant.json")["RequestBody"]
    body: dict[str, Any] = json.loads(base64.b64decode(raw))
    assert (body["User"], body["Image"]) == ("1000", BUSYBOX)
    return body


def gate(vulnerability_effect: str) -> Gate:
    """A gate that blocks GCIS-4.1 only. ``ignore``: the image is checked on its own; ``alert``:
    its checks come with its (cached) scan."""

    def no_findings(_inventory: Inventory) -> list[Finding]:
        return []

    scanner = Scanner(ScanParts(IMAGES.__getitem__, empty_inventory, no_findings))
    vulnerability = parse_policy("vulnerability", [{"name": "v", "effect": vulnerability_effect}])
    compliance = parse_policy("compliance", [{"name": "non-root", "checks": {"4.1": "block"}}])
    policies = Policies(vulnerability, compliance)  # type: ignore[arg-type]
    return Gate(scanner, lambda: policies, hostname="h")


REFUSED_AS_ROOT = (
    "[Garrison] Container operation blocked by policy: non-root, violates 1 compliance check: "
    "GCIS-4.1 Image runs as root"
)


@pytest.mark.parametrize("effect", ["ignore", "alert"])
def test_gate_allows_a_create_with_a_non_root_user_from_an_image_without_user(
    effect: str,
) -> None:
    assert gate(effect).authorize(create(captured_create())).allow


@pytest.mark.parametrize("effect", ["ignore", "alert"])
@pytest.mark.parametrize(
    "user",
    [
        {"User": "0:0"},
        {"User": "root"},
        {"User": "1000", "user": "0"},  # dockerd reads the later key, in any case: root
    ],
    ids=["0:0", "root", "a later key"],
)
def test_gate_refuses_a_create_run_as_root_from_an_image_with_a_user(
    effect: str, user: dict[str, str]
) -> None:
    body = {key: value for key, value in captured_create().items() if key != "User"}
    reply = gate(effect).authorize(create({**body, "Image": SECRET_FILES, **user}))
    assert (reply.allow, reply.msg) == (False, REFUSED_AS_ROOT)


def test_gate_still_refuses_a_create_without_user_from_an_image_without_user() -> None:
    body = {key: value for key, value in captured_create().items() if key != "User"}
    reply = gate("ignore").authorize(create(body))
    assert (reply.allow, reply.msg) == (False, REFUSED_AS_ROOT)
