"""Issue 18, the console as replicas: two ``garrison console serve --reuse-port`` processes on
one PostgreSQL, each with its own data folder, on the same API address and the same defender
address — no state outside the store. Both use the store's one CA; a host enrolled through the
shared address reports through it, each audit stored once; a host revoked with
``garrison hosts revoke`` is refused by each replica; with one replica stopped the host
reports on through the other. No Docker engine: the host is a ``RemoteLink`` in this process.

The tests run in the order of the file and share the replicas (module fixtures); each
replica's ports are the same, so "which replica answers" is made certain by stopping the other.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from garrison.fleet import wire
from garrison.fleet.client import ConsoleClient, ConsoleRefused
from garrison.fleet.join import enrol, open_link
from garrison.fleet.service import KNOWN_FOR
from garrison.fleet.tls import client_context
from tests.fleet.fleet_support import ConsoleProcess, Witness
from tests.pg import TEMPLATE, Cluster
from tests.store.test_store_contract import audit
from tests.support import free_port, wait_for

HOST = "node-1"


@dataclass
class Replicas:
    a: ConsoleProcess
    b: ConsoleProcess
    witness: Witness
    ca_of_a: bytes  # the CA certificate ``a`` gave while it was the only replica
    host_dir: Path

    @property
    def url(self) -> str:
        return self.a.url  # the shared defender address


def served_ca(url: str) -> bytes:
    """The CA certificate the replica answering ``url`` offers (not checked: a fresh
    connection, as a host's first)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with ConsoleClient(url, context) as client:
        return str(client.get(wire.ENROL_CA)["ca"]).encode()


@pytest.fixture(scope="module")
def replicas(postgres: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Replica ``a`` started alone (its CA read then), then ``b`` on the same ports; both
    stopped by pid at the end, whatever failed."""
    root = tmp_path_factory.mktemp("replicas")
    database = postgres.create_database(TEMPLATE)
    url = postgres.url(database)
    api, defender = free_port(), free_port()
    made = [
        ConsoleProcess(
            url, root / name, api, defender, root / f"{name}.log", extra=("--reuse-port",)
        )
        for name in ("a", "b")
    ]
    witness = Witness(url)
    try:
        made[0].start()
        ca_of_a = served_ca(made[0].url)
        made[1].start()
        yield Replicas(made[0], made[1], witness, ca_of_a, root / "host")
    finally:
        for replica in made:
            replica.stop()
            print(f"--- {replica.data_dir.name}\n{replica.log_text()[-3000:]}")
        witness.close()
        postgres.drop_database(database)


def only(replicas: Replicas, name: str) -> ConsoleProcess:
    """``name``'s replica the only one running: the other stopped (by pid), this one started
    when it was not."""
    keep, other = (replicas.a, replicas.b) if name == "a" else (replicas.b, replicas.a)
    other.stop()
    if keep.proc is None:
        keep.start()
    return keep


def both(replicas: Replicas) -> None:
    for replica in (replicas.a, replicas.b):
        if replica.proc is None:
            replica.start()


def report(replicas: Replicas, first: int, count: int, links: int = 1) -> None:
    """Audits ``first`` to ``first + count - 1`` reported by the host, over ``links`` links
    opened one after another (each its own connection: the kernel picks a replica for each)."""
    per_link = -(-count // links)
    for start in range(first, first + count, per_link):
        link = open_link(replicas.host_dir, replicas.url)
        try:
            for n in range(start, min(start + per_link, first + count)):
                link.report_audit(audit(time=1000.0 + n, msg=f"finding {n}"))
            assert link.flush(30), link.counters()
        finally:
            link.close(timeout=5.0)


def stored(replicas: Replicas) -> list[tuple[str, int]]:
    return sorted((a.msg, a.count) for a in replicas.witness.audits(HOST))


def findings(first: int, count: int) -> list[tuple[str, int]]:
    return sorted((f"finding {n}", 1) for n in range(first, first + count))


def refused(replicas: Replicas) -> bool:
    """Whether the replica answering refuses the host's certificate now."""
    folder = replicas.host_dir / "console"
    context = client_context(folder / "host.pem", folder / "host-key.pem",
                             (folder / "ca.pem").read_bytes())  # fmt: skip
    with ConsoleClient(replicas.url, context) as client:
        try:
            client.get(wire.SYNC)
        except ConsoleRefused as exc:
            return exc.status == 401
    return False


# -- the tests, in order ----------------------------------------------------------------------


def test_both_replicas_use_the_one_ca_of_the_store(replicas: Replicas) -> None:
    record = replicas.witness.store.get_console_ca()
    assert record is not None
    assert replicas.ca_of_a == record.cert_pem.encode()
    for replica in (replicas.a, replicas.b):
        assert (replica.data_dir / "listener" / "ca.pem").read_bytes() == replicas.ca_of_a
        assert not (replica.data_dir / "ca").exists(), "no CA of its own in its data folder"
    for _ in range(6):  # fresh connections, spread over both replicas
        assert served_ca(replicas.url) == replicas.ca_of_a


def test_a_host_enrolled_through_the_shared_address_reports_each_audit_once(
    replicas: Replicas,
) -> None:
    token = replicas.a.token()  # `garrison hosts token create` with a's data folder
    name = enrol(replicas.host_dir, replicas.url, token["token"], token["consoleCaSha256"], HOST)
    assert name == HOST
    report(replicas, 0, 20, links=5)
    assert stored(replicas) == findings(0, 20)
    assert [h.name for h in replicas.witness.store.list_hosts()] == [HOST]


def test_with_one_replica_stopped_the_host_reports_through_the_other(replicas: Replicas) -> None:
    link = open_link(replicas.host_dir, replicas.url)
    try:
        link.report_audit(audit(time=2000.0, msg="finding 20"))
        assert link.flush(30)
        only(replicas, "b")
        assert served_ca(replicas.url) == replicas.ca_of_a, "b's CA, b alone answering"
        for n in range(21, 30):
            link.report_audit(audit(time=1000.0 + n, msg=f"finding {n}"))
        assert link.flush(30), link.counters()
    finally:
        link.close(timeout=5.0)
    only(replicas, "a")
    report(replicas, 30, 5)  # and through a alone
    assert stored(replicas) == findings(0, 35)
    both(replicas)


def test_a_host_revoked_with_garrison_hosts_revoke_is_refused_by_each_replica(
    replicas: Replicas,
) -> None:
    assert not refused(replicas)
    done = replicas.a.cli("hosts", "revoke", HOST)
    assert done.returncode == 0, done.stderr
    time.sleep(KNOWN_FOR + 0.5)  # what a replica remembers of a certificate checked before
    for name in ("a", "b"):
        only(replicas, name)
        assert refused(replicas), f"replica {name} let the revoked host in"
    both(replicas)
    wait_for("a refusal with both replicas up", lambda: refused(replicas))
    (entry,) = replicas.witness.store.list_revoked_serials()
    assert entry.host == HOST
