"""A host and its console over real mutual TLS on loopback, on SQLite and a real PostgreSQL:
audits arrive once with the host the certificate names, whatever is lost or restarted
between; rules and model commands reach the host and outlive the console's absence; blocks
are the host's own record first; and whoever may not talk to the console is refused."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.audit.query import AuditFilter
from garrison.errors import InvalidInput
from garrison.fleet import link as link_module
from garrison.fleet import wire
from garrison.fleet.client import ConsoleAway, ConsoleClient, ConsoleRefused
from garrison.fleet.join import enrol
from garrison.fleet.pki import ConsoleCA, make_host_request
from garrison.fleet.tls import client_context
from garrison.model.commands import ModelCommand
from garrison.runtime.base import RestartPolicy
from garrison.store.base import BlockedContainer
from tests.fleet.remote_support import Console, linked, listening
from tests.store.test_store_contract import audit
from tests.support import wait_for

RULES = {"rules": [{"name": "no-nc", "scope": [{"images": ["*"]}]}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    with listening(request, tmp_path) as made:
        yield made


def stored(console: Console, host: str = "") -> list[tuple[str, str, int]]:
    found = console.store.list_audits(AuditFilter(host=host, limit=0))
    return sorted((a.hostname, a.msg, a.count) for a in found)


def distinct(n: int, **fields: object) -> list:
    return [audit(time=1000.0 + i, msg=f"finding {i}", **fields) for i in range(n)]


def test_audits_arrive_once_named_by_the_certificate_not_the_body(console, tmp_path) -> None:
    assert console.enrol(tmp_path / "h1", "node-1") == "node-1"
    with linked(console, tmp_path / "h1") as link:
        for finding in distinct(3, hostname="someone-else"):
            link.report_audit(finding)
        assert link.flush(10)
        assert link.counters()["consoleConnected"] == 1
    assert stored(console) == [("node-1", f"finding {i}", 1) for i in range(3)]
    assert [h.name for h in console.store.list_hosts()] == ["node-1"]


def test_a_batch_sent_again_after_its_answer_was_lost_adds_nothing(console, tmp_path) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    folder = tmp_path / "h1" / "console"
    context = client_context(folder / "host.pem", folder / "host-key.pem",
                             (folder / "ca.pem").read_bytes())  # fmt: skip
    client = ConsoleClient(console.url, context)
    batch = {"epoch": "ab" * 8, "mark": 2, "audits": [wire.audit_doc(a) for a in distinct(2)]}
    try:
        assert client.post(wire.AUDITS, batch)["mark"] == 2
        assert client.post(wire.AUDITS, batch)["mark"] == 2  # the same batch again
        assert client.get(wire.AUDITS, {"epoch": "ab" * 8})["mark"] == 2
        assert client.get(wire.AUDITS, {"epoch": "cd" * 8})["mark"] == 0, "another epoch"
    finally:
        client.close()
    assert [count for _, _, count in stored(console)] == [1, 1]


def test_the_console_away_loses_nothing_and_the_host_says_it_is_away(console, tmp_path) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    with linked(console, tmp_path / "h1") as link:
        link.report_audit(audit(msg="before"))
        assert link.flush(10)
        console.stop()
        for finding in distinct(5):
            link.report_audit(finding)
        wait_for("the host to say the console is away",
                 lambda: link.counters()["consoleConnected"] == 0)  # fmt: skip
        assert link.counters()["pendingAudits"] == 5
        console.start()
        assert link.flush(20)
        assert link.counters()["consoleConnected"] == 1
    assert len(stored(console)) == 6
    assert all(count == 1 for _, _, count in stored(console))


KILLED_HOST = """
import os, sys
sys.path.insert(0, {root!r})
from garrison.fleet.join import open_link
from tests.store.test_store_contract import audit
link = open_link({data!r}, {url!r})
for i in range({start}, {stop}):
    link.report_audit(audit(time=1000.0 + i, msg=f"finding {{i}}"))
if {flush}:
    assert link.flush(20)
os._exit(9)  # as SIGKILL: nothing closed, nothing flushed
"""


def run_host(console: Console, data: Path, start: int, stop: int, flush: bool) -> None:
    code = KILLED_HOST.format(root=str(Path.cwd()), data=str(data), url=console.url,
                              start=start, stop=stop, flush=flush)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False, cwd=Path.cwd())  # fmt: skip
    assert done.returncode == 9, done.stderr


def test_a_host_killed_with_audits_unsent_sends_each_once_when_it_starts_again(
    console, tmp_path
) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    run_host(console, tmp_path / "h1", 0, 4, flush=True)  # sent, then killed
    console.stop()
    run_host(console, tmp_path / "h1", 4, 9, flush=False)  # spooled only, then killed
    console.start()
    with linked(console, tmp_path / "h1") as link:
        assert link.counters()["replayedAudits"] == 5
        assert link.flush(20)
        link.report_audit(audit(time=2000.0, msg="after"))  # numbered after the others
        assert link.flush(20)
    assert stored(console) == sorted(
        [("node-1", f"finding {i}", 1) for i in range(9)] + [("node-1", "after", 1)]
    )


def test_rules_reach_the_host_and_stay_in_force_across_a_restart_while_away(
    console, tmp_path
) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    with linked(console, tmp_path / "h1") as link:
        console.store.set_policy("runtime", RULES)
        wait_for("the rules on the host", lambda: link.get_policy("runtime") == RULES)
    console.stop()
    with linked(console, tmp_path / "h1") as again:  # a defender started while it is away
        assert again.get_policy("runtime") == RULES
        assert again.counters()["consoleConnected"] == 0


def test_model_commands_reach_each_host_once_and_not_hosts_enrolled_later(
    console, tmp_path
) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    command = console.store.add_model_command(ModelCommand("relearn", "p1", 0.0, time.time()))
    with linked(console, tmp_path / "h1") as link:
        wait_for("the command on the host", link.pending_model_commands)
        assert [c.id for c in link.pending_model_commands()] == [command.id]
        link.finish_model_commands([command.id])
        assert link.pending_model_commands() == []
        assert link.flush(10)
        assert console.store.pending_model_commands(host="node-1") == []
    console.enrol(tmp_path / "h2", "node-2")
    assert console.store.pending_model_commands(host="node-2") == []


def test_a_block_is_the_hosts_own_record_and_the_console_names_its_audit(console, tmp_path) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    record = BlockedContainer("c1" + "0" * 62, "web", "nginx", RestartPolicy("always"), None,
                              1000.0, state="pending")  # fmt: skip
    block_audit = audit(effect="block", msg="blocked")
    with linked(console, tmp_path / "h1") as link:
        link.begin_block(record, block_audit)
        assert [r.container_id for r in link.list_blocked()] == [record.container_id]
        assert link.flush(10)
        (kept,) = console.store.list_blocked(host="node-1")
        (blocking,) = console.store.list_audits(AuditFilter(effect="block"))
        assert (kept.host, kept.audit_id) == ("node-1", blocking.id)
        link.remove_blocked(record.container_id)
        assert link.flush(10)
    assert console.store.list_blocked() == []


def test_a_token_is_spent_by_its_first_use_and_the_ca_must_be_the_one_named(
    console, tmp_path
) -> None:
    token, digest = console.token(), console.digest()
    enrol(tmp_path / "h1", console.url, token, digest, "node-1")
    with pytest.raises(ConsoleRefused, match="used already"):
        enrol(tmp_path / "h2", console.url, token, digest, "node-2")
    with pytest.raises(InvalidInput, match="another CA"):
        enrol(tmp_path / "h3", console.url, console.token(), "00" * 32, "node-3")
    assert [h.name for h in console.store.list_hosts()] == ["node-1"]


def test_a_revoked_or_replaced_certificate_no_longer_opens_the_console(console, tmp_path) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    old = tmp_path / "h1" / "console"
    old_files = {n: (old / n).read_bytes() for n in ("host.pem", "host-key.pem", "ca.pem")}
    console.store.revoke_host("node-1", 2000.0)
    with linked(console, tmp_path / "h1") as link:
        link.report_audit(audit())
        assert not link.flush(3)
    assert stored(console) == []
    console.enrol(tmp_path / "h1-again", "node-1")  # enrolled anew: a new certificate
    stale = tmp_path / "stale"
    stale.mkdir()
    for name, data in old_files.items():
        (stale / name).write_bytes(data)
    context = client_context(stale / "host.pem", stale / "host-key.pem", old_files["ca.pem"])
    with (
        ConsoleClient(console.url, context) as client,
        pytest.raises(ConsoleRefused, match="revoked or replaced") as refused,
    ):
        client.get(wire.SYNC)
    assert refused.value.status == 401


def test_no_certificate_is_401_and_another_cas_is_refused_at_the_handshake(
    console, tmp_path
) -> None:
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cadata=console.service.ca.cert_pem.decode())
    with ConsoleClient(console.url, bare) as client, pytest.raises(ConsoleRefused) as refused:
        client.get(wire.SYNC)
    assert refused.value.status == 401
    other = ConsoleCA.create(tmp_path / "other-ca")
    request = make_host_request("intruder")
    folder = tmp_path / "intruder"
    folder.mkdir()
    (folder / "c.pem").write_bytes(other.issue_client(request.csr_pem))
    (folder / "k.pem").write_bytes(request.key_pem)
    context = client_context(folder / "c.pem", folder / "k.pem", console.service.ca.cert_pem)
    with ConsoleClient(console.url, context) as client, pytest.raises(ConsoleAway):
        client.get(wire.SYNC)  # the handshake fails: no HTTP answer at all


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b'{"epoch": "abababababababab", "mark": 1}', 400),
        (b'{"epoch": "nothex", "mark": 1, "audits": []}', 400),
        (b'{"epoch": "abababababababab", "mark": "1", "audits": []}', 400),
    ],
)
def test_a_bad_body_is_400_and_stores_nothing(console, tmp_path, body, status) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    folder = tmp_path / "h1" / "console"
    context = client_context(folder / "host.pem", folder / "host-key.pem",
                             (folder / "ca.pem").read_bytes())  # fmt: skip
    conn = http.client.HTTPSConnection("127.0.0.1", console.port, context=context, timeout=10)
    try:
        conn.request("POST", wire.AUDITS, body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        assert answer.status == status
        assert "error" in json.loads(answer.read())
    finally:
        conn.close()
    assert stored(console) == []


def test_a_bad_audit_in_a_batch_costs_itself_only(console, tmp_path) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    folder = tmp_path / "h1" / "console"
    context = client_context(folder / "host.pem", folder / "host-key.pem",
                             (folder / "ca.pem").read_bytes())  # fmt: skip
    good = [wire.audit_doc(a) for a in distinct(2)]
    bad = [dict(good[0], msg=["a list"]), dict(good[0], port="80"), {"time": 1.0}]
    with ConsoleClient(console.url, context) as client:
        answer = client.post(wire.AUDITS, {"epoch": "ab" * 8, "mark": 5, "audits": [*good, *bad]})
    assert answer == {"mark": 5, "refused": 3}
    assert len(stored(console)) == 2


def test_a_faulty_request_is_refused_and_leaves_its_token_unspent(console, tmp_path) -> None:
    token = console.token()
    other = make_host_request("someone-else").csr_pem.decode()
    with ConsoleClient(console.url, _trusting_console(console)) as client:
        for body in (
            {"token": token},
            {"token": token, "host": "h", "csr": "junk"},
            {"token": token, "host": "h", "csr": other},  # a request for another host
        ):
            with pytest.raises(ConsoleRefused) as refused:
                client.post(wire.ENROL_HOSTS, body)
            assert refused.value.status == 400
        mine = make_host_request("h").csr_pem.decode()
        with pytest.raises(ConsoleRefused, match="refused") as refused:
            client.post(wire.ENROL_HOSTS, {"token": "gse_x", "host": "h", "csr": mine})
        assert refused.value.status == 403
        assert console.store.list_hosts() == []
        answer = client.post(wire.ENROL_HOSTS, {"token": token, "host": "h", "csr": mine})
    assert "BEGIN CERTIFICATE" in answer["cert"], "the token still works"
    assert [h.name for h in console.store.list_hosts()] == ["h"]


def _trusting_console(console: Console) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=console.service.ca.cert_pem.decode())
    return context


def test_files_a_host_keeps_are_its_owners_alone(console, tmp_path) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    folder = tmp_path / "h1" / "console"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    for path in folder.iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    assert (folder / "host-key.pem").exists()


def test_a_model_saved_by_one_host_reaches_the_others_merged_one_model_of_both_hosts(
    console, tmp_path
) -> None:
    console.enrol(tmp_path / "h1", "node-1")
    console.enrol(tmp_path / "h2", "node-2")
    base = {"v": 1, "profileId": "p1", "state": "learning", "generation": 0}
    one = {**base, "processes": [], "listening": [{"protocol": "tcp", "port": 80}]}
    two = {**base, "processes": [], "listening": [{"protocol": "tcp", "port": 443}]}
    with linked(console, tmp_path / "h1") as first, linked(console, tmp_path / "h2") as second:
        assert second.load_models() == []
        first.save_models([one])
        assert first.flush(10)
        (seen,) = wait_for("the model on the other host", second.model_updates)
        assert seen["listening"] == [{"protocol": "tcp", "port": 80}]
        second.save_models([two])
        assert second.flush(10)
    (kept,) = console.store.load_models()
    assert [p["port"] for p in kept["listening"]] == [80, 443], "the image's one model: both"
    first_host, second_host = console.store.model_hosts("p1")
    assert (first_host.host, second_host.host) == ("node-1", "node-2"), "named by certificate"
    assert first_host.first_saved <= second_host.first_saved <= time.time()
    assert console.store.model_host_counts() == {"p1": 2}


def test_past_its_memory_bound_the_host_sends_from_its_spool_in_small_batches(
    console, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(link_module, "MAX_PENDING", 5)
    monkeypatch.setattr(link_module, "MAX_BATCH_BYTES", 2000)  # about three audits a batch
    console.enrol(tmp_path / "h1", "node-1")
    console.stop()
    with linked(console, tmp_path / "h1") as link:
        for finding in distinct(30):
            link.report_audit(finding)
        assert link.counters()["pendingAudits"] == 5, "the rest wait in the spool alone"
        console.start()
        assert link.flush(30)
    assert stored(console) == sorted(("node-1", f"finding {i}", 1) for i in range(30))
