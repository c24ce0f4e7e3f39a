"""``garrison status``: the defender's last report, and whether it runs.

Exit status (for scripts and monitors): 0 the defender runs; 1 it does not (stopped, dead, or
never started); 2 it is silent (its pid lives but it has not reported: stalled or cut off).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
from garrison.config import DEFAULT_DATA_DIR
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
    if live["state"] == "none":
        out.print(
            "defender not running: no defender has reported yet (start one with `garrison run`)."
        )
    elif live["running"]:
        out.print(
            f"defender running on {shown(defender.get('hostname'))} ({shown(live['why'])}), "
            f"since {when(defender.get('startedAt'))}; "
            f"{defender.get('containers', 0)} containers, {defender.get('audits', 0)} audits"
        )
    else:
        state = "silent" if live["state"] == "silent" else "not running"
        out.print(f"defender {state} on {shown(defender.get('hostname'))}: {shown(live['why'])}")
    if defender:
        _print_details(defender)
    out.print(
        f"models: {doc.get('models') or {}}; blocked containers: {doc.get('blockedContainers')}"
    )
    for line in _channel_lines(doc.get("alerts") or {}):
        out.print(line)


def _print_details(defender: dict[str, Any]) -> None:
    sensors: dict[str, dict[str, Any]] = defender.get("sensors") or {}
    out.print(_sensor_table(sensors))
    latency = _latency_line(defender.get("verdictLatency") or {})
    if latency:
        out.print(latency)
    for line in _unwatched_lines(sensors):
        out.print(shown(line))
    reason = (sensors.get("processes") or {}).get("reason")
    if reason:
        out.print(f"processes on the proc connector: {shown(reason)}")
    link: dict[str, Any] = defender.get("link") or {}
    if link.get("droppedAudits") or link.get("pendingAudits") or link.get("spoolErrors"):
        out.print(
            f"audits: {link.get('pendingAudits')} waiting to be stored, "
            f"{link.get('droppedAudits')} dropped, {link.get('writeErrors')} failed writes, "
            f"{link.get('spoolErrors')} not spooled"
        )
    watchdog: dict[str, Any] = defender.get("watchdog") or {}
    if watchdog:
        last: dict[str, Any] = watchdog.get("last") or {}
        line = (
            f"watchdog pid {watchdog.get('supervisorPid')}: stall timeout "
            f"{watchdog.get('stallTimeout')} s, {watchdog.get('restarts')} restarts "
            f"({watchdog.get('stalls')} stalls, {watchdog.get('crashes')} crashes)"
        )
        if last:
            detail = shown(last.get("detail"))
            line += f"; last {when(last.get('time'))}: pid {last.get('pid')} {detail}"
        out.print(line)


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


def _sensor_table(sensors: dict[str, dict[str, Any]]) -> Table:
    table = Table("sensor", "running", "events", "drops", "late", "errors")
    for name, c in sensors.items():
        source = c.get("source")
        table.add_row(
            f"{name} ({source})" if source else name,
            str(c.get("running")),
            str(c.get("events")),
            str(c.get("drops")),
            str(c.get("late")),
            str(c.get("errors")),
        )
    return table


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
            lines.append(f"{head}up, {counts}, last sent {when(c.get('lastSuccessAt'))}{stopped}")
            continue
        lines.append(
            f"[red]{head}FAILING, {c.get('consecutiveFailures')} failed attempts in a row "
            f"({counts}), last sent {when(c.get('lastSuccessAt'))}; last error "
            f"{when(c.get('lastFailureAt'))}: {shown(c.get('lastError'))}[/red]{stopped}"
        )
    return lines
