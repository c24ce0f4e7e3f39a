"""A host joining its console, once (``enrol``), and its link to it at every start
(``open_link``).

Enrolment trusts the console the way ``kubeadm join`` does: the operator copies, with the
one-time token, the SHA-256 of the console CA's certificate. The host fetches that
certificate over TLS without checking it, keeps it only if its digest is the one given, then
speaks to the console trusting that CA alone — a man in the middle can neither pass another CA
off nor read the token. The host makes its key and sends only a certificate request.

What the host keeps, in ``DATA_DIR/console`` (owner-only): ``ca.pem``, ``host.pem`` and
``host-key.pem``, ``console.json`` (the console's URL and the host's name), and the link's
state (``LocalState``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from garrison.console.spool import AuditSpool
from garrison.errors import ConfigError, InvalidInput
from garrison.fleet import wire
from garrison.fleet._files import read, write_private
from garrison.fleet.client import TIMEOUT, ConsoleClient, check_url
from garrison.fleet.link import SYNC_WAIT, RemoteLink
from garrison.fleet.local import FOLDER, LocalState
from garrison.fleet.pki import Credentials, check_host_name, make_host_request
from garrison.fleet.tls import client_context
from garrison.store.datadir import secure_data_dir

log = logging.getLogger(__name__)

CA_FILE = "ca.pem"
IDENTITY = "host"  # host.pem, host-key.pem
JOINED = "console.json"


def ca_digest(ca_pem: bytes) -> str:
    """The SHA-256 (hex) of the CA certificate's DER: what an operator copies to a host."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def joined(data_dir: Path) -> dict[str, str] | None:
    """The console and host name this data folder enrolled with; None before enrolment."""
    path = Path(data_dir) / FOLDER / JOINED
    if not path.exists():
        return None
    doc = json.loads(read(path, "the host's enrolment"))
    return {"url": str(doc["url"]), "host": str(doc["host"])}


def enrol(data_dir: Path, url: str, token: str, ca_sha256: str, host: str) -> str:
    """Enrol this host with the console at ``url``: its name as the console knows it.
    InvalidInput when the console's CA is not the one named, ConsoleRefused when the console
    refuses the token, ConsoleAway when it does not answer."""
    check_url(url)
    name = check_host_name(host)
    want = ca_sha256.lower().removeprefix("sha256:")
    ca_pem = _fetch_ca(url)
    if ca_digest(ca_pem) != want:
        raise InvalidInput(
            f"the console at {url} has another CA than the one named (sha256 {want[:16]}…)"
        )
    request = make_host_request(name)
    client = ConsoleClient(url, _trusting(ca_pem))
    try:
        answer = client.post(wire.ENROL_HOSTS, {"token": token, "host": name,
                                                "csr": request.csr_pem.decode()})  # fmt: skip
    finally:
        client.close()
    folder = Path(data_dir) / FOLDER
    secure_data_dir(folder)
    write_private(folder / CA_FILE, ca_pem)
    Credentials(str(answer["cert"]).encode(), request.key_pem).save(folder, IDENTITY)
    write_private(folder / JOINED, json.dumps({"url": url, "host": name}).encode())
    log.info("enrolled with %s as %s", url, name)
    return name


def _fetch_ca(url: str) -> bytes:
    """The CA certificate the console offers, not yet trusted (checked by its digest)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client = ConsoleClient(url, context)
    try:
        answer = client.get(wire.ENROL_CA)
    finally:
        client.close()
    try:
        return str(answer["ca"]).encode()
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"{url} answered no CA certificate") from exc


def _trusting(ca_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    return context


def open_link(data_dir: Path, url: str) -> RemoteLink:
    """The link of this enrolled host to its console; ConfigError when the host has not
    enrolled with ``url``."""
    found = joined(data_dir)
    if found is None:
        raise ConfigError(
            f"this host has not enrolled with a console (no {FOLDER}/{JOINED} in the data "
            "folder): give --enrol-token and --console-ca-sha256"
        )
    if found["url"].rstrip("/") != url.rstrip("/"):
        raise ConfigError(f"this host enrolled with {found['url']}, not {url}")
    folder = Path(data_dir) / FOLDER
    ca_pem = read(folder / CA_FILE, "the console CA")
    cert, key = folder / f"{IDENTITY}.pem", folder / f"{IDENTITY}-key.pem"

    def client(timeout: float = TIMEOUT) -> ConsoleClient:
        return ConsoleClient(url, client_context(cert, key, ca_pem), timeout)

    spool = AuditSpool.in_dir(Path(data_dir))
    watch_client = client(SYNC_WAIT + TIMEOUT)  # the console holds its syncs up to SYNC_WAIT
    return RemoteLink(client(), client(), watch_client, LocalState.in_dir(Path(data_dir)), spool)
