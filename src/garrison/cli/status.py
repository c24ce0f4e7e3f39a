"""``garrison status``: the defender's last report, and whether it runs.

Exit status (for scripts and monitors): 0 the defender runs; 1 it does not (stopped, dead, or
never started); 2 it is silent (its pid lives but it has not reported: stalled or cut off).
"""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown
from garrison.cli.render import Column, key, number, say, table
from garrison.human import duration, local_time, plural
from garrison.sensors.latency import upper_bound

EXIT_CODES = {"running": 0, "silent": 2}


def status(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Show the defender's health: running or not, containers, models, sensors with
    drop/late counters. Exits 0 when the defender runs, 1 when it does not, 2 when it is
    silent (alive but not reporting)."""
    with open_console(data_dir) as console:
        doc = console.status()
    state = str(doc["liveness"]["state"])
    if as_json:
        print_json(doc)
    else:
        _print(doc)
    code = EXIT_CODES.get(state, 1)
    if code:
        raise typer.Exit(code)


def _print(doc: dict[str, Any]) -> None:
    defender: dict[str, Any] = doc.get("defender") or {}
    live: dict[str, Any] = doc["liveness"]
    for line in _head_lines(defender, live):
        say(line)
    say(f"  models: {_models(doc.get('models') or {}, doc.get('pendingModelCommands') or 0)}")
    blocked = int(doc.get("blockedContainers") or 0)
    say(f"  blocked containers: {blocked} (`garrison containers blocked` lists them)" if blocked
        else "  blocked containers: none")  # fmt: skip
    if doc.get("hosts"):
        say(f"  hosts: {_hosts(doc['hosts'])} (`garrison hosts list`)")
    if defender:
        _print_details(defender)
    for line in _channel_lines(doc.get("alerts") or {}):
        say(line)


def _hosts(hosts: list[dict[str, Any]]) -> str:
    """``3 reporting, 1 silent (node-4)``: the hosts of a console for many hosts."""
    parts = []
    for state in ("reporting", "silent", "revoked"):
        names = [shown(h["name"]) for h in hosts if h.get("state") == state]
        if names:
            which = "" if state == "reporting" else f" ({', '.join(names[:5])})"
            parts.append(f"{len(names)} {state}{which}")
    return ", ".join(parts)


def _head_lines(defender: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """Whether the defender runs (the first line, as docs/defender.md lists them), since
    when, and what it watched and raised."""
    host, why = shown(defender.get("hostname")), shown(live["why"])
    if live["state"] == "none":
        return ["defender not running: no defender has reported yet (`garrison run` starts one)"]
    started = local_time(defender.get("startedAt"))
    watched = (
        f"{plural(int(defender.get('containers') or 0), 'container')} watched, "
        f"{plural(int(defender.get('audits') or 0), 'audit')} since it started"
    )
    if live["running"]:
        up = duration(time.time() - float(defender.get("startedAt") or time.time()))
        return [f"defender running on {host} ({why})", f"  up {up}, since {started}",
                f"  {watched}"]  # fmt: skip
    state = "silent" if live["state"] == "silent" else "not running"
    return [f"defender {state} on {host}: {why}", f"  started {started}",
            f"  at its last report: {watched}"]  # fmt: skip


def _models(states: dict[str, int], pending: int) -> str:
    """``1 active, 1 learning``; with the model commands the defender has not applied yet."""
    counts = ", ".join(f"{n} {shown(state)}" for state, n in sorted(states.items())) or "none yet"
    waiting = f" ({plural(pending, 'command')} waiting for the defender)" if pending else ""
    return counts + waiting


def _print_details(defender: dict[str, Any]) -> None:
    sensors: dict[str, dict[str, Any]] = defender.get("sensors") or {}
    if sensors:
        out.print()
        out.print(_sensor_table(sensors))
    latency = _latency_line(defender.get("verdictLatency") or {})
    if latency:
        say(latency)
    for line in _unwatched_lines(sensors):
        say(shown(line))
    reason = (sensors.get("processes") or {}).get("reason")
    if reason:
        say(f"processes on the proc connector: {shown(reason)}")
    link: dict[str, Any] = defender.get("link") or {}
    if link.get("droppedAudits") or link.get("pendingAudits") or link.get("spoolErrors"):
        say(
            f"audits: {link.get('pendingAudits')} waiting to be stored, "
            f"{link.get('droppedAudits')} dropped, {link.get('writeErrors')} failed writes, "
            f"{link.get('spoolErrors')} not spooled"
        )
    watchdog: dict[str, Any] = defender.get("watchdog") or {}
    if watchdog:
        say(_watchdog_line(watchdog))


def _watchdog_line(watchdog: dict[str, Any]) -> str:
    last: dict[str, Any] = watchdog.get("last") or {}
    line = (
        f"watchdog pid {watchdog.get('supervisorPid')}: stall timeout "
        f"{watchdog.get('stallTimeout')} s, {plural(int(watchdog.get('restarts') or 0), 'restart')}"
        f" ({plural(int(watchdog.get('stalls') or 0), 'stall')}, "
        f"{plural(int(watchdog.get('crashes') or 0), 'crash', 'crashes')})"
    )
    if last:
        detail = shown(last.get("detail"))
        line += f"; last {local_time(last.get('time'))}: pid {last.get('pid')} {detail}"
    return line


def _unwatched_lines(sensors: dict[str, dict[str, Any]]) -> list[str]:
    """One line per container that some sensors do not watch: which ones, and why."""
    whys: dict[str, dict[str, list[str]]] = {}  # container id → why → sensors
    for name, c in sensors.items():
        for cid, why in (c.get("unwatched") or {}).items():
            whys.setdefault(cid, {}).setdefault(why, []).append(name)
    return [
        f"container {cid[:12]} not watched by "
        + "; ".join(f"{', '.join(names)}: {why}" for why, names in by_why.items())
        for cid, by_why in sorted(whys.items())
    ]


Sensor = tuple[str, dict[str, Any]]
SENSORS: list[Column[Sensor]] = [
    key("sensor", lambda s: f"{s[0]} ({shown(s[1]['source'])})" if s[1].get("source") else s[0]),
    key("running", lambda s: "yes" if s[1].get("running") else "no"),
    number("events", lambda s: s[1].get("events")),
    number("drops", lambda s: s[1].get("drops")),
    number("late", lambda s: s[1].get("late")),
    number("errors", lambda s: s[1].get("errors")),
]


def _sensor_table(sensors: dict[str, dict[str, Any]]) -> Table:
    return table(SENSORS, [(shown(name), c) for name, c in sensors.items()])


def _latency_line(doc: dict[str, dict[str, Any]]) -> str:
    """How long containers waited for verdicts, per kind, as bucket bounds."""
    parts = []
    for kind, snapshot in doc.items():
        p50, p99 = upper_bound(snapshot, 0.5), upper_bound(snapshot, 0.99)
        if p50 is not None and p99 is not None:
            count = snapshot.get("count")
            parts.append(f"{kind} {count} answered, p50 <= {_seconds(p50)}, p99 <= {_seconds(p99)}")
    return f"verdict latency: {'; '.join(parts)}" if parts else ""


def _seconds(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return f"{value * 1e6:g} us" if value < 1e-3 else f"{value * 1e3:g} ms"


def _channel_lines(alerts: dict[str, Any]) -> list[str]:
    """One line per alert channel; one that failed since its last success in red."""
    stopped = (
        " (as last reported: the dispatcher stopped)" if alerts.get("state") == "stopped" else ""
    )
    lines = []
    for name, c in (alerts.get("channels") or {}).items():
        head = f"alert channel {shown(name)} ({shown(c.get('url'))}): "
        counts = f"{c.get('sent', 0)} sent, {c.get('failures', 0)} failed attempts"
        if c.get("up", True):
            lines.append(f"{head}up, {counts}, last sent {_at(c.get('lastSuccessAt'))}{stopped}")
            continue
        lines.append(
            f"[red]{head}FAILING, {c.get('consecutiveFailures')} failed attempts in a row "
            f"({counts}), last sent {_at(c.get('lastSuccessAt'))}; last error "
            f"{_at(c.get('lastFailureAt'))}: {shown(c.get('lastError'))}[/red]{stopped}"
        )
    return lines


def _at(epoch: float | None) -> str:
    return local_time(epoch) if epoch else "never"
