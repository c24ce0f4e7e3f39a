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


def _print_details(defender: dict[str, Any]) -> None:
    sensors: dict[str, dict[str, Any]] = defender.get("sensors") or {}
    out.print(_sensor_table(sensors))
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
