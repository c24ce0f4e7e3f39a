"""AdmissionReview v1 documents: the request read, the response written.

The shapes are those of k8s.io/api ``admission/v1/types.go``: the API server posts an
``AdmissionReview`` holding a ``request`` (``uid``, ``kind``, ``operation``, ``object``,
``oldObject``, ``dryRun``…) and reads back one holding a ``response`` with the same ``uid``.
A body that is not such a document raises InvalidInput (HTTP 400): the API server only ever
sends well-formed ones, so it comes from something else.

Only pods are judged: a ``CREATE`` or ``UPDATE`` of the ``pods`` resource itself or of its
``ephemeralcontainers`` subresource (how ``kubectl debug`` adds a container). Every other
request (another kind, a ``DELETE``, the ``status`` subresource the kubelet writes) is
answered allowed without a look: refusing a pod's status updates would break it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from garrison.errors import InvalidInput
from garrison.text import clip

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The API server takes request bodies up to 3 MiB; a review carries the object and the old one.
MAX_REVIEW = 8 * 1024 * 1024
JUDGED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
JUDGED_SUBRESOURCES = frozenset({"", "ephemeralcontainers"})
# A Pod's container lists, as the API names them (core/v1 PodSpec).
ContainerList = Literal["initContainers", "containers", "ephemeralContainers"]
CONTAINER_LISTS: tuple[ContainerList, ...] = ("initContainers", "containers", "ephemeralContainers")
# The labels the kubelet puts on each container it runs (pkg/kubelet/types/labels.go): the
# gate and the defender see them, so a rule scoped on them means the same pods here.
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"


@dataclass(frozen=True, slots=True)
class PodContainer:
    """One container of a pod: its section (list), name, image and the container object itself."""

    section: ContainerList
    name: str
    image: str
    doc: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PodRequest:
    """A pod to judge: what scopes match on, its spec, and the containers that are new."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    containers: tuple[PodContainer, ...]  # those this request adds or changes the image of
    operation: str
    dry_run: bool = False

    def labels_of(self, container: PodContainer) -> dict[str, str]:
        """The pod's labels and the kubelet's, as the running container will carry them."""
        kubelet = {POD_NAMESPACE_LABEL: self.namespace, POD_NAME_LABEL: self.name,
                   CONTAINER_NAME_LABEL: container.name}  # fmt: skip
        return {**self.labels, **kubelet}


@dataclass(frozen=True, slots=True)
class Review:
    """A request: its ``uid`` and, when it is one the webhook judges, the pod."""

    uid: str
    pod: PodRequest | None = None
    what: str = field(default="")  # "Pod CREATE", "apps/v1 Deployment UPDATE": for logs


def parse_review(raw: bytes | str) -> Review:
    """The review in ``raw``; InvalidInput naming the first thing wrong with it."""
    doc = _load(raw)
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise InvalidInput(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got "
            f"{clip(repr(doc.get('apiVersion')), 60)} and {clip(repr(doc.get('kind')), 60)}"
        )
    request = _object(doc.get("request"), "request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidInput("request.uid must be a non-empty string")
    kind = _object(request.get("kind"), "request.kind")
    operation = _text(request.get("operation"), "request.operation")
    subresource = _text(request.get("subResource", ""), "request.subResource")
    what = f"{_gvk(kind)} {operation}{'/' + subresource if subresource else ''}"
    if not _is_pod(kind) or operation not in JUDGED_OPERATIONS:
        return Review(uid, None, what)
    if subresource not in JUDGED_SUBRESOURCES:
        return Review(uid, None, what)
    return Review(uid, _pod_request(request, operation), what)


def _load(raw: bytes | str) -> Mapping[str, Any]:
    if len(raw) > MAX_REVIEW:
        raise InvalidInput(f"the review is larger than {MAX_REVIEW} bytes")
    try:
        # UTF-8 only (RFC 8259); json.loads would take UTF-16 and UTF-32 bytes too.
        doc = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the review is not UTF-8 text (byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the review is not JSON: {clip(str(exc), 120)}") from None
    return _object(doc, "the review")


def _is_pod(kind: Mapping[str, Any]) -> bool:
    return kind.get("group", "") == "" and kind.get("version") == "v1" and kind.get("kind") == "Pod"


def _gvk(kind: Mapping[str, Any]) -> str:
    group, version = str(kind.get("group") or ""), str(kind.get("version") or "")
    api = f"{group}/{version}" if group else version
    return clip(f"{api} {kind.get('kind')}", 120)


def _pod_request(request: Mapping[str, Any], operation: str) -> PodRequest:
    pod = _object(request.get("object"), "request.object")
    meta = _object(pod.get("metadata", {}), "request.object.metadata")
    spec = _object(pod.get("spec"), "request.object.spec")
    containers = list(_containers(spec, "request.object.spec"))
    if operation == "UPDATE" and request.get("oldObject") is not None:
        old = _object(request.get("oldObject"), "request.oldObject")
        old_spec = _object(old.get("spec", {}), "request.oldObject.spec")
        before = {(c.section, c.name, c.image) for c in _containers(old_spec, "request.oldObject")}
        containers = [c for c in containers if (c.section, c.name, c.image) not in before]
    namespace = request.get("namespace") or meta.get("namespace") or ""
    name = request.get("name") or meta.get("name") or meta.get("generateName") or ""
    return PodRequest(
        namespace=_text(namespace, "request.namespace"),
        name=_text(name, "request.name"),
        labels=_strings(meta.get("labels"), "metadata.labels"),
        annotations=_strings(meta.get("annotations"), "metadata.annotations"),
        spec=spec,
        containers=tuple(containers),
        operation=operation,
        dry_run=request.get("dryRun") is True,
    )


def _containers(spec: Mapping[str, Any], where: str) -> Iterator[PodContainer]:
    for which in CONTAINER_LISTS:
        for i, item in enumerate(_list(spec.get(which), f"{where}.{which}")):
            at = f"{where}.{which}[{i}]"
            container = _object(item, at)
            name = _text(container.get("name", ""), f"{at}.name")
            image = container.get("image")
            if not isinstance(image, str) or not image.strip():
                raise InvalidInput(f"{at}.image must be a non-empty string")
            yield PodContainer(which, name, image.strip(), container)


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be a JSON object, not {_type(value)}")
    return value


def _list(value: Any, what: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput(f"{what} must be a list, not {_type(value)}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {_type(value)}")
    return value


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    pairs = _object(value, what)
    if not all(isinstance(v, str) for v in pairs.values()):
        raise InvalidInput(f"{what} must map names to strings")
    return {str(k): v for k, v in pairs.items()}


def _type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def response(
    uid: str, allowed: bool, message: str = "", warnings: Sequence[str] = ()
) -> dict[str, Any]:
    """The AdmissionReview v1 the API server reads back; a refusal carries HTTP 403 and the
    reasons in ``status.message``, which kubectl shows."""
    answer: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        answer["status"] = {"code": 403, "reason": "Forbidden", "message": message}
    if warnings:
        answer["warnings"] = list(warnings)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": answer}
