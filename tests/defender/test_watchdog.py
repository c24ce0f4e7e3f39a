"""The watchdog against the real engine: a defender that stops answering the kernel — stopped
by SIGSTOP, or spinning in its verdict thread — holds no container. The watchdog kills it (the
kernel then lets the waiting execs through), audits the stall, and a new defender adopts the
containers. And ``garrison status`` says when no defender runs, with a non-zero exit."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    audits,
    deny_nc,
    garrison,
    put_rules,
    wait_audits,
    watched,
)
from tests.support import WAIT, exec_ok, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

DENY_NC = deny_nc("wd-*")

# 2000 execs, each of a file never run before: the kernel asks the defender about every one
# (a file judged once may be skipped by the kernel from then on).
LOOP = (
    "i=0; while [ $i -lt 2000 ]; do cp /bin/true /tmp/t$i && /tmp/t$i && rm /tmp/t$i;"
    " i=$((i + 1)); done; touch /tmp/loop-done"
)


def threads(pid: int) -> str:
    """Each thread of ``pid`` with its state and what it waits on."""
    lines = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        with contextlib.suppress(OSError):
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            comm = (task / "comm").read_text().strip()
            lines.append(f"  {pid}/{task.name} {comm} {stat} {(task / 'wchan').read_text()}")
    return "\n".join(lines)


def stuck(container: Any) -> str:
    """What the container's processes wait on, for a failure's message."""
    container.reload()
    lines = []
    for pid in container.top(ps_args="-o pid")["Processes"] or []:
        with contextlib.suppress(OSError):
            wchan = Path(f"/proc/{pid[0]}/wchan").read_text()
            cmd = Path(f"/proc/{pid[0]}/cmdline").read_text().replace("\0", " ")
            lines.append(f"{pid[0]} {wchan} {cmd}")
    return "\n".join(lines)


def kernel_stacks(pid: int) -> str:
    """The kernel stacks of ``pid``'s threads and of every process waiting on fanotify."""
    tasks = list(Path(f"/proc/{pid}/task").glob("*"))
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if "fanotify" in (proc / "wchan").read_text():
                tasks.append(proc)
    lines = []
    for task in tasks:
        with contextlib.suppress(OSError):
            lines.append(f"{task} {(task / 'comm').read_text().strip()}")
            lines.append((task / "stack").read_text())
    return "\n".join(lines)


def waiting(container: Any) -> bool:
    """Does a process of the container wait for a fanotify permission answer?"""
    return "fanotify_handle_event" in stuck(container)


def exec_in_thread(container: Any, cmd: list[str]) -> Callable[[], tuple[int, float]]:
    """Start ``docker exec`` now; the returned call waits for its exit status and duration."""
    result: list[tuple[int, float]] = []
    start = time.monotonic()

    def run() -> None:
        code, _ = container.exec_run(cmd)
        result.append((code, time.monotonic() - start))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> tuple[int, float]:
        thread.join(WAIT)
        assert result, f"docker exec {cmd} still waits after {WAIT:.0f} s:\n{stuck(container)}"
        return result[0]

    return join


def stall_audits(defender: DefenderProcess) -> list[Any]:
    return [a for a in audits(defender, type="defender") if a.attackType == "defender_stalled"]


def readopted(defender: DefenderProcess, container: Any, old_pid: int) -> bool:
    status = defender.status()
    return status.get("pid") not in (None, old_pid) and container.id in status.get("watching", [])


def assert_stall_ended(defender: DefenderProcess, container: Any, stalled_pid: int) -> None:
    """The loop ends, a docker exec started during the stall returns, the stall is audited
    and a new defender watches the container."""
    join = exec_in_thread(container, ["/bin/true"])
    try:
        code, seconds = join()
    except AssertionError:
        print(defender.log.read_text()[-20000:])
        raise
    assert code == 0
    print(f"docker exec during the stall returned after {seconds:.2f} s")
    wait_for(
        "the 2000-exec loop to end",
        lambda: container.exec_run(["test", "-e", "/tmp/loop-done"])[0] == 0,
    )
    (audit,) = wait_for("the stall's audit", lambda: stall_audits(defender))
    assert audit.effect == "allow"
    assert audit.pid == stalled_pid
    assert "stopped answering" in audit.msg
    wait_for(
        "a new defender watching the container", lambda: readopted(defender, container, stalled_pid)
    )
    watchdog = defender.status()["watchdog"]
    assert (watchdog["stalls"], watchdog["restarts"]) == (1, 1)
    assert watchdog["last"]["pid"] == stalled_pid


@pytest.mark.parametrize("rules", [None, DENY_NC], ids=["default-policy", "prevent-rule"])
def test_a_stopped_defender_is_killed_and_its_execs_go_on(
    start_defender: Start, run_container, rules: str | None
) -> None:
    defender = start_defender(learning="1h")
    if rules:
        put_rules(defender, rules)
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="wd-stop"))
    pid = defender.status()["pid"]
    assert pid != defender.proc.pid  # the defender is the watchdog's child
    deb.exec_run(["sh", "-c", LOOP], detach=True)
    wait_for("the loop to run", lambda: deb.exec_run(["sh", "-c", "ls /tmp/t*"])[0] == 0)
    os.kill(pid, signal.SIGSTOP)
    assert_stall_ended(defender, deb, pid)
    if rules:  # the new defender enforces the rule again
        code, output = deb.exec_run(["/usr/bin/nc", "-h"])
        assert code != 0, output
        wait_audits(defender, "the prevent audit of nc", container=deb.id, effect="prevent")


def test_a_defender_spinning_in_its_verdict_thread_is_killed(
    start_defender: Start, run_container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_TEST_HOOKS", "1")  # SIGUSR2: the verdict threads spin
    defender = start_defender(learning="1h")
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="wd-spin"))
    pid = defender.status()["pid"]
    os.kill(pid, signal.SIGUSR2)
    deb.exec_run(["sh", "-c", LOOP], detach=True)
    assert_stall_ended(defender, deb, pid)


def test_status_says_not_running_after_a_clean_stop_and_after_sigkill(
    start_defender: Start, tmp_path
) -> None:
    data = str(tmp_path / "data")
    defender = start_defender(learning="1h")
    running = garrison("status", "--data-dir", data)
    assert running.returncode == 0, running.stdout + running.stderr
    assert "defender running" in running.stdout

    pid = defender.status()["pid"]
    defender.stop(signal.SIGTERM)
    stopped = garrison("status", "--data-dir", data)
    assert stopped.returncode == 1
    assert "not running" in stopped.stdout
    assert "stopped cleanly" in stopped.stdout

    defender = start_defender(learning="1h")
    pid = defender.status()["pid"]
    defender.stop(signal.SIGKILL)  # the watchdog, and the defender with it
    wait_for("the defender to die with its watchdog", lambda: not os.path.exists(f"/proc/{pid}"))
    gone = garrison("status", "--data-dir", data, "--json")
    assert gone.returncode == 1
    assert f"pid {pid} gone" in gone.stdout


def test_a_stopped_defender_killed_from_outside_lets_its_waiting_execs_through(
    start_defender: Start, run_container
) -> None:
    """Not the watchdog's kill: the defender's own exit must release its groups in an order
    that cannot deadlock (the permission group before the notification groups)."""
    deb = run_container(DEBIAN, ["sleep", "3600"], name="wd-crash")
    # Adopts the running container; a stall timeout long enough that the kill below is ours.
    defender = start_defender(learning="1h", args=["--stall-timeout", "20s"])
    watched(defender, deb)
    pid = defender.status()["pid"]
    exec_ok(deb, ["cp", "/bin/true", "/usr/local/bin/never-run"])
    os.kill(pid, signal.SIGSTOP)
    join = exec_in_thread(deb, ["/usr/local/bin/never-run"])
    wait_for("the exec to wait for the stopped defender", lambda: waiting(deb), timeout=15)
    os.kill(pid, signal.SIGKILL)
    try:
        code, _ = join()
    except AssertionError:
        print(kernel_stacks(pid))
        raise
    assert code == 0
    wait_for("a new defender watching it", lambda: readopted(defender, deb, pid))
    assert defender.status()["watchdog"]["crashes"] == 1
