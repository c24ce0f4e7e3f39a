"""The console's CA in its store (what replicas share), on SQLite, PostgreSQL and the fake: made
once and opened alike from any data folder; an older console's CA folder imported once, with
its revoked serials, and left as it was; a serial revoked through one replica refused by the
others; a token for several hosts enrolling each name once, a one-use token enrolling a host
again."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from garrison.errors import InvalidInput
from garrison.fleet import ConsoleCA, PeerRefused, TokenRefused, make_host_request
from garrison.fleet.castore import StoreRevocations
from garrison.fleet.server import open_ca
from garrison.fleet.service import FleetService


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def issued(ca: ConsoleCA, host: str) -> bytes:
    return ca.issue_client(make_host_request(host).csr_pem)


def der(cert_pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)


def serial(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number


def test_the_first_console_makes_the_ca_in_the_store_and_every_replica_opens_it(
    store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="garrison.fleet.castore"):
        first = open_ca(store, tmp_path / "replica-1")
    assert "stored a new console CA" in caplog.text
    second = open_ca(store, tmp_path / "replica-2")
    assert second.cert_pem == first.cert_pem
    assert second.credentials() == first.credentials()
    assert first.directory is None
    assert not (tmp_path / "replica-1").exists(), "nothing of the CA in the data folder"
    host = issued(first, "node-1")
    assert second.check_peer(der(host)) == "node-1"


def test_an_older_consoles_ca_folder_is_imported_once_and_left_as_it_was(
    store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = ConsoleCA.create(tmp_path / "data" / "ca")
    kept = issued(old, "node-1")
    revoked = issued(old, "node-2")
    assert old.revoke(serial(revoked))
    before = files(old.directory)
    with caplog.at_level(logging.INFO, logger="garrison.fleet.castore"):
        ca = open_ca(store, tmp_path / "data")
    assert f"stored the console CA of {tmp_path / 'data' / 'ca'}" in caplog.text
    assert ca.cert_pem == old.cert_pem, "its hosts keep their certificates"
    assert ca.check_peer(der(kept)) == "node-1"
    with pytest.raises(PeerRefused, match="revoked"):
        ca.check_peer(der(revoked))
    assert [r.serial for r in ca.revoked()] == [serial(revoked)]
    assert files(old.directory) == before
    (tmp_path / "data" / "ca" / "ca.pem").unlink()  # the folder is no longer read
    assert open_ca(store, tmp_path / "data").cert_pem == old.cert_pem


def test_a_serial_revoked_through_one_replica_is_refused_by_another(store, tmp_path: Path) -> None:
    one, other = open_ca(store, tmp_path / "r1"), open_ca(store, tmp_path / "r2")
    cert = issued(one, "node-1")
    assert other.check_peer(der(cert)) == "node-1"
    assert one.revoke(serial(cert), "node-1")
    assert not other.revoke(serial(cert), "node-1")
    with pytest.raises(PeerRefused, match="revoked"):
        other.check_peer(der(cert))
    (entry,) = store.list_revoked_serials()
    assert (entry.serial, entry.host) == (str(serial(cert)), "node-1")
    crl = x509.load_pem_x509_crl(other.crl_pem())
    assert crl.get_revoked_certificate_by_serial_number(serial(cert)) is not None


def enrol(service: FleetService, token: str, host: str) -> bytes:
    return service.enrol(token, host, make_host_request(host).csr_pem)


def test_a_token_for_several_hosts_enrols_each_name_once(store, tmp_path: Path) -> None:
    service = FleetService(store, open_ca(store, tmp_path))
    token, record = service.make_enrol_token(600.0, uses=3)
    enrol(service, token, "node-1")
    enrol(service, token, "node-2")
    with pytest.raises(TokenRefused, match="host node-1 is enrolled already"):
        enrol(service, token, "node-1")
    assert store.get_enrol_token(record.id).uses == 2, "the refusal spent no use"
    enrol(service, token, "node-3")
    with pytest.raises(TokenRefused, match="its 3 uses are spent"):
        enrol(service, token, "node-4")
    assert [h.name for h in store.list_hosts()] == ["node-1", "node-2", "node-3"]


def test_a_taken_name_is_told_only_to_whoever_holds_the_tokens_secret(
    store, tmp_path: Path
) -> None:
    service = FleetService(store, open_ca(store, tmp_path))
    token, _ = service.make_enrol_token(600.0, uses=3)
    enrol(service, token, "node-1")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(TokenRefused, match="unknown or wrong secret"):
        enrol(service, forged, "node-1")


def test_a_one_use_token_enrols_a_host_again_and_its_old_certificate_stops(
    store, tmp_path: Path
) -> None:
    service = FleetService(store, open_ca(store, tmp_path))
    first = enrol(service, service.make_enrol_token(600.0)[0], "node-1")
    again = enrol(service, service.make_enrol_token(600.0)[0], "node-1")
    assert service.authenticate(der(again)) == "node-1"
    with pytest.raises(PeerRefused, match="revoked or replaced"):
        service.authenticate(der(first))


def test_a_ca_row_whose_key_is_not_its_certificates_is_refused_in_one_line(
    store, tmp_path: Path
) -> None:
    mine = open_ca(store, tmp_path).credentials()
    other = ConsoleCA.create(tmp_path / "other").credentials()
    with pytest.raises(InvalidInput, match=r"^the console CA's key is not its certificate's$"):
        ConsoleCA.from_pem(mine.cert_pem, other.key_pem, StoreRevocations(store))
    with pytest.raises(InvalidInput, match="not a PEM certificate"):
        ConsoleCA.from_pem(b"junk", mine.key_pem, StoreRevocations(store))
