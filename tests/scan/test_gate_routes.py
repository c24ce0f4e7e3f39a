"""The gate reads a request as dockerd routes and decodes it: Go's URI decoding, gorilla/mux's
clean paths and route patterns, Go's case-insensitive JSON fields, runc's users. The real
dockerd's view of the same mutations is checked in test_gate_differential.py."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from garrison.audit.record import Audit
from garrison.scan.compliance import check_exec
from garrison.scan.gate import ContainerFacts, Gate, GateServer, ServerConfig
from garrison.scan.gate.gojson import create_body, exec_body
from garrison.scan.gate.request import MAX_MESSAGE
from garrison.scan.gate.routes import Call, clean_path, route, version_below
from garrison.scan.gate.wiring import UnixConnection
from garrison.scan.rules import Policies
from garrison.scan.scanner import Scanner, ScanParts, empty_inventory
from garrison.scan.types import Finding, Inventory
from tests.scan.test_gate_decisions import BLOCK_ALL, IMAGE, World, message, policies

ROOT_EXEC = policies([], [{"name": "no root exec", "checks": {"5.23": "block"}}])


@pytest.mark.parametrize(
    ("uri", "call", "ref"),
    [
        ("/v1.41/containers/%63reate?name=p1", Call.CREATE, ""),
        ("/v1.41./containers/create", Call.CREATE, ""),
        ("/v1.41.0/containers/create", Call.CREATE, ""),
        ("/v.../containers/create", Call.CREATE, ""),
        ("/containers/create", Call.CREATE, ""),
        ("/v1.41/containers%2Fcreate", Call.CREATE, ""),
        ("http://d/v1.41/containers/create", Call.CREATE, ""),
        ("/v1.41/containers/abc/%73tart", Call.START, "abc"),
        ("/v1.41/containers/a%2Fb/start", Call.START, "a/b"),
        ("/v1.41/containers/%61bc/restart", Call.START, "abc"),
        ("/v1.41/containers/abc/unpause", Call.START, "abc"),
        ("/v1.41/containers/abc/update", Call.UPDATE, "abc"),
        ("/v1.41/containers/abc/exe%63", Call.EXEC, "abc"),
        ("/v1.41/exec/abc/start", Call.PASSED, "abc"),
        ("/v1.41/containers/abc/stop", Call.PASSED, "abc"),
        ("/v1.41/services/create", Call.UNJUDGED, ""),
        ("/v1.41/plugins/pull?remote=x", Call.UNJUDGED, ""),
        ("/v1.41//containers/create", Call.UNKNOWN, ""),
        ("/v1.41/containers/./create", Call.UNKNOWN, ""),
        ("/v1.41/x/../containers/create", Call.UNKNOWN, ""),
        ("/v1.41/containers/cr%zzeate", Call.UNKNOWN, ""),
        ("/v1.41/Containers/create", Call.UNKNOWN, ""),
        ("/v1.41/containers/create/", Call.UNKNOWN, ""),
        ("/v1.41/new/endpoint", Call.UNKNOWN, ""),
        ("containers/create", Call.UNKNOWN, ""),
    ],
)
def test_paths_are_classified_as_dockerd_routes_them(uri: str, call: Call, ref: str) -> None:
    where = route("POST", uri)
    assert (where.call, where.ref) == (call, ref)


def test_read_only_methods_are_read_only_whatever_the_path() -> None:
    for method in ("GET", "HEAD", "OPTIONS", "get"):
        assert route(method, "/v1.41//containers/%zz").call is Call.READ_ONLY


def test_clean_path_is_gorilla_mux_clean_path() -> None:
    assert clean_path("/a//b/./c/../d/") == "/a/b/d/"
    assert clean_path("/../a") == "/a"
    assert clean_path("") == "/"


def test_versions_compare_as_moby_compares_them() -> None:
    assert version_below("1.23", "1.24")
    assert version_below("1.9", "1.24")
    assert not version_below("1.41.", "1.24")
    assert not version_below("1.24", "1.24")
    assert version_below("...", "1.24")


def test_create_bodies_read_fields_without_regard_to_case_as_go_does() -> None:
    assert create_body(b'{"image":"x","hostconfig":{"privileged":true}}') == {
        "Image": "x",
        "HostConfig": {"Privileged": True},
    }
    long_s = create_body('{"HostConfig":{"\u017fecurityOpt":["apparmor=unconfined"]}}'.encode())
    assert long_s["HostConfig"] == {"SecurityOpt": ["apparmor=unconfined"]}


def test_a_create_body_takes_its_host_config_from_the_top_as_docker_20_10_does() -> None:
    assert create_body(b'{"Image":"x","Privileged":true}')["HostConfig"] == {"Privileged": True}
    both = create_body(b'{"Image":"x","Privileged":true,"Memory":5,"HostConfig":{}}')
    assert both["HostConfig"] == {"Memory": 5}  # 20.10 ignores the rest of the outer one


def test_duplicates_merge_and_null_keeps_a_plain_value_as_go_does() -> None:
    body = create_body(
        b'{"HostConfig":{"Privileged":true},"hostconfig":{"Privileged":null,"PidsLimit":5},'
        b'"HOSTCONFIG":{"PidsLimit":null}}'
    )
    assert body["HostConfig"] == {"Privileged": True}
    assert exec_body(b'{"user":"1","User":"00"}') == {"User": "00"}


@pytest.mark.parametrize("user", ["0", "00", "0000:0", "+0", "-0", "root", ":0", "toor", "r:x"])
def test_exec_users_that_runc_runs_as_root_are_root(user: str) -> None:
    passwd = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nr\nweb:x:33:33::/:/bin/sh\n"
    issues = check_exec({"User": user}, lambda: passwd)
    assert [i.check_id for i in issues] == ["GCIS-5.23"]


@pytest.mark.parametrize("user", ["", "33", "web", "web:0", "0x0", "nobody"])
def test_exec_users_that_are_not_root_pass(user: str) -> None:
    passwd = "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/:/bin/sh\n"
    assert check_exec({"User": user}, lambda: passwd) == []


def facts_gate(audits: list[Audit], blocked: bool, pol: Policies = BLOCK_ALL, **kw: Any) -> Gate:
    facts = ContainerFacts("f" * 64, "web", IMAGE, "sha256:busybox")
    return Gate(
        World().scanner(),
        lambda: pol,
        on_audit=audits.append,
        is_blocked=lambda cid: blocked and cid == facts.id,
        containers=lambda _ref: facts,
        hostname="h",
        **kw,
    )


@pytest.mark.parametrize("action", ["start", "restart", "unpause", "update", "%73tart"])
def test_every_call_that_can_run_a_blocked_container_is_refused(action: str) -> None:
    audits: list[Audit] = []
    body = {"RestartPolicy": {"Name": "always"}} if action == "update" else None
    reply = facts_gate(audits, True).authorize(message("POST", f"/containers/web/{action}", body))
    assert reply.msg.endswith("container web is blocked by a runtime rule")
    assert audits[0].effect == "block"
    assert facts_gate([], False).authorize(message("POST", f"/containers/web/{action}", body)).allow


def test_a_start_through_an_old_api_version_that_may_carry_a_host_config_is_refused() -> None:
    audits: list[Audit] = []
    reply = facts_gate(audits, False).authorize(
        message("POST", "/v1.23/containers/web/start", {"Privileged": True})
    )
    assert "a start through API version 1.23 may change the container's host" in reply.msg
    assert facts_gate([], False).authorize(message("POST", "/v1.24/containers/web/start")).allow


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("/v1.41/services/create", "POST /services/create runs containers that the Garrison"),
        ("/v1.41/brand/new", "could change a container and Garrison cannot classify it"),
        ("/v1.41//containers/create", "not in clean form"),
    ],
)
def test_calls_the_gate_cannot_judge_are_refused_and_audited(uri: str, words: str) -> None:
    audits: list[Audit] = []
    reply = facts_gate(audits, False).authorize(message("POST", uri, {"Image": IMAGE}))
    assert not reply.allow
    assert words in reply.msg
    assert [(a.type, a.effect) for a in audits] == [("compliance", "block")]


@pytest.mark.parametrize(
    "body",
    [
        {"Image": IMAGE, "Privileged": True},
        {"Image": IMAGE, "hostconfig": {"privileged": True}},
        {"image": IMAGE, "HOSTCONFIG": {"PRIVILEGED": True}},
        {"Image": IMAGE, "HostConfig": {"Privileged": True}, "HostConfig ": {}},
    ],
)
def test_privileged_creates_in_any_form_dockerd_reads_are_refused(body: dict[str, Any]) -> None:
    reply = facts_gate([], False).authorize(message("POST", "/v1.41/containers/%63reate", body))
    assert not reply.allow
    assert "GCIS-5.4" in reply.msg


@pytest.mark.parametrize("user", ["00", "0000:0", "root", "toor"])
def test_root_exec_user_forms_are_refused_under_5_23(user: str) -> None:
    passwd = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\n"
    gate = facts_gate([], False, pol=ROOT_EXEC, passwd=lambda _cid: passwd)
    body = {"Cmd": ["id"], "uSER": user}
    reply = gate.authorize(message("POST", "/v1.41/containers/web/exec", body))
    assert not reply.allow
    assert "GCIS-5.23" in reply.msg


def test_deeply_nested_bodies_are_refused_not_crashed() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    body = base64.b64encode(b'{"Image": ' + nested + b"}").decode()
    doc = {"RequestMethod": "POST", "RequestUri": "/containers/create", "RequestBody": body}
    reply = facts_gate([], False).authorize(json.dumps(doc).encode())
    assert not reply.allow
    assert "nested too deeply" in reply.msg
    outer = b'{"RequestMethod": "POST", "RequestUri": "/containers/create", "x": ' + nested + b"}"
    assert "nested too deeply" in facts_gate([], False).authorize(outer).msg


class SlowWorld(World):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def match(self, inventory: Inventory) -> list[Finding]:
        self.release.wait(10)
        return super().match(inventory)


def test_a_scan_slower_than_the_timeout_refuses_under_block_and_finishes_in_background() -> None:
    world = SlowWorld()
    scanner = Scanner(ScanParts(world.resolve, empty_inventory, world.match))
    gate = Gate(scanner, lambda: BLOCK_ALL, scan_timeout=0.2, hostname="h")
    body = {"Image": IMAGE}
    reply = gate.authorize(message("POST", "/containers/create", body))
    assert reply.msg.endswith(
        "the image scan did not finish within the gate's scan timeout of 0.2 s; it goes on in "
        "the background: try again shortly"
    )
    world.release.set()
    deadline = time.monotonic() + 10
    while scanner.cached("sha256:busybox") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gate.authorize(message("POST", "/containers/create", body)).allow
    assert world.scans == 1  # the background scan's result, not a second scan


def post_to_plugin(socket_path: Path, body: bytes) -> tuple[int, dict[str, Any]]:
    conn = UnixConnection(socket_path, 30)
    try:
        conn.request("POST", "/AuthZPlugin.AuthZReq", body=body)
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        conn.close()


def test_oversize_and_nested_messages_get_a_refusal_from_the_server_never_a_500(
    tmp_path: Path,
) -> None:
    config = ServerConfig(socket_path=tmp_path / "s" / "authz.sock", name="t", link_dir=None)
    with GateServer(facts_gate([], False), config):
        nested = b'{"RequestMethod": "POST", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        huge = b'{"RequestMethod": "POST", "x": "' + b"a" * (MAX_MESSAGE + 1) + b'"}'
        for body, words in ((nested, "nested too deeply"), (huge, "larger than")):
            status, reply = post_to_plugin(config.socket_path, body)
            assert (status, reply["Allow"]) == (200, False)
            assert words in reply["Msg"]
        assert (tmp_path / "s").stat().st_mode & 0o777 == 0o700
