"""Mutual TLS between the console and its hosts, both ends trusting only the console's CA.

The server demands a client certificate (TLS 1.2 or later) signed by the CA; the client checks
the console's certificate against the same CA and its address, and presents its own. Neither
end trusts the system's CAs: a certificate from a public CA is not a host of this fleet.

Python's ``ssl`` loads CRLs into a context once and never reloads them, and a console runs for
months. So revocation is checked after the handshake: the server calls ``check_peer`` on each
new connection, which reads the revoked serials as they are now. A revoked host completes the
handshake, then is refused before it is heard.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from garrison.errors import GarrisonError, InvalidInput, StoreError

Peer = ssl.SSLSocket | ssl.SSLObject | bytes


class PeerRefused(GarrisonError):
    """A peer finished the TLS handshake but may not talk to the console: no certificate, or
    one that is revoked, not the CA's, expired or not a client's."""


def server_context(cert_file: Path, key_file: Path, ca_pem: bytes) -> ssl.SSLContext:
    """The console's context: its certificate and key, and only clients the CA signed.

    StoreError when a file cannot be read, InvalidInput when it holds no usable key or
    certificate."""
    context = _context(True, cert_file, key_file, ca_pem)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(cert_file: Path, key_file: Path, ca_pem: bytes) -> ssl.SSLContext:
    """A host's context: it presents its certificate, and talks only to a console whose
    certificate the CA signed for the name or address it dials (``server_hostname``)."""
    context = _context(False, cert_file, key_file, ca_pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def peer_certificate(peer: Peer) -> x509.Certificate:
    """The certificate a peer presented (DER, or read from its TLS socket or object);
    PeerRefused when it presented none or it does not parse."""
    der = peer if isinstance(peer, bytes) else peer.getpeercert(binary_form=True)
    if not der:
        raise PeerRefused("peer refused: it presented no certificate")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise PeerRefused("peer refused: its certificate does not parse") from exc


def peer_serial(peer: Peer) -> int:
    """The serial of the certificate a peer presented."""
    return peer_certificate(peer).serial_number


def check_peer(peer: Peer, ca_cert: x509.Certificate, is_revoked: Callable[[int], bool]) -> str:
    """The host name (common name) of ``peer``; PeerRefused when its certificate is revoked.

    The handshake has checked the rest, but it is checked again — signed by ``ca_cert``,
    within its validity, for client authentication — so that a certificate reaching here by
    another way than a handshake cannot name a host either."""
    cert = peer_certificate(peer)
    _check_issued(cert, ca_cert)
    if is_revoked(cert.serial_number):
        raise PeerRefused(f"peer refused: certificate {cert.serial_number:x} is revoked")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise PeerRefused("peer refused: its certificate names no host")
    return names[0].value


def _check_issued(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PeerRefused("peer refused: its certificate is not the console CA's") from exc
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise PeerRefused("peer refused: its certificate is not valid now")
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise PeerRefused("peer refused: its certificate is not for a client")


def _context(server: bool, cert_file: Path, key_file: Path, ca_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # RFC 5280 checks OpenSSL skips by default (Python 3.13 sets this for its defaults too).
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise InvalidInput(f"{cert_file}, {key_file}: not a certificate and its key") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {cert_file} or {key_file}: {exc.strerror or exc}") from exc
    try:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:  # UnicodeDecodeError, or no data at all
        raise InvalidInput("the console CA's certificate is not PEM") from exc
    return context
