"""``garrison status``: the defender's last report."""

from __future__ import annotations

import time

from rich.table import Table

from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, when
from garrison.config import DEFAULT_DATA_DIR

STALE_SECONDS = 15.0


def status(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Show the defender's health: containers, models, sensors with drop/late counters."""
    with open_console(data_dir) as console:
        doc = console.status()
    if as_json:
        print_json(doc)
        return
    defender = doc.get("defender") or {}
    if not defender:
        out.print("No defender has reported yet (start one with `garrison run`).")
    else:
        age = time.time() - float(defender.get("updatedAt", 0))
        stale = max(STALE_SECONDS, 3 * float(defender.get("statusInterval", 0)))
        state = "running" if age < stale else f"silent for {age:.0f} s"
        out.print(
            f"defender {state} on {defender.get('hostname')} (pid {defender.get('pid')}), "
            f"since {when(defender.get('startedAt'))}; "
            f"{defender.get('containers', 0)} containers, {defender.get('audits', 0)} audits"
        )
        out.print(_sensor_table(defender.get("sensors") or {}))
    out.print(
        f"models: {doc.get('models') or {}}; blocked containers: {doc.get('blockedContainers')}"
    )


def _sensor_table(sensors: dict[str, dict[str, object]]) -> Table:
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
