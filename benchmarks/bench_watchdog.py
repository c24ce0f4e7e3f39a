"""The watchdog: time from SIGSTOP of the defender to a waiting exec completing.

    sudo .venv/bin/python benchmarks/bench_watchdog.py [--trials 20] [--give-up 10]
        [--engine-dir DIR] [--json-out FILE]

``garrison run`` (a child process: the watchdog supervisor, whose own child is the defender)
watches one garrison-test/debian:12 container (``sleep infinity``) on a private engine. Per
trial, once a defender not seen before watches the container (the status' pid is new and alive,
the container is in its ``watching`` list, its exec reader runs) and a second has passed:

1. ``cp /usr/bin/true`` to two new names in the container: files never executed, so the kernel
   must ask the defender about each (a file already judged may be skipped by the kernel through
   an ignore mark, and would not wait on a stopped defender);
2. plain: ``docker exec`` of the first copy, timed, the defender running normally;
3. stall: SIGSTOP to the defender and at once ``docker exec`` of the second copy, timed from the
   SIGSTOP to the exec's return. The exec waits in the kernel until the watchdog finds the
   exec reader silent for ``stall_timeout`` (1 s) and SIGKILLs the defender, whose fanotify
   groups the kernel then closes, letting the exec through. While it waits, the defender's
   state is polled: the moment it is no longer stopped is the watchdog's kill.

An exec not back ``--give-up`` seconds after the SIGSTOP is counted as not released: the
benchmark records what waits on what (``/proc/PID/wchan`` of the container's processes and of
the dying defender's threads), kills the processes of its own exec that wait in
``fanotify_handle_event`` so that the run can go on, and reports the trial apart.

``docker exec`` is the Docker SDK's ``exec_run`` (create, start attached, inspect): the API calls
the docker CLI makes, without the CLI's own start. A trial counts as held when its exec took
over 0.5 s and returned after the defender stopped being stopped, or did not return at all.

One ``garrison run`` serves every trial: each stall kills a defender younger than a minute, so the
watchdog's restart backoff grows (0.5, 1, 2, 5, 10, then 30 s) and the later trials wait about
30 s for the next defender. That is the product as it runs; the figure measured (stall to
release) comes before the restart and does not depend on it. The waits are printed. Nothing is
asserted: a table, and JSON with --json-out.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_enforce import BenchError, Defender, Lab, quantiles
from garrison.devengine import DEBIAN, PrivateEngine, ensure_all
from garrison.devengine.images import cache_dir_from_env
from garrison.watchdog.supervisor import CHECK_SECONDS
from support import run_benchmark

TRUE = "/usr/bin/true"
COPIES = "/usr/local/bin"  # in the container's root file system (the overlay the defender marks)
HELD_SECONDS = 0.5  # an exec this slow was held (a plain one takes about 0.07 s here)
SETTLE_SECONDS = 1.0  # after a new defender watches: its start-up work is done
READY_TIMEOUT = 120.0  # the longest restart backoff (30 s) and a slow start on a busy machine
POLL_SECONDS = 0.002
WAITING = "fanotify_handle_event"  # the wchan of a process waiting for a permission verdict


@dataclass
class Trial:
    """One stall; seconds."""

    stopped_pid: int
    plain: float  # docker exec of a new binary, the defender running
    plain_code: int
    killed_after: float | None  # SIGSTOP → the defender no longer stopped (the watchdog's kill)
    released_after: float | None  # SIGSTOP → docker exec returned; None: not by the give-up
    exit_code: int | None  # of the stalled exec (137 when the benchmark killed it)
    state_at_return: str  # the stopped defender's state then ("T": still stopped)
    stuck: list[str] = field(default_factory=list)  # not released: what waited, on what
    restart_wait: float | None = None  # exec returned → the next defender watches

    @property
    def held(self) -> bool:
        if self.released_after is None:
            return True
        return self.released_after > HELD_SECONDS and self.state_at_return != "T"


def next_defender(garrison: Defender, container_id: str, seen: set[int]) -> dict[str, Any]:
    """The status of a defender not in ``seen``, alive, once it watches the container."""
    assert garrison.proc is not None
    supervisor = garrison.proc.pid
    return garrison.wait(
        lambda status: is_new_and_watching(status, container_id, seen, supervisor),
        "watch the container with a new defender",
        READY_TIMEOUT,
    )


def is_new_and_watching(
    status: dict[str, Any], container_id: str, seen: set[int], supervisor: int
) -> bool:
    pid = status.get("pid")
    return (
        isinstance(pid, int)
        and pid not in seen
        and process_state(pid) not in ("gone", "Z")
        and (status.get("watchdog") or {}).get("supervisorPid") == supervisor
        and container_id in status.get("watching", [])
        and bool(status.get("sensors", {}).get("exec", {}).get("running"))
    )


# -- /proc -------------------------------------------------------------------------------------


def process_state(pid: int) -> str:
    return state_of(f"/proc/{pid}")


def state_of(proc_dir: str) -> str:
    """The state letter of PROC_DIR/stat (a process or a task; man 5 proc), or "gone"."""
    stat = read(f"{proc_dir}/stat")
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else "gone"


def read(path: str) -> str:
    try:
        return Path(path).read_text().replace("\0", " ").strip()
    except OSError:
        return ""


def blocked_threads(pid: int) -> list[str]:
    """The threads of ``pid`` in uninterruptible sleep, with what they wait in."""
    found = []
    for task in sorted(glob.glob(f"/proc/{pid}/task/*")):
        if state_of(task) == "D":
            found.append(f"defender {pid} thread {Path(task).name} D in {read(f'{task}/wchan')}")
    return found


def release_waiters(container: Any) -> list[str]:
    """Kill the container's processes waiting for a permission verdict — those of the exec this
    benchmark started — and say what they were."""
    found = []
    for row in container.top(ps_args="-o pid")["Processes"] or []:
        pid = int(row[0])
        if read(f"/proc/{pid}/wchan") == WAITING:
            found.append(f"{pid} '{read(f'/proc/{pid}/cmdline')}' waits in {WAITING}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return found


# -- one trial ---------------------------------------------------------------------------------


def copy_true(container: Any, paths: list[str]) -> None:
    script = " && ".join(f"cp {TRUE} {p}" for p in paths)
    copied = container.exec_run(["sh", "-c", script])
    if copied.exit_code != 0:
        raise BenchError(f"cp failed ({copied.exit_code}): {copied.output[-300:]!r}")


def timed_exec(container: Any, path: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = container.exec_run([path])
    return time.perf_counter() - start, int(result.exit_code)


def stall_trial(container: Any, pid: int, i: int, give_up: float) -> Trial:
    plain, stalled = (f"{COPIES}/gbw-{os.getpid()}-{i}-{kind}" for kind in ("plain", "stall"))
    copy_true(container, [plain, stalled])
    plain_seconds, plain_code = timed_exec(container, plain)
    done: list[tuple[float, int]] = []

    def run() -> None:
        code = container.exec_run([stalled]).exit_code
        done.append((time.perf_counter(), int(code)))

    thread = threading.Thread(target=run, name="stalled-exec", daemon=True)
    start = time.perf_counter()
    os.kill(pid, signal.SIGSTOP)
    try:
        thread.start()
        killed = watch_defender(pid, start, done, give_up)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # leave no defender stopped by us behind
        raise
    state = process_state(pid)
    trial = Trial(pid, plain_seconds, plain_code, killed, None, None, state)
    if done:
        trial.released_after = done[0][0] - start
    else:  # not released: say why, then let the run go on
        trial.stuck = blocked_threads(pid) + release_waiters(container)
        thread.join(30)
        if not done:
            raise BenchError(f"the exec of trial {i + 1} still waits: {trial.stuck}")
    trial.exit_code = done[0][1]
    return trial


def watch_defender(
    pid: int, start: float, done: list[tuple[float, int]], give_up: float
) -> float | None:
    """Until the exec returns or ``give_up`` seconds: when the stopped defender stopped being
    stopped (the watchdog's SIGKILL), in seconds after ``start``. The SIGSTOP takes effect a
    moment after it is sent, so the stopped state must be seen first."""
    stopped, killed = False, None
    while not done and time.perf_counter() - start < give_up:
        state = process_state(pid)
        stopped = stopped or state == "T"
        if killed is None and stopped and state != "T":
            killed = time.perf_counter() - start
        time.sleep(POLL_SECONDS)
    return killed


def measure(garrison: Defender, container: Any, args: argparse.Namespace) -> list[Trial]:
    cid = str(container.id)
    status = next_defender(garrison, cid, set())
    seen: set[int] = set()
    done: list[Trial] = []
    for i in range(args.trials):
        seen.add(status["pid"])
        time.sleep(SETTLE_SECONDS)
        trial = stall_trial(container, status["pid"], i, args.give_up)
        returned = time.monotonic()
        status = next_defender(garrison, cid, seen)
        trial.restart_wait = time.monotonic() - returned
        done.append(trial)
        print(trial_line(i, trial))
    return done


def trial_line(i: int, t: Trial) -> str:
    line = f"trial {i + 1}: plain {t.plain:.3f} s, defender killed after {fmt(t.killed_after)} s, "
    line += f"exec returned after {fmt(t.released_after)} s"
    if t.stuck:
        line += f" (NOT RELEASED: {'; '.join(t.stuck)})"
    return line + f", next defender {fmt(t.restart_wait)} s"


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# -- the run and the report --------------------------------------------------------------------


def ms(values: list[float | None]) -> dict[str, float]:
    found = sorted(v * 1000 for v in values if v is not None)
    return {"n": len(found), **quantiles(found)} if found else {"n": 0}


def summarize(trials: list[Trial], watchdog: dict[str, Any], give_up: float) -> dict[str, Any]:
    timeout = float(watchdog.get("stallTimeout", 1.0))
    released = [t for t in trials if t.released_after is not None]
    return {
        "trials": len(trials),
        "released": len(released),
        "held": sum(t.held for t in trials),
        "heldThresholdSeconds": HELD_SECONDS,
        "giveUpSeconds": give_up,
        "stallTimeout": timeout,
        "boundSeconds": timeout + CHECK_SECONDS,
        "plainMs": ms([t.plain for t in trials]),
        "killedMs": ms([t.killed_after for t in trials]),
        "releasedMs": ms([t.released_after for t in released]),
        "addedMs": ms([t.released_after - t.plain for t in released if t.released_after]),
        "notReleased": [
            {"trial": i + 1, "stuck": t.stuck} for i, t in enumerate(trials) if t.stuck
        ],
        "restartWaitSeconds": [t.restart_wait for t in trials],
        "exitCodes": sorted({str(c) for t in trials for c in (t.plain_code, t.exit_code)}),
        "watchdog": watchdog,
        "samples": [asdict(t) for t in trials],
    }


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    client = engine.client()
    container = None
    try:
        ensure_all(client, cache_dir_from_env())
        container = client.containers.run(DEBIAN.name, ["sleep", "infinity"], detach=True)
        lab = Lab(client, engine.base_url, work, args)
        with Defender(lab, work / "data", "1h") as garrison:
            trials = measure(garrison, container, args)
            watchdog = garrison.status().get("watchdog") or {}
        return {"image": DEBIAN.name, **summarize(trials, watchdog, args.give_up)}
    finally:
        if container is not None:
            container.remove(force=True)
        client.close()


ROWS = {
    "plainMs": "docker exec, defender running",
    "killedMs": "SIGSTOP -> defender killed (watchdog)",
    "releasedMs": "SIGSTOP -> docker exec returned",
    "addedMs": "  the same minus plain (paired)",
}


def report(doc: dict[str, Any]) -> None:
    print(
        f"\ndocker exec of a binary never executed before, in {doc['image']}, "
        f"{doc['trials']} trials, stall timeout {doc['stallTimeout']:.1f} s"
    )
    print(f"   {'ms':40} {'n':>3} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for key, label in ROWS.items():
        q = doc[key]
        cells = " ".join(f"{q[k]:7.1f}" for k in ("p50", "p95", "p99", "max")) if q["n"] else "-"
        print(f"   {label:40} {q['n']:3} {cells}")
    bound = doc["boundSeconds"] * 1000
    if doc["releasedMs"]["n"]:
        verdict = "ok" if doc["releasedMs"]["p99"] <= bound else "OVER"
        print(
            f"   docs/defender.md: released within stall_timeout + 0.1 s = {bound:.0f} ms: "
            f"p99 {verdict}"
        )
    print(
        f"   released within {doc['giveUpSeconds']:.0f} s: {doc['released']}/{doc['trials']}; "
        f"held until the watchdog acted (> {doc['heldThresholdSeconds']} s, or never released): "
        f"{doc['held']}/{doc['trials']}"
    )
    for stuck in doc["notReleased"][:3]:
        print(f"   not released, trial {stuck['trial']}: {'; '.join(stuck['stuck'])}")
    print(f"   exit codes of the execs: {doc['exitCodes']}")
    waits = " ".join(fmt(w) for w in doc["restartWaitSeconds"])
    print(f"   exec returned -> next defender watching, s (restart backoff): {waits}")
    wd = doc["watchdog"]
    print(
        f"   watchdog at the end: stalls {wd.get('stalls')}, restarts {wd.get('restarts')}, "
        f"crashes {wd.get('crashes')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--give-up", type=float, default=10.0, help="seconds after the SIGSTOP (default 10)"
    )
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), "gbw", run_all, report)


if __name__ == "__main__":
    main()
