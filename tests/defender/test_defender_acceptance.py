"""The defender against the real engine: learning, anomalies, adoption, restarts, SIGKILL.

Each test runs ``garrison run`` as a child process with a short learning period and reads
what it stored through the console, as a user would with ``garrison models|audits``.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.console import Console
from garrison.console.models import matches
from tests.defender.conftest import BOTH_RUNTIMES, DefenderProcess
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]
NGINX = "garrison-test/nginx:latest"


def model_of(defender: DefenderProcess, image: str) -> dict[str, Any] | None:
    def show(console: Console) -> dict[str, Any] | None:
        return next((m for m in console.store.load_models() if matches(m, image)), None)

    found: dict[str, Any] | None = defender.console_call(show)
    return found


def active_model(defender: DefenderProcess, image: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        model = model_of(defender, image)
        return model if model and model["state"] == "active" else None

    found: dict[str, Any] = wait_for(f"the model of {image} to turn active", probe)
    return found


def audits(defender: DefenderProcess, **query: Any) -> list[Audit]:
    found: list[Audit] = defender.console_call(
        lambda c: c.list_audits(AuditFilter(limit=0, **query))
    )
    return found


def wait_audit(defender: DefenderProcess, what: str, **query: Any) -> list[Audit]:
    found: list[Audit] = wait_for(what, lambda: audits(defender, **query))
    return found


@BOTH_RUNTIMES
def test_nginx_learns_its_processes_port_and_written_dirs(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")  # ended below, once all is learned: no race
    web = run_container("garrison-test/nginx:latest", name="learn-web")
    wait_for("nginx to answer", lambda: web.exec_run(["curl", "-sf", "http://127.0.0.1/"])[0] == 0)
    exec_ok(web, ["sh", "-c", "echo x > /var/log/nginx/extra.log"])

    def learned() -> bool:
        model = model_of(defender, NGINX) or {}
        written = any(p.startswith("/var/log/nginx") for p in model.get("writtenPaths", []))
        return written and bool(model.get("listening"))

    wait_for("the port and the write in the model", learned)
    defender.console_call(lambda c: c.learn_stop(NGINX))
    model = active_model(defender, NGINX)
    paths = {p["path"] for p in model["processes"]}
    assert "/usr/sbin/nginx" in paths
    assert {"port": 80, "protocol": "tcp"} in model["listening"]
    assert any(p.startswith("/var/log/nginx") for p in model["writtenPaths"])


@BOTH_RUNTIMES
def test_unknown_process_after_learning_is_one_audit(start_defender: Start, run_container) -> None:
    defender = start_defender(learning="3s")
    deb = run_container("garrison-test/debian:12", ["sleep", "3600"], name="learned-deb")
    active_model(defender, "garrison-test/debian:12")
    deb.exec_run(["/usr/bin/nc", "-h"])

    def anomalies() -> list[Audit]:
        found = audits(defender, container="learned-deb", type="processes")
        return [a for a in found if a.attackType == "unexpectedProcess"]

    found = wait_for("the nc audit", anomalies)
    assert len(found) == 1
    audit = found[0]
    assert audit.attackType == "unexpectedProcess"
    assert audit.processPath == "/usr/bin/nc"
    assert audit.command == "/usr/bin/nc -h"
    assert audit.user == "root"
    assert audit.containerName == "learned-deb"
    assert audit.containerId == deb.id
    assert audit.imageName == "garrison-test/debian:12"
    assert audit.imageId == deb.image.id
    assert audit.effect == "alert"
    assert audit.count == 1
    assert audit.msg == "/usr/bin/nc launched but is not found in the runtime model"


def test_a_learned_file_run_by_another_of_its_names_is_not_unexpected(
    start_defender: Start, run_container
) -> None:
    """/bin/sh is dash: learned as /usr/bin/dash, it is the same process when called /bin/sh."""
    defender = start_defender(learning="1h")  # ended below, once dash is learned
    deb = run_container("garrison-test/debian:12", ["sleep", "3600"], name="learned-dash")
    wait_for("the container to be watched", lambda: deb.id in defender.status().get("watching", []))
    exec_ok(deb, ["/usr/bin/dash", "-c", "exit 0"])

    def dash_learned() -> bool:
        model = model_of(defender, "garrison-test/debian:12") or {}
        return "/usr/bin/dash" in {p["path"] for p in model.get("processes", [])}

    wait_for("dash in the model", dash_learned)
    defender.console_call(lambda c: c.learn_stop("garrison-test/debian:12"))
    active_model(defender, "garrison-test/debian:12")
    exec_ok(deb, ["/bin/sh", "-c", "exit 0"])
    deb.exec_run(["/usr/bin/nc", "-h"])  # after it: an exec that is unexpected

    def unexpected() -> list[str]:
        found = audits(defender, container="learned-dash", type="processes")
        return [a.processPath for a in found if a.attackType == "unexpectedProcess"]

    wait_for("the nc audit", lambda: "/usr/bin/nc" in unexpected())
    assert unexpected() == ["/usr/bin/nc"]


def test_a_tool_on_a_bind_mount_is_audited_after_learning(
    start_defender: Start, run_container, tmp_path: Path
) -> None:
    """Off the root file system the fanotify sensor sees nothing: the process events source
    (BPF tracepoints here) reports it after the fact."""
    shutil.copy("/usr/bin/sleep", tmp_path / "tool")
    defender = start_defender(learning="3s")
    assert defender.status()["sensors"]["processes"]["source"] == "bpf"
    deb = run_container(
        "garrison-test/debian:12",
        ["sleep", "3600"],
        name="mounted-tool",
        volumes={str(tmp_path): {"bind": "/opt/tools", "mode": "ro"}},
    )
    active_model(defender, "garrison-test/debian:12")
    exec_ok(deb, ["/opt/tools/tool", "0.2"])

    def tool_audits() -> list[Audit]:
        found = audits(defender, container="mounted-tool", type="processes")
        return [a for a in found if a.processPath == "/opt/tools/tool"]

    (audit,) = wait_for("the mounted tool's audit", tool_audits)
    assert (audit.attackType, audit.command) == ("unexpectedProcess", "/opt/tools/tool 0.2")


def test_busybox_applet_is_audited_by_the_name_it_was_called(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="3s")
    box = run_container("garrison-test/busybox:latest", ["sleep", "3600"], name="learn-box")
    active_model(defender, "garrison-test/busybox:latest")
    box.exec_run(["/bin/sh", "-c", "/bin/nc -h; true"], user="nobody")

    def nc_audits() -> list[Audit]:
        found = audits(defender, container="learn-box", type="processes")
        return [
            a for a in found if a.processPath == "/bin/nc" and a.attackType == "unexpectedProcess"
        ]

    nc = wait_for("the busybox nc audit", nc_audits)
    assert len(nc) == 1, nc
    assert nc[0].user == "nobody"
    assert nc[0].command == "/bin/nc -h"


def test_every_short_exec_is_recorded_while_learning(start_defender: Start, run_container) -> None:
    defender = start_defender(learning="1h")
    deb = run_container("garrison-test/debian:12", ["sleep", "3600"], name="storm")
    wait_for("the container to be watched", lambda: defender.status().get("containers"))
    script = "for i in $(seq 1 500); do /usr/bin/true arg-$i; done"
    exec_ok(deb, ["bash", "-c", script])

    def true_count() -> int:
        model = model_of(defender, "garrison-test/debian:12") or {"processes": []}
        return next((p["count"] for p in model["processes"] if p["path"] == "/usr/bin/true"), 0)

    wait_for("500 execs of /usr/bin/true in the model", lambda: true_count() >= 500)
    assert true_count() == 500
    # The kernel skipped /usr/bin/true after its first exec (the BPF process events recorded
    # the others at the exec itself): learning did not cost a round trip per exec.
    sensors = defender.status()["sensors"]
    assert sensors["exec"]["extra"].get("always_ignored", 0) >= 1
    assert sensors["processes"]["events"] >= 400


def test_new_port_connection_and_directory_are_audited_after_learning(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="3s")
    deb = run_container("garrison-test/debian:12", ["sleep", "3600"], name="after-learn")
    active_model(defender, "garrison-test/debian:12")
    server = (
        "import socket,time;s=socket.socket();"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        "s.bind(('127.0.0.1',9000));s.listen();c,_=s.accept();time.sleep(3)"
    )
    client = "import socket,time;c=socket.create_connection(('127.0.0.1',9000));time.sleep(3)"
    deb.exec_run(["python3", "-c", server], detach=True)
    wait_audit(defender, "the listening audit", container="after-learn", type="network")
    deb.exec_run(["python3", "-c", client], detach=True)
    exec_ok(deb, ["bash", "-c", "mkdir -p /opt/new && echo x > /opt/new/file"])

    def kinds() -> set[str]:
        return {a.attackType for a in audits(defender, container="after-learn")}

    wanted = {"unexpectedListeningPort", "unexpectedOutboundPort", "unexpectedFileWrite"}
    wait_for(f"audits {wanted}", lambda: wanted <= kinds())
    net = audits(defender, container="after-learn", type="network")
    assert any("9000" in a.msg for a in net)
    # The mkdir's audit names /opt; the write's, from another sensor thread, may come later.
    files = lambda: audits(defender, container="after-learn", type="filesystem")  # noqa: E731
    wait_for("the audit of /opt/new/file", lambda: any("/opt/new" in a.msg for a in files()))


def test_adoption_and_restart_keep_models_and_audits(
    start_defender: Start, run_container, tmp_path
) -> None:
    box = run_container("garrison-test/busybox:latest", ["sleep", "3600"], name="adopted")
    first = start_defender(learning="3s", data_dir=tmp_path / "keep")
    wait_for("the adopted container", lambda: first.status().get("containers", 0) >= 1)
    model = active_model(first, "garrison-test/busybox:latest")
    assert "/bin/sleep" in {p["path"] for p in model["processes"]}
    box.exec_run(["/bin/sh", "-c", "/bin/nc -h; true"])
    wait_audit(first, "the first audit", container="adopted", type="processes")
    assert first.stop() == 0

    second = start_defender(learning="3s", data_dir=tmp_path / "keep")
    assert model_of(second, "garrison-test/busybox:latest")["state"] == "active"
    assert audits(second, container="adopted")
    box.exec_run(["/bin/sh", "-c", "/bin/cat /etc/hostname"])

    def cat_audits() -> list[Audit]:
        return [a for a in audits(second, container="adopted") if a.processPath == "/bin/cat"]

    assert len(wait_for("the /bin/cat audit after the restart", cat_audits)) == 1


def test_dockerd_restart_is_survived(start_defender: Start, engine, run_container) -> None:
    defender = start_defender(learning="3s")
    box = run_container(
        "garrison-test/busybox:latest", ["sleep", "3600"], name="survivor",
        restart_policy={"Name": "always"},
    )  # fmt: skip
    active_model(defender, "garrison-test/busybox:latest")
    before = defender.status()["tracker"]["reconnects"]
    engine.restart()
    wait_for(
        "the tracker to reconnect", lambda: defender.status()["tracker"]["reconnects"] > before
    )
    box.reload()

    def audited_again() -> list[Audit]:
        """nc once more each time: the restarted container may not be watched yet."""
        box.exec_run(["/bin/sh", "-c", "/bin/nc -h; true"])
        return audits(defender, container="survivor")

    wait_for("an audit after the dockerd restart", audited_again)


def test_sigkill_of_the_defender_never_hangs_an_exec_loop(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    deb = run_container("garrison-test/debian:12", ["sleep", "3600"], name="killed-mid-loop")
    wait_for("the container to be watched", lambda: defender.status().get("containers"))
    # /bin/sh is dash by another name: never skipped by the kernel, each exec waits on a
    # verdict (a learned /usr/bin/true would be skipped after its first exec).
    loop = "for i in $(seq 1 2000); do /bin/sh -c :; done; echo done"
    exec_id = deb.client.api.exec_create(deb.id, ["bash", "-c", loop])["Id"]
    stream = deb.client.api.exec_start(exec_id, stream=True)
    wait_for("the loop to be seen", lambda: defender.status()["events"]["verdicts"] > 50)
    defender.stop(signal.SIGKILL)
    output = b"".join(stream)
    assert output.strip().endswith(b"done")
    assert deb.client.api.exec_inspect(exec_id)["ExitCode"] == 0
