"""AdmissionReview v1 documents for the tests, and the schema an answer is checked against.

The documents in data/ are written after the Kubernetes API reference (admission.k8s.io/v1,
core/v1 Pod with the API server's defaults filled in, apps/v1 Deployment); the tests check
their objects against the Kubernetes 1.37 schemas of ``kubernetes-validate``.

The schema: Kubernetes publishes none for AdmissionReview (it is no REST resource, so it is
not in the API server's OpenAPI). It is written here from its Go definition, k8s.io/api
``admission/v1/types.go`` (kubernetes/api at 10b39a39, July 2026): a field without
``omitempty`` is required; ``status`` is a ``meta/v1 Status`` and ``userInfo`` an
``authentication/v1 UserInfo``, both taken as published in kubernetes-validate's Kubernetes
1.37 definitions. ``answer_problems`` adds what the API server checks of a validating
webhook's answer (k8s.io/apiserver ``VerifyAdmissionResponse``): a response, the request's
uid, no patch.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import importlib_resources
import jsonschema
import kubernetes_validate

DATA = Path(__file__).parent / "data"
K8S_VERSION = "1.37.0"
DEFINITIONS = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict/_definitions.json"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / name).read_text())
    return doc


def pod_review(image: str = "shop:1.4", **container: Any) -> dict[str, Any]:
    """The Pod CREATE of data/pod_create.json with its container's image (and fields) set."""
    doc = load("pod_create.json")
    web = doc["request"]["object"]["spec"]["containers"][0]
    web.update(image=image, **container)
    return doc


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def _group_version(last: str) -> dict[str, Any]:
    names = ("group", "version", last)
    return {"type": "object", "required": list(names), "additionalProperties": False,
            "properties": {n: {"type": "string"} for n in names}}  # fmt: skip


def _raw() -> dict[str, Any]:
    """runtime.RawExtension: any JSON object, or null when empty."""
    return {"type": ["object", "null"]}


def _strings() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": {"type": "string"}}


@cache
def review_schema() -> dict[str, Any]:
    defs = json.loads(
        importlib_resources.files("kubernetes_validate").joinpath(DEFINITIONS).read_text()
    )["$defs"]
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["uid", "kind", "resource", "operation", "userInfo"],
        "properties": {
            "uid": {"type": "string"},
            "kind": _group_version("kind"),
            "resource": _group_version("resource"),
            "subResource": {"type": "string"},
            "requestKind": _group_version("kind"),
            "requestResource": _group_version("resource"),
            "requestSubResource": {"type": "string"},
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "operation": {"enum": ["CREATE", "UPDATE", "DELETE", "CONNECT"]},
            "userInfo": {"$ref": "#/$defs/io.k8s.api.authentication.v1.UserInfo"},
            "object": _raw(),
            "oldObject": _raw(),
            "dryRun": {"type": "boolean"},
            "options": _raw(),
        },
    }
    response = {
        "type": "object",
        "additionalProperties": False,
        "required": ["uid", "allowed"],
        "properties": {
            "uid": {"type": "string"},
            "allowed": {"type": "boolean"},
            "status": {"$ref": f"#/$defs/{META}Status"},
            "patch": {"type": "string", "contentEncoding": "base64"},
            "patchType": {"enum": ["JSONPatch"]},
            "auditAnnotations": _strings(),
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"const": "admission.k8s.io/v1"},
            "kind": {"const": "AdmissionReview"},
            "request": request,
            "response": response,
        },
        "$defs": defs,
    }


def schema_errors(doc: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(review_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def answer_problems(answer: Any, uid: str) -> list[str]:
    """Why the API server would not take ``answer`` to the request ``uid`` ([] if it would)."""
    problems = schema_errors(answer)
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        return [*problems, "response was absent"]
    if response.get("uid") != uid:
        problems.append(f"expected response.uid={uid!r}, got {response.get('uid')!r}")
    if "patch" in response or "patchType" in response:
        problems.append("validating webhook may not return a patch")
    return problems


def status_errors(doc: Any) -> list[str]:
    """Errors of a meta/v1 Status (the webhook's 400 and 500 bodies)."""
    schema = {"$ref": f"#/$defs/{META}Status", "$defs": review_schema()["$defs"]}
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(doc)]


def object_errors(obj: dict[str, Any]) -> list[str]:
    """Errors of a Kubernetes object (a Pod, a Deployment) against the 1.37 schemas."""
    try:
        kubernetes_validate.validate(copy.deepcopy(obj), K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []
