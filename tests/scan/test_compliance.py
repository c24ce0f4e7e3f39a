"""Compliance checks over real Docker documents captured on this machine (tests/scan/data/gate_*):
``docker inspect`` of containers and images, image history, and the create/exec request
bodies dockerd forwarded to the authorization plugin."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from garrison.errors import InvalidInput
from garrison.scan.compliance import (
    CATALOG,
    check_container,
    check_exec,
    check_image,
    resolve_check_id,
)
from garrison.scan.types import Severity

DATA = Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def request_body(name: str) -> dict[str, Any]:
    """The create/exec body of a captured AuthZReq message (base64, as dockerd sends it)."""
    return json.loads(base64.b64decode(load(name)["RequestBody"]))


def ids(issues: list[Any]) -> list[str]:
    return [issue.check_id for issue in issues]


PRIVILEGED_INSPECT = [
    "GCIS-5.3", "GCIS-5.4", "GCIS-5.5", "GCIS-5.7", "GCIS-5.9", "GCIS-5.10", "GCIS-5.12",
    "GCIS-5.15", "GCIS-5.16", "GCIS-5.17", "GCIS-5.20", "GCIS-5.21", "GCIS-5.25", "GCIS-5.28",
    "GCIS-5.31",
]  # fmt: skip


def test_inspect_of_a_dangerous_container_fails_every_matching_check() -> None:
    issues = check_container(load("gate_container_priv_inspect.json"))
    assert ids(issues) == PRIVILEGED_INSPECT
    by_id = {issue.check_id: issue for issue in issues}
    assert by_id["GCIS-5.4"].severity is Severity.CRITICAL
    assert by_id["GCIS-5.31"].detail == "runtime socket mounted: /var/run/docker.sock"
    assert by_id["GCIS-5.5"].detail == "host paths mounted: /:/host"
    # inspect writes CAP_SYS_ADMIN, CAP_NET_RAW; NET_RAW is in Docker's default set anyway
    assert by_id["GCIS-5.3"].detail == "capabilities added: SYS_ADMIN"


def test_inspect_of_a_hardened_container_passes() -> None:
    assert check_container(load("gate_container_good_inspect.json")) == []


def test_create_body_and_inspect_of_the_same_options_give_the_same_checks() -> None:
    # gate_authz_create_privileged: docker create --privileged --pid host --network host
    #   -v /:/host -v /var/run/docker.sock:... --cap-add SYS_ADMIN --security-opt seccomp=unconfined
    from_body = ids(check_container(request_body("gate_authz_create_privileged.json")))
    from_inspect = ids(check_container(load("gate_container_priv_inspect.json")))
    only_in_inspect = {
        "GCIS-5.7",
        "GCIS-5.16",
        "GCIS-5.17",
        "GCIS-5.20",
    }  # -p, --ipc, --device, --uts
    assert from_body == [i for i in from_inspect if i not in only_in_inspect]


def test_create_body_of_a_hardened_run_passes() -> None:
    assert check_container(request_body("gate_authz_create_compliant.json")) == []


def test_every_check_has_a_fix_and_a_cis_number_in_its_id() -> None:
    assert len(CATALOG) >= 20
    for check_id, info in CATALOG.items():
        assert check_id == f"GCIS-{info.cis}"
        assert info.fix.endswith(".")
        assert info.title


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GCIS-5.4", "GCIS-5.4"),
        ("gcis-5.31", "GCIS-5.31"),
        ("4.1", "GCIS-4.1"),
        (" 5.9 ", "GCIS-5.9"),
    ],
)
def test_check_ids_resolve_from_either_spelling(text: str, expected: str) -> None:
    assert resolve_check_id(text) == expected


def test_unknown_check_id_is_refused() -> None:
    with pytest.raises(KeyError):
        resolve_check_id("5.99")


def test_image_without_user_healthcheck_and_with_add_and_secrets_fails_four_checks() -> None:
    issues = check_image(load("gate_image_bad_inspect.json"), load("gate_image_bad_history.json"))
    assert ids(issues) == ["GCIS-4.1", "GCIS-4.6", "GCIS-4.9", "GCIS-4.10"]
    secrets = issues[3]
    assert secrets.detail == "secrets in environment variables: DB_PASSWORD, AWS_ACCESS_KEY_ID"
    assert "hunter2" not in secrets.detail
    assert "/hello.txt" in issues[2].detail


def test_image_with_user_and_healthcheck_passes() -> None:
    inspect = load("gate_image_good_inspect.json")
    assert check_image(inspect, load("gate_image_good_history.json")) == []


def test_base_image_root_file_system_add_is_not_flagged() -> None:
    history = [{"CreatedBy": "/bin/sh -c #(nop) ADD file:0123abcd in / "}]
    assert "GCIS-4.9" not in ids(check_image({"Config": {}}, history))
    buildkit = [{"CreatedBy": "ADD https://example.invalid/app.tgz /opt/ # buildkit"}]
    assert "GCIS-4.9" in ids(check_image({"Config": {}}, buildkit))


def test_secret_values_are_found_whatever_the_variable_name() -> None:
    config = {"Config": {"User": "app", "Env": ["X=AKIAABCDEFGHIJKLMNOP", "PASSWORD="]}}
    issues = check_image(config)
    assert [i.detail for i in issues if i.check_id == "GCIS-4.10"] == [
        "secrets in environment variables: X"
    ]


def test_healthcheck_none_counts_as_no_healthcheck() -> None:
    config = {"Config": {"User": "1000", "Healthcheck": {"Test": ["NONE"]}}}
    assert ids(check_image(config)) == ["GCIS-4.6"]


def test_privileged_exec_as_root_fails_both_exec_checks() -> None:
    issues = check_exec(request_body("gate_authz_exec_privileged.json"))
    assert ids(issues) == ["GCIS-5.22", "GCIS-5.23"]
    assert check_exec({"Cmd": ["id"], "User": "1000"}) == []


def test_garbled_configuration_values_are_read_as_absent() -> None:
    body = {"HostConfig": {"Binds": "nope", "CapAdd": 7, "Memory": "lots", "Privileged": "yes"}}
    assert "GCIS-5.4" not in ids(check_container(body))
    assert "GCIS-5.10" in ids(check_container(body))
    assert check_container({"Config": {}, "HostConfig": None, "Mounts": [1, None]})


def test_a_configuration_that_is_not_an_object_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        check_container(["not", "a", "dict"])  # type: ignore[arg-type]


def test_mounts_api_and_binds_both_count() -> None:
    body = {
        "HostConfig": {
            "Mounts": [
                {"Type": "bind", "Source": "/run/containerd/containerd.sock", "Target": "/c"}
            ],
            "Binds": ["/etc:/host-etc:ro", "myvolume:/data", "/srv/data:/data:rshared"],
        }
    }
    issues = {i.check_id: i.detail for i in check_container(body)}
    assert issues["GCIS-5.31"] == "runtime socket mounted: /run/containerd/containerd.sock"
    assert issues["GCIS-5.5"] == "host paths mounted: /etc:/host-etc"
    assert issues["GCIS-5.19"] == "shared mount propagation: /srv/data"
