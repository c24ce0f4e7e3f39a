"""The correlation rules on plain audits: each chain is found in either order the sensors may
store it, and look-alikes that are not the chain are not."""

from __future__ import annotations

import itertools
from dataclasses import replace

from garrison.audit.record import Audit
from garrison.incidents.correlate import SCAN_PORTS, WINDOW, links, story_order

CID = "c" * 64
ids = itertools.count(1)


def audit(type_: str, attack: str, when: float = 1000.0, **fields: object) -> Audit:
    base: dict[str, object] = {
        "time": when, "hostname": "h", "type": type_, "attackType": attack, "effect": "alert",
        "msg": f"{attack} {fields}", "containerId": CID, "containerName": "web",
        "imageName": "img", "id": next(ids),
    }  # fmt: skip
    return Audit(**(base | fields))  # type: ignore[arg-type]


def write(path: str, when: float = 1000.0, attack: str = "executableCreation") -> Audit:
    return audit("filesystem", attack, when, filePath=path, processPath="/usr/bin/cp")


def run(path: str, when: float = 1001.0, attack: str = "driftBinary", **f: object) -> Audit:
    return audit("processes", attack, when, processPath=path, **f)


def connect(path: str, port: int, when: float = 1002.0, attack: str = "unexpectedOutboundPort"):
    return audit("network", attack, when, processPath=path, remoteIP="127.0.0.9", port=port)


def kinds(found) -> list[tuple[str, str]]:
    return [(link.kind, link.anchor) for link in found]


def test_a_binary_written_then_run_is_one_story_whichever_audit_is_stored_first() -> None:
    w, r = write("/tmp/x"), run("/tmp/x")
    for new, other in ((w, r), (r, w)):
        (link,) = links(new, [other])
        assert (link.kind, link.anchor) == ("writtenThenExecuted", "program:/tmp/x")
        assert link.audits == (w, r), "the write comes first"


def test_the_write_comes_first_even_when_its_sensor_read_it_after_the_exec() -> None:
    w, r = write("/tmp/x", when=1001.004), run("/tmp/x", when=1001.0)
    (link,) = links(r, [w])
    assert link.audits == (w, r)
    assert story_order([r, w]) == [w, r]


def test_drift_alone_is_written_then_run_and_a_write_alone_is_nothing() -> None:
    assert kinds(links(run("/tmp/x"), [])) == [("writtenThenExecuted", "program:/tmp/x")]
    assert links(write("/tmp/x"), []) == []
    assert links(write("/tmp/x"), [run("/tmp/y")]) == [], "another program"


def test_an_unknown_process_that_connects_out_is_one_story() -> None:
    r = run("/usr/bin/curl", attack="unexpectedProcess")
    c = connect("/usr/bin/curl", 4444)
    assert kinds(links(c, [r])) == [("processThenConnection", "program:/usr/bin/curl")]
    assert links(connect("/usr/bin/curl", 4444), []) == [], "a connection alone"
    assert links(connect("/usr/bin/wget", 4444), [r]) == [], "another program connected"


def test_a_written_binary_that_then_connects_out_stays_one_story_named_by_the_write() -> None:
    w, r, c = write("/tmp/x"), run("/tmp/x"), connect("/tmp/x", 4444)
    (link,) = links(c, [w, r])
    assert (link.kind, link.audits) == ("writtenThenExecuted", (w, r, c))


def test_a_miner_names_the_story_of_its_program() -> None:
    w, m = write("/tmp/xmrig"), run("/tmp/xmrig", attack="cryptoMiner")
    (link,) = links(m, [w, run("/tmp/xmrig")])
    assert link.kind == "cryptoMiner"
    assert kinds(links(run("/usr/bin/nmap", attack="lateralMovement"), [])) == [
        ("portScan", "program:/usr/bin/nmap")
    ]


def test_a_shell_started_by_a_server_is_one_but_not_by_a_launcher_or_a_shell() -> None:
    served = run("/bin/sh", attack="unexpectedProcess", parentPath="/usr/bin/python3.11")
    assert kinds(links(served, [])) == [("shellFromServer", "shell:/usr/bin/python3.11>/bin/sh")]
    for parent in ("", "/usr/bin/bash", "/usr/bin/dash", "/usr/bin/timeout", "/usr/bin/sudo"):
        plain = run("/bin/sh", attack="unexpectedProcess", parentPath=parent)
        assert links(plain, []) == [], parent
    assert (
        links(run("/usr/bin/id", attack="unexpectedProcess", parentPath="/usr/bin/node"), []) == []
    )


def test_connections_to_many_ports_within_a_minute_are_a_port_scan() -> None:
    probes = [connect("", 1000 + n, when=1000.0 + n) for n in range(SCAN_PORTS)]
    (link,) = links(probes[-1], probes[:-1])
    assert (link.kind, link.anchor, len(link.audits)) == ("portScan", "ports", SCAN_PORTS)
    assert links(probes[-1], probes[1:-1]) == [], "one port fewer"
    spread = [replace(p, time=1000.0 + 30 * n) for n, p in enumerate(probes)]
    assert links(spread[-1], spread[:-1]) == [], "over minutes, not a scan"
    same = [connect("", 80, when=1000.0 + n) for n in range(SCAN_PORTS * 2)]
    assert links(same[-1], same[:-1]) == [], "many connections to one port"


def test_audits_of_other_containers_far_in_time_or_of_no_container_are_not_partners() -> None:
    r = run("/tmp/x")
    assert links(write("/tmp/x"), [replace(r, containerId="d" * 64)]) == []
    assert links(write("/tmp/x", when=1001.0 + WINDOW + 1), [r]) == []
    assert links(replace(r, containerId=""), []) == []
    gate = audit("vulnerability", "vulnerability", containerId="")
    assert links(gate, []) == []


def test_an_audit_is_not_its_own_partner() -> None:
    w = write("/tmp/x")
    assert links(w, [w]) == []
