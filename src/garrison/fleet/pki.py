"""The console's certificate authority: the one trust anchor of the fleet's mutual TLS.

The console makes the CA once and keeps it in its store (``garrison.fleet.castore``: replicas
of the console share it), or, standalone, in a folder of its own (``create``/``load``: the key
0600, like every file Garrison keeps). Where the revoked serials are kept is the CA's
``Revocations``: the store's table, or a JSON file in the folder.

A host makes its own key and a certificate request (``make_host_request``); only the request
travels, so a host's private key never leaves it. The console signs the request into a client
certificate whose common name is the host's name — the identity the console later reads back
from the handshake (``ConsoleCA.check_peer``).

What the CA signs comes from the CA, not from the request: only the request's public key and
its common name are taken; extensions a request asks for are ignored, so a host cannot ask for
a CA certificate or a server one. Keys it accepts: EC P-256 or P-384, or RSA of 2048 bits or
more — what current TLS guidance (NIST SP 800-57, BSI TR-02102) still counts as strong.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from garrison.errors import InvalidInput, StoreError
from garrison.fleet._files import read, write_private
from garrison.fleet._revoked import Revoked, RevokedSerials
from garrison.fleet.tls import Peer, check_peer
from garrison.store.datadir import secure_data_dir

CA_KEY = "ca-key.pem"
CA_CERT = "ca.pem"
REVOKED = "revoked.json"
CA_VALIDITY = timedelta(days=3652)
CLIENT_VALIDITY = timedelta(days=365)
SERVER_VALIDITY = timedelta(days=365)
# Clocks of hosts and console differ a little: a certificate is valid from a few minutes back.
BACKDATE = timedelta(minutes=5)
# RFC 1123 labels: letters, digits and inner hyphens, 1 to 63 of them; fullmatch, since "$"
# would let a final newline through.
LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_HOST_NAME = 253  # a DNS name's limit
MAX_COMMON_NAME = 64  # RFC 5280's ub-common-name: a longer host name fits no certificate
EC_CURVES = (ec.SECP256R1, ec.SECP384R1)
MIN_RSA_BITS = 2048
HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Credentials:
    """A certificate and its private key, PEM: what one end of the mutual TLS presents."""

    cert_pem: bytes
    key_pem: bytes

    def save(self, directory: Path, name: str) -> tuple[Path, Path]:
        """``<name>.pem`` and ``<name>-key.pem`` in ``directory`` (made owner-only when it is
        new, repaired when it is not); their paths, for ``server_context``/``client_context``."""
        secure_data_dir(directory)
        cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        write_private(key, self.key_pem)
        write_private(cert, self.cert_pem)
        return cert, key


@dataclass(frozen=True)
class HostRequest:
    """What a host makes to enrol: its private key (stays on the host) and the certificate
    request for its name (goes to the console)."""

    key_pem: bytes
    csr_pem: bytes


def check_host_name(name: str) -> str:
    """``name`` when it is a valid host name (RFC 1123: dot-separated labels of letters,
    digits and inner hyphens, at most 253 characters, no final dot); InvalidInput if not."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_HOST_NAME:
        raise InvalidInput(f"host name {str(name)[:64]!r}: 1 to {MAX_HOST_NAME} characters")
    if not all(LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidInput(
            f"host name {name[:64]!r}: letters, digits, '-' and '.' only, in labels of 1 to 63 "
            "that neither start nor end with '-'"
        )
    return name


def make_host_request(host: str) -> HostRequest:
    """A new EC P-256 key for ``host`` and a request signed with it (InvalidInput for a host
    name no certificate can carry)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _certifiable(host))])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return HostRequest(_key_pem(key), csr.public_bytes(serialization.Encoding.PEM))


class Revocations(Protocol):
    """Where a CA's revoked serials are kept (the store, or a file in the CA's folder)."""

    def revoke(self, serial: int, when: datetime, host: str = "") -> bool:
        """False when ``serial`` was revoked already."""
        ...

    def is_revoked(self, serial: int) -> bool: ...

    def entries(self) -> list[Revoked]:
        """Oldest first."""
        ...


class ConsoleCA:
    """The console's CA: its key, its certificate and its revocations. ``castore.open_ca``
    opens the store's; ``create`` and ``load`` one in a folder (``directory``; None for the
    store's)."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        revocations: Revocations,
        directory: Path | None = None,
    ) -> None:
        self.directory = directory
        self.cert = cert
        self._key = key
        self._revoked = revocations

    @classmethod
    def make(cls, revocations: Revocations, name: str = "Garrison console CA") -> ConsoleCA:
        """A new CA (EC P-256, ten years), saved nowhere: ``credentials`` are what to keep."""
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(key, _self_signed(key, name), revocations)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, revocations: Revocations) -> ConsoleCA:
        """The CA of these PEM (as ``credentials`` gave them); InvalidInput when one is
        corrupt or the key is not the certificate's."""
        key = _parse_key(key_pem, "the console CA's key")
        cert = _parse_cert(cert_pem, "the console CA's certificate")
        if cert.public_key() != key.public_key():
            raise InvalidInput("the console CA's key is not its certificate's")
        return cls(key, cert, revocations)

    @classmethod
    def create(cls, directory: Path, name: str = "Garrison console CA") -> ConsoleCA:
        """A new CA (EC P-256, ten years) saved in ``directory``; StoreError when one is
        there already — a CA is never overwritten, or every host would lose its console."""
        secure_data_dir(directory)
        made = cls.make(RevokedSerials(directory / REVOKED), name)
        write_private(directory / CA_KEY, made.credentials().key_pem, overwrite=False)
        write_private(directory / CA_CERT, made.cert_pem)
        RevokedSerials.create(directory / REVOKED)
        return cls(made._key, made.cert, made._revoked, directory)

    @classmethod
    def load(cls, directory: Path) -> ConsoleCA:
        """The CA saved in ``directory``; StoreError when a file is missing or unreadable,
        InvalidInput when one is corrupt or the key is not the certificate's."""
        if not directory.is_dir():
            raise StoreError(f"no console CA in {directory}: not a directory")
        secure_data_dir(directory)
        key = _load_key(directory / CA_KEY)
        cert = _load_cert(directory / CA_CERT)
        if cert.public_key() != key.public_key():
            raise InvalidInput(f"{directory / CA_KEY} is not the key of {directory / CA_CERT}")
        ca = cls(key, cert, RevokedSerials(directory / REVOKED), directory)
        ca.revoked()  # a missing or corrupt list fails here, not at the first handshake
        return ca

    def credentials(self) -> Credentials:
        """The CA's own certificate and key, PEM: what a store keeps of it."""
        return Credentials(self.cert_pem, _key_pem(self._key))

    @property
    def cert_pem(self) -> bytes:
        """The CA's certificate: what both ends trust (``server_context``, ``client_context``)."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server(
        self,
        dns_names: Sequence[str],
        ip_addresses: Sequence[str | IPAddress] = (),
        *,
        valid_for: timedelta = SERVER_VALIDITY,
    ) -> Credentials:
        """A key and certificate for the console itself, valid for these names and addresses
        (``localhost``, ``127.0.0.1``…); InvalidInput for a bad name or address."""
        names = [x509.DNSName(check_host_name(n)) for n in dns_names]
        addresses = [x509.IPAddress(_ip(a)) for a in ip_addresses]
        if not names and not addresses:
            raise InvalidInput("a server certificate needs at least one DNS name or IP address")
        key = ec.generate_private_key(ec.SECP256R1())
        cn = _certifiable(dns_names[0]) if dns_names else str(addresses[0].value)
        builder = self._leaf(
            cn, key.public_key(), _now(), valid_for, ExtendedKeyUsageOID.SERVER_AUTH
        )
        builder = builder.add_extension(x509.SubjectAlternativeName([*names, *addresses]), False)
        return Credentials(self._sign(builder), _key_pem(key))

    def issue_client(
        self,
        csr_pem: bytes,
        *,
        host: str | None = None,
        valid_for: timedelta = CLIENT_VALIDITY,
        not_before: datetime | None = None,
    ) -> bytes:
        """A client certificate (PEM) for the host that made ``csr_pem``, named by the
        request's common name (which must be ``host`` when given), with a random serial.

        InvalidInput when the request is malformed, its signature does not verify, its key is
        weak or its name is not a host name. ``not_before`` (default: now) and ``valid_for``
        give the validity; it never outlasts the CA's."""
        csr = _load_csr(csr_pem)
        name = _request_host(csr)
        if host is not None and name != host:
            raise InvalidInput(f"certificate request names {name!r}, not the host {host!r}")
        start = _now() if not_before is None else not_before.astimezone(UTC)
        builder = self._leaf(
            name, _strong_key(csr), start, valid_for, ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        return self._sign(builder)

    def check_peer(self, peer: Peer) -> str:
        """The host name of a peer that has just finished its handshake with
        ``server_context``; PeerRefused when its certificate is revoked (or, checked again
        here, not this CA's, out of its validity or not a client's)."""
        return check_peer(peer, self.cert, self.is_revoked)

    def revoke(self, serial: int, host: str = "") -> bool:
        """Revoke the certificate with ``serial`` (issued to ``host``); False when it was
        revoked already."""
        return self._revoked.revoke(serial, _now(), host)

    def is_revoked(self, serial: int) -> bool:
        """Whether ``serial`` is revoked, as the store or the list on disk says now (another
        process may have revoked it since this CA was loaded)."""
        return self._revoked.is_revoked(serial)

    def revoked(self) -> list[Revoked]:
        """The revoked serials, oldest first."""
        return self._revoked.entries()

    def crl_pem(self, next_update: timedelta = timedelta(days=7)) -> bytes:
        """The revoked serials as a CRL signed by the CA, for peers that load one."""
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now)
            .next_update(now + next_update)
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
        )
        for entry in self.revoked():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(entry.serial)
                .revocation_date(entry.when)
                .build()
            )
        crl = builder.sign(self._key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM)

    def _leaf(
        self,
        cn: str,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
        start: datetime,
        valid_for: timedelta,
        usage: x509.ObjectIdentifier,
    ) -> x509.CertificateBuilder:
        end = min(start + valid_for, self.cert.not_valid_after_utc)
        if end <= start:
            raise InvalidInput(f"validity {valid_for} ends before it starts")
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - BACKDATE)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(self._authority_key_id(), critical=False)
        )

    def _sign(self, builder: x509.CertificateBuilder) -> bytes:
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())


def _self_signed(key: ec.EllipticCurvePrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a leaf signs its TLS handshakes (ECDHE: no key is
    ever encrypted to it)."""
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def check_request(csr_pem: bytes, host: str) -> None:
    """What ``ConsoleCA.issue_client`` checks of a request, without signing: InvalidInput when
    it is malformed, not signed by its key, of a weak key or hash, or for another host."""
    csr = _load_csr(csr_pem)
    name = _request_host(csr)
    if name != host:
        raise InvalidInput(f"certificate request names {name!r}, not the host {host!r}")
    _strong_key(csr)


def _load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A request, PEM or DER, whose signature verifies (proof that its sender has the key)."""
    try:
        pem = data.lstrip().startswith(b"-----BEGIN")
        csr = x509.load_pem_x509_csr(data) if pem else x509.load_der_x509_csr(data)
        valid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"not a certificate request: {exc}") from exc
    if not valid:
        raise InvalidInput("certificate request refused: its signature does not verify")
    return csr


def _request_host(csr: x509.CertificateSigningRequest) -> str:
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise InvalidInput("certificate request refused: it must name one host (one CN)")
    return _certifiable(names[0].value)


def _strong_key(
    csr: x509.CertificateSigningRequest,
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The request's key when it is one the CA certifies, and signed with a strong hash (a
    request signed with SHA-1 is no proof its sender holds the key)."""
    key = _allowed_key(csr.public_key())
    if not isinstance(csr.signature_hash_algorithm, HASHES):
        raise InvalidInput("certificate request refused: signed with a weak or unknown hash")
    return key


def _allowed_key(key: CertificatePublicKeyTypes) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, EC_CURVES):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise InvalidInput(
        "certificate request refused: its key must be EC P-256 or P-384, "
        f"or RSA of at least {MIN_RSA_BITS} bits"
    )


def _certifiable(host: str) -> str:
    if len(check_host_name(host)) > MAX_COMMON_NAME:
        raise InvalidInput(
            f"host name {host[:64]!r}…: a certificate holds at most {MAX_COMMON_NAME} characters"
        )
    return host


def _ip(address: str | IPAddress) -> IPAddress:
    try:
        return ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidInput(f"not an IP address: {str(address)[:64]!r}") from exc


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return _parse_key(read(path, "the CA's key"), str(path))


def _parse_key(data: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"{where}: not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"{where}: not an EC private key")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    return _parse_cert(read(path, "the CA's certificate"), str(path))


def _parse_cert(data: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise InvalidInput(f"{where}: not a PEM certificate") from exc


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime:
    return datetime.now(UTC)
