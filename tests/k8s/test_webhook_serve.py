"""The real ``garrison admission serve``, a process of its own on 127.0.0.1 with a self-signed
certificate, answering AdmissionReview v1 requests over HTTPS as the API server sends them:
the pod of a clean image admitted, the pod whose image breaks a blocking vulnerability rule
refused with the reasons, a Deployment admitted, a body that is no review answered 400 with a
``v1 Status``; every answer one the API server takes; plain HTTP not served; its decisions
audited in the store; SIGTERM stops it cleanly. A certificate that cannot be used is one line."""

from __future__ import annotations

import datetime as dt
import ipaddress
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from garrison.console import Console
from garrison.scan.rules import save_policy
from garrison.scan.types import Severity
from tests.cli_run import assert_refused_in_one_line, garrison, private_dir
from tests.k8s.reviews import answer_problems, body, load, pod_review, status_errors
from tests.store.test_store_scans import report
from tests.support import free_port, wait_for

CLEAN_ID = "sha256:" + "c1" * 32
BAD_ID = "sha256:" + "ba" * 32


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, as a caBundle may hold one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "garrison-admission")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "webhook.crt", folder / "webhook.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


@dataclass
class Served:
    url: str
    client: httpx.Client
    process: subprocess.Popen[str]
    data: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    data = private_dir(tmp_path / "data")
    with Console.open(data) as console:
        console.store.save_scan(report("shop:1.4", CLEAN_ID, 100.0, Severity.LOW))
        console.store.save_scan(report("miner:2", BAD_ID, 100.0, Severity.CRITICAL))
        save_policy(console.store, "vulnerability", [{"name": "no critical", "effect": "block"}])
    cert, key = self_signed(tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "garrison", "admission", "serve", "--address",
               f"127.0.0.1:{port}", "--cert", str(cert), "--key", str(key), "--data-dir",
               str(data)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(verify=context, timeout=10.0) as client:
            wait_for("the webhook to answer", lambda: _healthy(client, url, process))
            yield Served(url, client, process, data)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _healthy(client: httpx.Client, url: str, process: subprocess.Popen[str]) -> bool:
    assert process.poll() is None, process.communicate()[0]
    try:
        return client.get(f"{url}/healthz").text == "ok\n"
    except httpx.TransportError:
        return False


def post(served: Served, doc: dict[str, object]) -> dict[str, object]:
    answer = served.client.post(f"{served.url}/validate", content=body(doc),
                                headers={"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    problems = answer_problems(answer.json(), str(doc["request"]["uid"]))  # type: ignore[index]
    assert problems == []
    response: dict[str, object] = answer.json()["response"]
    return response


def test_the_webhook_admits_a_clean_pod_and_refuses_a_vulnerable_one_over_https(
    served: Served,
) -> None:
    assert post(served, pod_review("shop:1.4")) == {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "allowed": True,
    }
    refused = post(served, pod_review("miner:2"))
    assert refused["allowed"] is False
    assert refused["status"] == {
        "code": 403,
        "reason": "Forbidden",
        "message": "container web (miner:2): [Garrison] Container operation blocked by policy: "
        "no critical, has 1 vulnerability, [critical:1]",
    }
    deployment = load("deployment_create.json")
    assert post(served, deployment) == {"uid": deployment["request"]["uid"], "allowed": True}

    not_a_review = served.client.post(f"{served.url}/validate", content=b'{"kind": "Pod"}')
    assert not_a_review.status_code == 400
    assert status_errors(not_a_review.json()) == []
    assert not_a_review.json()["message"].startswith("not an AdmissionReview v1 request: ")

    with pytest.raises(httpx.TransportError):
        httpx.get(served.url.replace("https", "http") + "/healthz", timeout=5.0)

    served.client.close()  # as the API server's client does when the webhook says goodbye
    served.process.send_signal(signal.SIGTERM)
    output, _ = served.process.communicate(timeout=30)
    assert served.process.returncode == 0, output
    assert f"admission webhook on {served.url}/validate (unscanned images: admit)" in output
    assert "Traceback" not in output
    with Console.open(served.data) as console:
        audits = {(a.imageName, a.type, a.effect) for a in console.list_audits()}
    assert ("miner:2", "vulnerability", "block") in audits
    assert ("shop:1.4", "vulnerability", "allow") in audits


def test_a_certificate_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    cert, _key = self_signed(tmp_path)
    data = private_dir(tmp_path / "data")
    ran = garrison("admission", "serve", "--address", f"127.0.0.1:{free_port()}", "--cert",
                   cert, "--key", tmp_path / "missing.key", "--data-dir", data)  # fmt: skip
    assert_refused_in_one_line(ran, "no such file", "missing.key")
