"""Deleting the pod of a blocked container, from the defender's own pod (issue 19).

Under Kubernetes the defender kills a container that broke a rule and leaves the rest to the
kubelet, which starts it again in the same pod. With ``block_deletes_pod`` it also deletes the
pod: its controller (a ReplicaSet, a StatefulSet…) makes a new one, which the defender watches
like any other; a bare pod is gone for good.

That is one call of the API server, made with the standard library (``http.client`` and
``ssl``), not a Kubernetes client or httpx: the defender's memory counts (``tests/fleet``: a
remote defender loads neither httpx nor SQLAlchemy), and one ``DELETE`` is all it needs. It
authenticates as its pod's service account, which needs the RBAC of
``deploy/kubernetes/pod-deletion`` (docs/kubernetes.md).

>>> pods = PodDeleter.in_cluster()  # ConfigError outside a pod with a service account token
>>> pod = pod_of(container.labels)  # None for a container no kubelet started
>>> pods.delete(pod)  # Deletion.DELETED; KubernetesError when the API server said no
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import os
import re
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from garrison.errors import (
    ConfigError,
    InvalidInput,
    KubernetesDenied,
    KubernetesError,
    KubernetesUnreachable,
)
from garrison.k8s._review import POD_NAME_LABEL, POD_NAMESPACE_LABEL
from garrison.text import clip

# Where the kubelet mounts the service account (automountServiceAccountToken: true), and the
# variables it sets in every container: client-go's rest.InClusterConfig reads the same.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_PATH = SERVICE_ACCOUNT / "token"
CA_PATH = SERVICE_ACCOUNT / "ca.crt"
HOST_ENV = "KUBERNETES_SERVICE_HOST"
PORT_ENV = "KUBERNETES_SERVICE_PORT"
TIMEOUT = 5.0
# Beside the kubelet's pod name and namespace labels (pkg/kubelet/types/labels.go).
POD_UID_LABEL = "io.kubernetes.pod.uid"
# What the API server asks of the names (k8s.io/apimachinery validation IsDNS1123Label and
# IsDNS1123Subdomain): a namespace is a label, a pod's name a subdomain.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_NAMESPACE = re.compile(_LABEL)
_MAX_LABEL = 63
_MAX_SUBDOMAIN = 253
# The answer is read only for its message: a Pod object can be large and is not needed.
_MAX_ANSWER = 64 * 1024
_PERMISSION = 'RBAC "delete" on "pods" (core API group), deploy/kubernetes/pod-deletion'


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod as the kubelet's labels name it. ``uid`` tells this pod from a later one of the
    same name (a StatefulSet's), None when the labels do not carry it."""

    namespace: str
    name: str
    uid: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_of(labels: Mapping[str, str]) -> PodRef | None:
    """The pod a container belongs to, from its labels; None for a container the kubelet did
    not start. Labels are read, not checked: whoever can start containers on the node can
    write them, so ``PodDeleter.delete`` checks the names before they reach a URL."""
    namespace = labels.get(POD_NAMESPACE_LABEL)
    name = labels.get(POD_NAME_LABEL)
    if not namespace or not name:
        return None
    return PodRef(namespace, name, labels.get(POD_UID_LABEL) or None)


def check_pod(pod: PodRef) -> None:
    """InvalidInput unless the namespace is a DNS-1123 label and the name a DNS-1123
    subdomain, as the API server requires: anything else cannot be a pod, and is refused
    before it reaches a URL."""
    if len(pod.namespace) > _MAX_LABEL or not _NAMESPACE.fullmatch(pod.namespace):
        raise InvalidInput(f"not a Kubernetes namespace: {clip(pod.namespace, 80)!r}")
    if len(pod.name) > _MAX_SUBDOMAIN or not _SUBDOMAIN.fullmatch(pod.name):
        raise InvalidInput(f"not a Kubernetes pod name: {clip(pod.name, 80)!r}")


class Deletion(enum.Enum):
    """What became of a pod the defender asked to delete; each is a normal outcome, for the
    audit to say."""

    DELETED = "deleted"  # 200 or 202: the API server took the deletion
    GONE = "already gone"  # 404: deleted by someone else, or replaced under another name
    OTHER_POD = "not deleted: the pod of that name has another uid"  # 409: the precondition


class Pods(Protocol):
    """What the defender needs of the Kubernetes API: ``PodDeleter``, or ``FakePods``."""

    def delete(self, pod: PodRef) -> Deletion: ...


class PodDeleter:
    """Deletes pods through the API server at ``host:port``, as the service account whose
    token is in ``token_path``, trusting the CA in ``ca_path`` only.

    Both files are read at each call: the kubelet rotates a bound token long before it
    expires, and deletions are rare enough that reading a few kilobytes costs nothing.
    ``timeout`` bounds each socket operation (connect, TLS handshake, each read).
    Thread-safe: each call has a connection of its own.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        token_path: Path = TOKEN_PATH,
        ca_path: Path = CA_PATH,
        timeout: float = TIMEOUT,
    ) -> None:
        self.host = host
        self.port = port
        self.token_path = token_path
        self.ca_path = ca_path
        self.timeout = timeout

    @classmethod
    def in_cluster(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        token_path: Path = TOKEN_PATH,
        ca_path: Path = CA_PATH,
        timeout: float = TIMEOUT,
    ) -> PodDeleter:
        """The deleter of the pod this process runs in: ConfigError, at start rather than at
        the first block, when there is no API server to reach or no token to show it."""
        env = os.environ if environ is None else environ
        host, port = env.get(HOST_ENV, ""), env.get(PORT_ENV, "")
        if not host or not port:
            raise ConfigError(
                f"deleting pods needs a Kubernetes pod: {HOST_ENV} and {PORT_ENV} are not set"
            )
        deleter = cls(host, _port(port), token_path=token_path, ca_path=ca_path, timeout=timeout)
        deleter._token()
        deleter._context()
        return deleter

    def delete(self, pod: PodRef) -> Deletion:
        """Delete ``pod`` (only if it still has ``pod.uid``, when known). InvalidInput for a
        name that cannot be a pod's, ConfigError for a token or CA that cannot be read,
        KubernetesError when the API server refuses or does not answer."""
        check_pod(pod)
        status, answer = self._request("DELETE", _pod_path(pod), _options(pod))
        return _outcome(pod, status, answer)

    def _request(self, method: str, path: str, body: Mapping[str, Any]) -> tuple[int, bytes]:
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        context, data = self._context(), json.dumps(body).encode()
        try:  # InvalidURL, for a host that cannot be one, is an HTTPException too
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=context
            )
            return _exchange(conn, method, path, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise KubernetesUnreachable(f"Kubernetes API {self._where()}: {_reason(exc)}") from exc

    def _token(self) -> str:
        try:
            token = self.token_path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"service account token {self.token_path}: {_reason(exc)}") from exc
        # What goes in a header: one line of visible ASCII (http.client would raise
        # ValueError), and never quoted in a message.
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise ConfigError(f"service account token {self.token_path} is not a token")
        return token

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=str(self.ca_path))
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError(f"service account CA {self.ca_path}: {_reason(exc)}") from exc

    def _where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{PORT_ENV} is not a port: {clip(text, 40)!r}")
    return int(text)


def _exchange(
    conn: http.client.HTTPSConnection,
    method: str,
    path: str,
    data: bytes,
    headers: Mapping[str, str],
) -> tuple[int, bytes]:
    with contextlib.closing(conn):  # one connection per call: deletions are rare
        conn.request(method, path, body=data, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.read(_MAX_ANSWER)


def _pod_path(pod: PodRef) -> str:
    # Checked names need no quoting; quoted anyway, so that a change to the check cannot
    # turn a name into another path.
    namespace, name = (urllib.parse.quote(part, safe="") for part in (pod.namespace, pod.name))
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


def _options(pod: PodRef) -> dict[str, Any]:
    """A DeleteOptions body. Grace period 0: the container broke a rule, its pod has nothing
    left to finish. The uid precondition makes the API server refuse (409) to delete a newer
    pod that took the name since (a StatefulSet's next pod)."""
    options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}
    if pod.uid:
        options["preconditions"] = {"uid": pod.uid}
    return options


def _outcome(pod: PodRef, status: int, answer: bytes) -> Deletion:
    if status in (200, 202):
        return Deletion.DELETED
    if status == 404:
        return Deletion.GONE
    if status == 409 and pod.uid:
        return Deletion.OTHER_POD
    message = _message(answer)
    if status in (401, 403):
        raise KubernetesDenied(_denied(pod, status, message), status)
    raise KubernetesError(f"deleting pod {pod}: the API server answered {status} {message}", status)


def _denied(pod: PodRef, status: int, message: str) -> str:
    who = "refuses the service account's token" if status == 401 else "forbids it"
    return f"deleting pod {pod}: the API server {who} ({status} {message}); needs {_PERMISSION}"


def _message(answer: bytes) -> str:
    """The ``message`` of a Status the API server answers with, else the text, short."""
    text = answer.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return clip(text.strip(), 200)
    message = doc.get("message", "") if isinstance(doc, dict) else ""
    return clip(str(message), 200)


def _reason(exc: BaseException) -> str:
    """One line for an OSError or an HTTP error: its strerror, or its text, or its type."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


@dataclass
class FakePods:
    """``Pods`` for tests of the defender: records each pod asked for and answers ``outcome``
    (or raises ``error``), as no API server runs where they do."""

    outcome: Deletion = Deletion.DELETED
    error: KubernetesError | None = None
    deleted: list[PodRef] = field(default_factory=list)

    def delete(self, pod: PodRef) -> Deletion:
        check_pod(pod)
        self.deleted.append(pod)
        if self.error is not None:
            raise self.error
        return self.outcome
