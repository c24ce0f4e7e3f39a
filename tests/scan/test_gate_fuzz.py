"""Property tests of the gate's decoders: whatever dockerd (or someone on its socket) sends,
the answer is a result or a clear refusal — never an exception, never an error 500."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.errors import InvalidInput
from garrison.scan.gate import Gate, parse_authz
from garrison.scan.gate.gojson import create_body, exec_body
from garrison.scan.gate.routes import Call, clean_path, route
from tests.scan.test_gate_decisions import BLOCK_ALL, World

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIECES = st.sampled_from(
    ["/", "v1.41", "containers", "create", "start", "exec", "%", "%2F", "%63", "..", ".",
     "?", "#", ";", "http:", "//", "%zz", "\u017f", "a", "%00", "update", "V1.4."]
)  # fmt: skip
URIS = st.lists(PIECES, max_size=12).map("".join) | st.text(max_size=60)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=30,
)
KEYS = st.sampled_from(["Image", "image", "HostConfig", "hostconfig", "Privileged", "User",
                        "USER", "Mounts", "Binds", "Labels", "CapAdd", "Cmd"])  # fmt: skip
BODIES = st.dictionaries(KEYS, JSON, max_size=6)


@FAST
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "post", "PATCH"]), uri=URIS)
def test_any_uri_is_routed_or_unknown_never_an_error(method: str, uri: str) -> None:
    where = route(method, uri)
    assert isinstance(where.call, Call)
    if where.call is not Call.UNKNOWN and where.path:
        assert clean_path(where.path) == where.path


@FAST
@given(body=BODIES)
def test_any_json_object_decodes_as_a_create_and_an_exec(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    assert isinstance(create_body(raw)["HostConfig"], dict)
    assert isinstance(exec_body(raw), dict)


@FAST
@given(raw=st.binary(max_size=200))
def test_any_bytes_decode_or_are_refused_clearly(raw: bytes) -> None:
    for decode in (create_body, exec_body, parse_authz):
        with contextlib.suppress(InvalidInput):
            decode(raw)


@FAST
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    uri=URIS,
    body=BODIES | JSON,
    headers=JSON,
)
def test_the_gate_answers_every_message_and_never_raises(
    method: str, uri: str, body: Any, headers: Any
) -> None:
    doc = {
        "RequestMethod": method,
        "RequestUri": uri,
        "RequestHeaders": headers,
        "RequestBody": base64.b64encode(json.dumps(body).encode()).decode(),
    }
    reply = Gate(World().scanner(), lambda: BLOCK_ALL, hostname="h").authorize(
        json.dumps(doc).encode()
    )
    assert reply.to_json()["Err"] == ""
    if method != "GET" and route(method, uri).call in (Call.UNKNOWN, Call.UNJUDGED):
        assert not reply.allow
