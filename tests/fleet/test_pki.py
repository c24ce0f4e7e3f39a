"""The console CA: what it makes and keeps on disk (owner-only, never overwritten, refused
clearly when missing or corrupt), what it signs (only strong keys, from requests that verify,
for valid host names, with what the CA decides rather than what the request asks) and what it
revokes (a list that survives a reload, and a CRL that verifies)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from garrison.errors import InvalidInput, StoreError
from garrison.fleet import ConsoleCA, check_host_name, make_host_request

SHA256 = hashes.SHA256()
LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True)
HOST_NAMES = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
SHORT_HOST_NAMES = HOST_NAMES.filter(lambda n: len(n) <= 64)
ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
FORBIDDEN = st.characters(codec="utf-8").filter(lambda c: c not in ALLOWED)


def request_with(
    key: object,
    name: str | None = "web-1",
    *,
    names: int = 1,
    algorithm: hashes.HashAlgorithm | None = SHA256,
) -> bytes:
    """A request built by hand (``make_host_request`` refuses what these tests need)."""
    cn = [] if name is None else [x509.NameAttribute(NameOID.COMMON_NAME, name)] * names
    if isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = None
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(cn))
    signed = csr.sign(key, algorithm)  # type: ignore[arg-type]
    return signed.public_bytes(serialization.Encoding.PEM)


def load(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the CA on disk ---------------------------------------------------------------------------


def test_the_ca_folder_and_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ca = ConsoleCA.create(tmp_path / "ca")
    finally:
        os.umask(old)
    assert mode(ca.directory) == 0o700
    assert {p.name: mode(p) for p in ca.directory.iterdir()} == {
        "ca-key.pem": 0o600,
        "ca.pem": 0o600,
        "revoked.json": 0o600,
    }


def test_the_ca_certificate_is_a_ten_year_ca_that_signs_only_certificates_and_crls(
    ca: ConsoleCA,
) -> None:
    cert = ca.cert
    cert.verify_directly_issued_by(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert (constraints.critical, constraints.value.ca, constraints.value.path_length) == (
        True,
        True,
        0,
    )
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (True, True, False)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3660)


def test_a_loaded_ca_signs_what_the_saved_certificate_verifies(ca: ConsoleCA) -> None:
    loaded = ConsoleCA.load(ca.directory)
    issued = load(loaded.issue_client(make_host_request("web-1").csr_pem))
    issued.verify_directly_issued_by(ca.cert)
    assert loaded.cert_pem == ca.cert_pem


def test_creating_a_ca_where_one_exists_fails_and_keeps_the_old_key(ca: ConsoleCA) -> None:
    key = (ca.directory / "ca-key.pem").read_bytes()
    with pytest.raises(StoreError, match="exists already"):
        ConsoleCA.create(ca.directory)
    assert (ca.directory / "ca-key.pem").read_bytes() == key
    assert [p.name for p in ca.directory.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("missing", ["ca-key.pem", "ca.pem", "revoked.json"])
def test_a_ca_folder_missing_a_file_is_refused_in_one_line_naming_it(
    ca: ConsoleCA, missing: str
) -> None:
    (ca.directory / missing).unlink()
    with pytest.raises(StoreError) as refused:
        ConsoleCA.load(ca.directory)
    assert missing in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_ca_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no console CA"):
        ConsoleCA.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ca-key.pem", b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"),
        ("ca.pem", b"garbage"),
        ("revoked.json", b"{not json"),
        ("revoked.json", b'{"revoked": [{"serial": "zz", "revoked": "2026-01-01T00:00:00Z"}]}'),
        ("revoked.json", b'{"revoked": [{"serial": "1f", "revoked": "2026-01-01T00:00:00"}]}'),
        ("revoked.json", b'["1f"]'),
    ],
)
def test_a_corrupt_ca_file_is_refused_in_one_line_naming_it(
    ca: ConsoleCA, name: str, content: bytes
) -> None:
    (ca.directory / name).write_bytes(content)
    with pytest.raises(InvalidInput) as refused:
        ConsoleCA.load(ca.directory)
    assert name in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_key_that_is_not_the_certificates_is_refused(ca: ConsoleCA, tmp_path: Path) -> None:
    other = ConsoleCA.create(tmp_path / "other")
    (ca.directory / "ca-key.pem").write_bytes((other.directory / "ca-key.pem").read_bytes())
    with pytest.raises(InvalidInput, match="is not the key of"):
        ConsoleCA.load(ca.directory)


def test_loading_closes_a_ca_folder_someone_opened_up(ca: ConsoleCA) -> None:
    os.chmod(ca.directory, 0o755)
    os.chmod(ca.directory / "ca-key.pem", 0o644)
    ConsoleCA.load(ca.directory)
    assert (mode(ca.directory), mode(ca.directory / "ca-key.pem")) == (0o700, 0o600)


# -- issuing ----------------------------------------------------------------------------------


def test_a_client_certificate_names_the_host_and_serves_only_client_authentication(
    ca: ConsoleCA,
) -> None:
    request = make_host_request("web-1.prod")
    cert = load(ca.issue_client(request.csr_pem))
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web-1.prod"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    key = serialization.load_pem_private_key(request.key_pem, password=None)
    assert cert.public_key() == key.public_key()
    lifetime = cert.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=364) < lifetime <= timedelta(days=365)


def test_each_certificate_gets_its_own_random_serial(ca: ConsoleCA) -> None:
    csr = make_host_request("web-1").csr_pem
    serials = {load(ca.issue_client(csr)).serial_number for _ in range(20)}
    assert len(serials) == 20
    assert min(serials).bit_length() > 64  # random_serial_number: 159 bits, seldom fewer


def test_the_validity_is_configurable_and_never_outlasts_the_ca(ca: ConsoleCA) -> None:
    csr = make_host_request("web-1").csr_pem
    week = load(ca.issue_client(csr, valid_for=timedelta(days=7)))
    assert week.not_valid_after_utc - datetime.now(UTC) <= timedelta(days=7)
    forever = load(ca.issue_client(csr, valid_for=timedelta(days=100_000)))
    assert forever.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_a_request_may_be_tied_to_the_host_the_console_expects(ca: ConsoleCA) -> None:
    csr = make_host_request("web-1").csr_pem
    assert load(ca.issue_client(csr, host="web-1")).subject.rfc4514_string() == "CN=web-1"
    with pytest.raises(InvalidInput, match="not the host 'db-1'"):
        ca.issue_client(csr, host="db-1")


def test_extensions_a_request_asks_for_are_not_granted(ca: ConsoleCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web-1")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    cert = load(ca.issue_client(csr.public_bytes(serialization.Encoding.PEM)))
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_the_console_certificate_carries_its_names_and_addresses(ca: ConsoleCA) -> None:
    credentials = ca.issue_server(["localhost", "console.example"], ["127.0.0.1", "::1"])
    cert = load(credentials.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "console.example"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


@pytest.mark.parametrize(
    ("dns", "ips", "why"),
    [([], [], "at least one"), (["bad_name"], [], "host name"), ([], ["300.1.1.1"], "IP")],
)
def test_a_console_certificate_needs_valid_names(
    ca: ConsoleCA, dns: list[str], ips: list[str], why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        ca.issue_server(dns, ips)


# -- requests refused -------------------------------------------------------------------------


def test_a_request_whose_bytes_were_changed_after_signing_is_refused(ca: ConsoleCA) -> None:
    """The host name is rewritten in the signed bytes: the request still parses, but its
    signature no longer verifies."""
    pem = make_host_request("web-1").csr_pem
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    assert load(ca.issue_client(der)).subject.rfc4514_string() == "CN=web-1"  # DER is taken
    tampered = der.replace(b"web-1", b"web-2")
    assert tampered != der
    with pytest.raises(InvalidInput, match="signature does not verify"):
        ca.issue_client(tampered)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(rsa.generate_private_key(65537, 1024), id="rsa-1024"),
        pytest.param(ec.generate_private_key(ec.SECP224R1()), id="ec-p224"),
        pytest.param(ec.generate_private_key(ec.SECP256K1()), id="ec-secp256k1"),
        pytest.param(ed25519.Ed25519PrivateKey.generate(), id="ed25519"),
    ],
)
def test_a_request_with_a_key_outside_the_allowed_ones_is_refused(
    ca: ConsoleCA, key: object
) -> None:
    with pytest.raises(InvalidInput, match="its key must be"):
        ca.issue_client(request_with(key))


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(rsa.generate_private_key(65537, 2048), id="rsa-2048"),
        pytest.param(ec.generate_private_key(ec.SECP256R1()), id="ec-p256"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
    ],
)
def test_a_request_with_an_allowed_key_is_signed(ca: ConsoleCA, key: object) -> None:
    load(ca.issue_client(request_with(key))).verify_directly_issued_by(ca.cert)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "not a certificate request"),
        (b"-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n", "not"),
        (request_with(ec.generate_private_key(ec.SECP256R1()), None), "one host"),
        (request_with(ec.generate_private_key(ec.SECP256R1()), names=2), "one host"),
        (request_with(rsa.generate_private_key(65537, 2048), algorithm=hashes.SHA224()), "weak"),
    ],
)
def test_a_request_that_is_malformed_names_no_single_host_or_a_weak_hash_is_refused(
    ca: ConsoleCA, data: bytes, why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        ca.issue_client(data)


# -- host names ---------------------------------------------------------------------------------


@given(HOST_NAMES.filter(lambda n: len(n) <= 253))
def test_every_rfc1123_host_name_is_accepted(name: str) -> None:
    assert check_host_name(name) == name


@given(SHORT_HOST_NAMES)
def test_a_host_is_certified_under_exactly_the_name_it_asked_for(
    shared_ca: ConsoleCA, name: str
) -> None:
    cert = load(shared_ca.issue_client(make_host_request(name).csr_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name


@given(HOST_NAMES, FORBIDDEN, st.integers(min_value=0))
def test_a_name_with_any_other_character_is_refused(name: str, bad: str, at: int) -> None:
    at %= len(name) + 1
    with pytest.raises(InvalidInput, match="host name"):
        check_host_name(name[:at] + bad + name[at:])


@given(HOST_NAMES, st.sampled_from(["-{}", "{}-", ".{}", "{}.", "{}..x"]))
def test_a_name_with_an_empty_label_or_a_label_edged_with_a_hyphen_is_refused(
    name: str, shape: str
) -> None:
    with pytest.raises(InvalidInput, match="host name"):
        check_host_name(shape.format(name))


def test_names_too_long_are_refused() -> None:
    label = "a" * 63
    assert check_host_name(".".join([label] * 3) + ".b" * 31)  # 253 characters
    for name in [".".join([label] * 4), "a" * 64 + ".example", ""]:
        with pytest.raises(InvalidInput, match="host name"):
            check_host_name(name)
    with pytest.raises(InvalidInput, match="at most 64"):
        make_host_request("a" * 60 + ".example")  # a host name, but too long for a CN


@given(SHORT_HOST_NAMES, FORBIDDEN, st.integers(min_value=0))
def test_a_request_for_an_invalid_host_name_is_refused_by_the_ca(
    shared_ca: ConsoleCA, name: str, bad: str, at: int
) -> None:
    name = name[: 64 - len(bad.encode())]  # a CN holds 64 bytes of UTF-8
    at %= len(name) + 1
    bad_name = name[:at] + bad + name[at:]
    with pytest.raises(InvalidInput):
        shared_ca.issue_client(request_with(_REQUEST_KEY, bad_name))


_REQUEST_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def shared_ca(tmp_path_factory: pytest.TempPathFactory) -> ConsoleCA:
    """One CA for every example of a property test (a function's fixture is not reset
    between examples, and hypothesis refuses one)."""
    return ConsoleCA.create(tmp_path_factory.mktemp("shared") / "ca")


# -- revocation ---------------------------------------------------------------------------------


def test_a_revocation_is_kept_across_a_reload_and_only_once(ca: ConsoleCA) -> None:
    serial = load(ca.issue_client(make_host_request("web-1").csr_pem)).serial_number
    assert not ca.is_revoked(serial)
    assert ca.revoke(serial)
    assert not ca.revoke(serial)
    reloaded = ConsoleCA.load(ca.directory)
    assert reloaded.is_revoked(serial)
    assert [r.serial for r in reloaded.revoked()] == [serial]
    assert mode(ca.directory / "revoked.json") == 0o600
    assert sorted(p.name for p in ca.directory.iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "revoked.json",
    ]


def test_a_revoked_list_that_went_missing_is_an_error_not_an_empty_list(ca: ConsoleCA) -> None:
    ca.revoke(1234)
    (ca.directory / "revoked.json").unlink()
    with pytest.raises(StoreError, match="revoked serials"):
        ca.is_revoked(1234)


def test_the_crl_is_signed_by_the_ca_and_lists_the_revoked_serials(ca: ConsoleCA) -> None:
    serials = [load(ca.issue_client(make_host_request(h).csr_pem)).serial_number for h in "ab"]
    ca.revoke(serials[0])
    crl = x509.load_pem_x509_crl(ca.crl_pem())
    assert crl.is_signature_valid(ca.cert.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.cert.subject
    assert crl.get_revoked_certificate_by_serial_number(serials[0]) is not None
    assert crl.get_revoked_certificate_by_serial_number(serials[1]) is None
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > datetime.now(UTC)
