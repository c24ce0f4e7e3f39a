"""Deleting a pod through the API server (garrison.k8s.pods), against a real HTTPS server on
127.0.0.1 that plays the API server for this one call: no kube-apiserver runs here. Its
certificate comes from a CA made for the test, its token from a real file."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from garrison.errors import (
    ConfigError,
    InvalidInput,
    KubernetesDenied,
    KubernetesError,
    KubernetesUnreachable,
)
from garrison.k8s import Deletion, FakePods, PodDeleter, PodRef, check_pod, pod_of
from tests.support import wait_for

UID = "5f0d3c4e-8a51-4f0e-9d43-2b7c1a0e6f11"
POD = PodRef("shop", "web-7d9f8b-x2x4q", UID)
TOKEN = "eyJhbGciOiJSUzI1NiJ9.first-token.sig"
FORBIDDEN = (
    'pods "web-7d9f8b-x2x4q" is forbidden: User "system:serviceaccount:garrison:'
    'garrison-defender" cannot delete resource "pods" in API group "" in the namespace "shop"'
)


# --- a CA, and a server certificate it signs ------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def make_pki(folder: Path) -> Pki:
    """A CA as a cluster has (kubernetes), and the API server's certificate for 127.0.0.1."""
    folder.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("kubernetes", "kubernetes", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    ca_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        _builder("kube-apiserver", "kubernetes", key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ca_id, critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(folder / "ca.crt", folder / "apiserver.crt", folder / "apiserver.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


# --- the API server, for DELETE of a pod ---------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: ApiServer

    def do_DELETE(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append(Seen("DELETE", self.path, dict(self.headers.items()), body))
        self._answer()

    def _answer(self) -> None:
        status, doc = self.server.status, self.server.answer
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ApiServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 with ``pki``'s certificate; answers ``status`` and ``answer`` to
    every request and keeps what it was sent in ``seen``."""

    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(pki.cert, pki.key)
        self.seen: list[Seen] = []
        self.status = 200
        self.answer: dict[str, Any] = {"kind": "Pod", "apiVersion": "v1"}
        self.handshake_failures = 0

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake in the request's thread: a client that refuses the certificate
        # ends only its own connection.
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            return
        with conn:
            _Handler(conn, client_address, self)


@contextlib.contextmanager
def serving(pki: Pki) -> Iterator[ApiServer]:
    server = ApiServer(pki)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def status(code: int, message: str) -> dict[str, Any]:
    """A Status object, as the API server answers an error."""
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": "Forbidden" if code == 403 else "", "code": code}  # fmt: skip


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture
def api(pki: Pki) -> Iterator[ApiServer]:
    with serving(pki) as server:
        yield server


def deleter_for(port: int, pki: Pki, token: Path, timeout: float = 5.0) -> PodDeleter:
    return PodDeleter("127.0.0.1", port, token_path=token, ca_path=pki.ca, timeout=timeout)


@pytest.fixture
def deleter(api: ApiServer, pki: Pki, token: Path) -> PodDeleter:
    return deleter_for(api.port, pki, token)


# --- the request ---------------------------------------------------------------------------


def test_a_deletion_is_one_delete_of_the_pod_with_the_token_grace_0_and_the_uid(
    api: ApiServer, deleter: PodDeleter
) -> None:
    assert deleter.delete(POD) is Deletion.DELETED
    (seen,) = api.seen
    assert seen.method == "DELETE"
    assert seen.path == "/api/v1/namespaces/shop/pods/web-7d9f8b-x2x4q"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": UID},
    }


def test_a_pod_whose_uid_is_unknown_is_deleted_without_a_precondition(
    api: ApiServer, deleter: PodDeleter
) -> None:
    assert deleter.delete(PodRef("shop", "web-0")) is Deletion.DELETED
    (seen,) = api.seen
    assert "preconditions" not in json.loads(seen.body)


def test_the_token_is_read_again_at_each_call_as_the_kubelet_rotates_it(
    api: ApiServer, deleter: PodDeleter, token: Path
) -> None:
    deleter.delete(POD)
    token.write_text("eyJhbGciOiJSUzI1NiJ9.rotated.sig")
    deleter.delete(POD)
    first, second = (seen.headers["Authorization"] for seen in api.seen)
    assert first == f"Bearer {TOKEN}"
    assert second == "Bearer eyJhbGciOiJSUzI1NiJ9.rotated.sig"


# --- the answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(200, Deletion.DELETED), (202, Deletion.DELETED), (404, Deletion.GONE),
     (409, Deletion.OTHER_POD)],
)  # fmt: skip
def test_each_answer_of_the_api_server_is_an_outcome_to_audit(
    api: ApiServer, deleter: PodDeleter, code: int, outcome: Deletion
) -> None:
    api.status = code
    if code >= 400:
        api.answer = status(code, "Precondition failed: UID in precondition: x")
    assert deleter.delete(POD) is outcome


def test_a_conflict_without_a_uid_precondition_is_an_error_not_another_pod(
    api: ApiServer, deleter: PodDeleter
) -> None:
    api.status, api.answer = 409, status(409, "Operation cannot be fulfilled")
    with pytest.raises(KubernetesError) as raised:
        deleter.delete(PodRef("shop", "web-0"))
    assert raised.value.status == 409


@pytest.mark.parametrize("code", [401, 403])
def test_a_refusal_names_the_rbac_permission_and_never_the_token(
    api: ApiServer, deleter: PodDeleter, code: int
) -> None:
    api.status, api.answer = code, status(code, FORBIDDEN if code == 403 else "Unauthorized")
    with pytest.raises(KubernetesDenied) as raised:
        deleter.delete(POD)
    message = str(raised.value)
    assert raised.value.status == code
    assert '"delete" on "pods"' in message
    assert "deploy/kubernetes/pod-deletion" in message
    assert "shop/web-7d9f8b-x2x4q" in message
    assert "\n" not in message
    assert TOKEN not in message


def test_a_server_error_is_a_kubernetes_error_with_its_status(
    api: ApiServer, deleter: PodDeleter
) -> None:
    api.status, api.answer = 503, status(503, "etcdserver: request timed out")
    with pytest.raises(KubernetesError, match="503 etcdserver: request timed out") as raised:
        deleter.delete(POD)
    assert not isinstance(raised.value, KubernetesDenied | KubernetesUnreachable)
    assert raised.value.status == 503


# --- no answer -----------------------------------------------------------------------------


def test_a_server_whose_certificate_another_ca_signed_is_refused_before_any_request(
    tmp_path: Path, api: ApiServer, token: Path
) -> None:
    other = make_pki(tmp_path / "other")
    with pytest.raises(KubernetesUnreachable, match="certificate verify failed"):
        deleter_for(api.port, other, token).delete(POD)
    wait_for("the server to see the handshake fail", lambda: api.handshake_failures == 1)
    assert api.seen == []


def test_a_server_that_never_answers_is_an_unreachable_error(pki: Pki, token: Path) -> None:
    # Accepts connections (the kernel completes them from the backlog) and never says a word.
    with socket.create_server(("127.0.0.1", 0), backlog=4) as silent:
        port = int(silent.getsockname()[1])
        with pytest.raises(KubernetesUnreachable, match="timed out"):
            deleter_for(port, pki, token, timeout=0.5).delete(POD)


def test_nothing_listening_is_an_unreachable_error(pki: Pki, token: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with pytest.raises(KubernetesUnreachable, match="refused"):
        deleter_for(port, pki, token).delete(POD)


def test_a_token_gone_at_call_time_is_a_config_error_and_no_request(
    api: ApiServer, deleter: PodDeleter, token: Path
) -> None:
    token.unlink()
    with pytest.raises(ConfigError, match="service account token"):
        deleter.delete(POD)
    assert api.seen == []


@pytest.mark.parametrize("text", ["", "two\nlines", "t\u00f6ken", "with space"])
def test_a_token_that_cannot_be_a_header_is_a_config_error_that_does_not_quote_it(
    api: ApiServer, deleter: PodDeleter, token: Path, text: str
) -> None:
    token.write_text(text)
    with pytest.raises(ConfigError, match="service account token") as raised:
        deleter.delete(POD)
    assert text not in str(raised.value) or not text
    assert api.seen == []


# --- names ---------------------------------------------------------------------------------

LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
namespaces = st.from_regex(LABEL, fullmatch=True)
pod_names = st.from_regex(rf"{LABEL}(\.{LABEL}){{0,3}}", fullmatch=True).filter(
    lambda n: len(n) <= 253
)
BAD_CHARS = st.sampled_from(["/", "%2F", "..", "_", "A", " ", "\n", "?", "#", "é", "\x00"])


@st.composite
def spoiled(draw: st.DrawFn, names: st.SearchStrategy[str]) -> str:
    """A valid name with something no pod name has put somewhere in it."""
    name, bad = draw(names), draw(BAD_CHARS)
    at = draw(st.integers(0, len(name)))
    return name[:at] + bad + name[at:]


@given(namespaces, pod_names)
def test_dns_1123_names_are_pods(namespace: str, name: str) -> None:
    check_pod(PodRef(namespace, name))


def test_invalid_names_are_refused_without_any_request(api: ApiServer, deleter: PodDeleter) -> None:
    @given(st.one_of(
        st.tuples(spoiled(namespaces), pod_names),
        st.tuples(namespaces, spoiled(pod_names)),
        st.tuples(namespaces.map(lambda n: n + ".x"), pod_names),  # a namespace has no dot
    ))  # fmt: skip
    @example(("kube-system", "../../nodes/n1"))
    @example(("-shop", "web"))
    @example(("shop", "web-"))
    @example(("", "web"))
    @example(("shop", ""))
    @example(("a" * 64, "web"))
    @example(("shop", ".".join(["a" * 63] * 4)))  # 255 characters
    def refused(names: tuple[str, str]) -> None:
        with pytest.raises(InvalidInput):
            deleter.delete(PodRef(*names, UID))

    refused()
    assert api.seen == []


# --- which pod -----------------------------------------------------------------------------

KUBELET_LABELS = {
    "io.kubernetes.pod.namespace": "shop",
    "io.kubernetes.pod.name": "web-7d9f8b-x2x4q",
    "io.kubernetes.pod.uid": UID,
    "io.kubernetes.container.name": "web",
}


def test_the_kubelets_labels_name_the_pod_and_its_uid() -> None:
    assert pod_of(KUBELET_LABELS) == POD
    without_uid = {k: v for k, v in KUBELET_LABELS.items() if k != "io.kubernetes.pod.uid"}
    assert pod_of(without_uid) == PodRef("shop", "web-7d9f8b-x2x4q", None)


@pytest.mark.parametrize("missing", ["io.kubernetes.pod.namespace", "io.kubernetes.pod.name"])
def test_a_container_without_its_pods_namespace_and_name_is_in_no_pod(missing: str) -> None:
    assert pod_of({k: v for k, v in KUBELET_LABELS.items() if k != missing}) is None
    assert pod_of({"com.docker.compose.project": "shop"}) is None


# --- in the cluster ------------------------------------------------------------------------


def test_in_a_pod_the_api_server_is_found_from_the_environment(
    api: ApiServer, pki: Pki, token: Path
) -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(api.port)}
    deleter = PodDeleter.in_cluster(environ=environ, token_path=token, ca_path=pki.ca)
    assert deleter.delete(POD) is Deletion.DELETED
    assert len(api.seen) == 1


@pytest.mark.parametrize(
    ("environ", "says"),
    [({}, "KUBERNETES_SERVICE_HOST"),
     ({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "https"}, "not a port")],
)  # fmt: skip
def test_outside_a_pod_it_is_a_config_error(
    pki: Pki, token: Path, environ: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        PodDeleter.in_cluster(environ=environ, token_path=token, ca_path=pki.ca)


def test_without_a_mounted_token_or_ca_it_is_a_config_error_at_start(
    tmp_path: Path, pki: Pki, token: Path
) -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    missing = tmp_path / "absent"
    with pytest.raises(ConfigError, match="service account token"):
        PodDeleter.in_cluster(environ=environ, token_path=missing, ca_path=pki.ca)
    with pytest.raises(ConfigError, match="service account CA"):
        PodDeleter.in_cluster(environ=environ, token_path=token, ca_path=missing)


def test_the_fake_records_each_pod_and_checks_names_as_the_real_one() -> None:
    pods = FakePods(outcome=Deletion.GONE)
    assert pods.delete(POD) is Deletion.GONE
    assert pods.deleted == [POD]
    with pytest.raises(InvalidInput):
        pods.delete(PodRef("shop", "Web"))
    pods.error = KubernetesDenied("no", 403)
    with pytest.raises(KubernetesDenied):
        pods.delete(POD)
