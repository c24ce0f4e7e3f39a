"""Mutual TLS over real sockets on 127.0.0.1: the console (``server_context``) lets in a host
whose certificate its CA issued and reads the host's name from it; it refuses at the
handshake a client without a certificate, with one from another CA or with an expired one;
and, after the handshake, one whose certificate was revoked — even by another process.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from garrison.errors import InvalidInput, StoreError
from garrison.fleet import (
    ConsoleCA,
    Credentials,
    PeerRefused,
    client_context,
    make_host_request,
    peer_serial,
    server_context,
)
from tests.fleet.conftest import TIMEOUT, TlsServer

HostFiles = Callable[..., tuple[Path, Path]]


def talk(port: int, context: ssl.SSLContext, server_hostname: str = "127.0.0.1") -> bytes:
    """Connect, finish the handshake and read the server's first line (b"" when it hangs up)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(100)


def bare_client(ca: ConsoleCA) -> ssl.SSLContext:
    """A client that trusts the console's CA but has no certificate of its own."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca.cert_pem.decode())
    return context


def der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def serial_of(cert_file: Path) -> int:
    return x509.load_pem_x509_certificate(cert_file.read_bytes()).serial_number


def test_a_host_with_an_issued_certificate_is_let_in_under_its_name(
    console: TlsServer, ca: ConsoleCA, host_files: HostFiles
) -> None:
    context = client_context(*host_files("web-1.example"), ca.cert_pem)
    assert talk(console.port, context) == b"hello web-1.example\n"
    outcome = console.next_outcome()
    assert (outcome.kind, outcome.detail) == ("accepted", "web-1.example")


def test_the_console_is_reached_by_its_dns_name_too(
    console: TlsServer, ca: ConsoleCA, host_files: HostFiles
) -> None:
    context = client_context(*host_files(), ca.cert_pem)
    assert talk(console.port, context, server_hostname="localhost") == b"hello web-1\n"


def test_a_client_without_a_certificate_is_refused_at_the_handshake(
    console: TlsServer, ca: ConsoleCA
) -> None:
    # TLS 1.3: the client's half of the handshake ends before the server checks it, so the
    # refusal may reach the client at its first read rather than in wrap_socket.
    with pytest.raises(ssl.SSLError):
        talk(console.port, bare_client(ca))
    outcome = console.next_outcome()
    assert outcome.kind == "tls-refused"
    assert "CERTIFICATE" in outcome.detail.upper()


def test_a_client_certified_by_another_ca_is_refused_at_the_handshake(
    console: TlsServer, ca: ConsoleCA, tmp_path: Path
) -> None:
    other = ConsoleCA.create(tmp_path / "other-ca")
    request = make_host_request("web-1")
    files = Credentials(other.issue_client(request.csr_pem), request.key_pem).save(
        tmp_path / "intruder", "host"
    )
    with pytest.raises(ssl.SSLError):
        talk(console.port, client_context(*files, ca.cert_pem))
    outcome = console.next_outcome()
    assert outcome.kind == "tls-refused"
    assert "certificate verify failed" in outcome.detail


def test_an_expired_certificate_is_refused_at_the_handshake(
    console: TlsServer, ca: ConsoleCA, host_files: HostFiles
) -> None:
    month_ago = datetime.now(UTC) - timedelta(days=30)
    files = host_files("web-1", not_before=month_ago, valid_for=timedelta(days=1))
    with pytest.raises(ssl.SSLError):
        talk(console.port, client_context(*files, ca.cert_pem))
    outcome = console.next_outcome()
    assert outcome.kind == "tls-refused"
    assert "expired" in outcome.detail


def test_a_revoked_host_completes_tls_but_is_refused_by_check_peer(
    console: TlsServer, ca: ConsoleCA, host_files: HostFiles
) -> None:
    cert_file, key_file = host_files("web-1")
    context = client_context(cert_file, key_file, ca.cert_pem)
    assert talk(console.port, context) == b"hello web-1\n"
    assert console.next_outcome().kind == "accepted"
    assert ca.revoke(serial_of(cert_file))
    assert talk(console.port, context) == b""  # the console hangs up without a word
    outcome = console.next_outcome()
    assert outcome.kind == "peer-refused"
    assert "revoked" in outcome.detail


def test_a_revocation_by_another_process_reaches_the_live_console(
    console: TlsServer, ca: ConsoleCA, host_files: HostFiles
) -> None:
    """The console's CA object was loaded before the revocation; ``garrison`` revoking from
    the command line loads the folder afresh, as this second object does."""
    cert_file, key_file = host_files("web-1")
    context = client_context(cert_file, key_file, ca.cert_pem)
    assert talk(console.port, context) == b"hello web-1\n"
    assert console.next_outcome().kind == "accepted"
    ConsoleCA.load(ca.directory).revoke(serial_of(cert_file))
    assert talk(console.port, context) == b""
    assert console.next_outcome().kind == "peer-refused"


def test_revoking_one_host_leaves_the_others_in(
    console: TlsServer, ca: ConsoleCA, host_files: HostFiles
) -> None:
    revoked_cert, _ = host_files("web-1")
    ca.revoke(serial_of(revoked_cert))
    assert talk(console.port, client_context(*host_files("web-2"), ca.cert_pem)) == b"hello web-2\n"
    assert console.next_outcome().detail == "web-2"


def test_the_console_certificate_cannot_pass_for_a_host(
    console: TlsServer, ca: ConsoleCA, tmp_path: Path
) -> None:
    """Its extended key usage is serverAuth only: OpenSSL's purpose check refuses it."""
    files = ca.issue_server(["web-1"]).save(tmp_path / "posing", "host")
    with pytest.raises(ssl.SSLError):
        talk(console.port, client_context(*files, ca.cert_pem))
    assert console.next_outcome().kind == "tls-refused"


def test_a_host_refuses_a_console_certified_for_another_name(
    serve: Callable[[ssl.SSLContext], TlsServer],
    ca: ConsoleCA,
    host_files: HostFiles,
    tmp_path: Path,
) -> None:
    files = ca.issue_server(["console.example"]).save(tmp_path / "elsewhere", "console")
    server = serve(server_context(*files, ca.cert_pem))
    with pytest.raises(ssl.SSLCertVerificationError, match=r"127\.0\.0\.1"):
        talk(server.port, client_context(*host_files(), ca.cert_pem))
    assert server.next_outcome().kind == "tls-refused"


def test_a_host_refuses_a_console_certified_by_another_ca(
    serve: Callable[[ssl.SSLContext], TlsServer],
    ca: ConsoleCA,
    host_files: HostFiles,
    tmp_path: Path,
) -> None:
    other = ConsoleCA.create(tmp_path / "other-ca")
    files = other.issue_server(["localhost"], ["127.0.0.1"]).save(tmp_path / "fake", "console")
    server = serve(server_context(*files, ca.cert_pem))
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(server.port, client_context(*host_files(), ca.cert_pem))
    assert server.next_outcome().kind == "tls-refused"


def test_the_crl_is_one_openssl_enforces(
    serve: Callable[[ssl.SSLContext], TlsServer],
    ca: ConsoleCA,
    console_files: tuple[Path, Path],
    host_files: HostFiles,
    tmp_path: Path,
) -> None:
    """A context that loads ``crl_pem`` refuses the revoked host at the handshake itself, and
    still lets the other in: the CRL is well formed, signed and names the right serial."""
    revoked_cert, revoked_key = host_files("web-1")
    ca.revoke(serial_of(revoked_cert))
    crl_file = tmp_path / "crl.pem"
    crl_file.write_bytes(ca.crl_pem())
    context = server_context(*console_files, ca.cert_pem)
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    context.load_verify_locations(cafile=crl_file)
    server = serve(context)
    with pytest.raises(ssl.SSLError):
        talk(server.port, client_context(revoked_cert, revoked_key, ca.cert_pem))
    refused = server.next_outcome()
    assert (refused.kind, "revoked" in refused.detail) == ("tls-refused", True)
    assert talk(server.port, client_context(*host_files("web-2"), ca.cert_pem)) == b"hello web-2\n"


def test_peer_serial_reads_the_serial_from_a_live_tls_socket(
    serve: Callable[[ssl.SSLContext], TlsServer],
    ca: ConsoleCA,
    console_files: tuple[Path, Path],
    host_files: HostFiles,
) -> None:
    cert_file, key_file = host_files()
    server = serve(server_context(*console_files, ca.cert_pem))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as raw,
        client_context(cert_file, key_file, ca.cert_pem).wrap_socket(
            raw, server_hostname="127.0.0.1"
        ) as tls,
    ):
        assert peer_serial(tls) == peer_serial(der(console_files[0].read_bytes()))
        assert tls.recv(100) == b"hello web-1\n"
    assert server.next_outcome().kind == "accepted"


def test_check_peer_refuses_a_certificate_that_never_went_through_a_handshake(
    ca: ConsoleCA, tmp_path: Path
) -> None:
    """Called on bare DER, it still refuses what the handshake would have: another CA's,
    a server's, an expired one — so no caller can get a host name out of those."""
    other = ConsoleCA.create(tmp_path / "other-ca")
    foreign = other.issue_client(make_host_request("web-1").csr_pem)
    server = ca.issue_server(["web-1"]).cert_pem
    expired = ca.issue_client(
        make_host_request("web-1").csr_pem,
        not_before=datetime.now(UTC) - timedelta(days=30),
        valid_for=timedelta(days=1),
    )
    refusals = [
        (foreign, "not the console CA's"),
        (server, "not for a client"),
        (expired, "not valid now"),
    ]
    for pem, why in refusals:
        with pytest.raises(PeerRefused, match=why):
            ca.check_peer(der(pem))
    with pytest.raises(PeerRefused, match="no certificate"):
        ca.check_peer(b"")


@pytest.mark.parametrize("make", [server_context, client_context])
def test_a_context_from_missing_or_wrong_files_is_refused_in_one_line(
    make: Callable[[Path, Path, bytes], ssl.SSLContext],
    ca: ConsoleCA,
    console_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    cert_file, key_file = console_files
    with pytest.raises(StoreError, match="cannot read"):
        make(tmp_path / "missing.pem", key_file, ca.cert_pem)
    with pytest.raises(InvalidInput, match="not a certificate and its key"):
        make(key_file, cert_file, ca.cert_pem)  # swapped
    other_key = ca.issue_server(["localhost"]).key_pem
    (tmp_path / "other-key.pem").write_bytes(other_key)
    with pytest.raises(InvalidInput, match="not a certificate and its key"):
        make(cert_file, tmp_path / "other-key.pem", ca.cert_pem)
    for bad in [b"", b"garbage", b"\xff\xfe"]:
        with pytest.raises(InvalidInput, match="not PEM"):
            make(cert_file, key_file, bad)
