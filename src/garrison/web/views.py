"""What the pages show, shaped from the console's data: the audits chart, an audit's process
tree, a model's learning time left, a rule drawn from a model. Pure: no request, no store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from garrison.audit.record import Audit

EFFECTS = ("block", "prevent", "alert", "allow")
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One hour of the chart: audits by effect (an audit seen again counts again)."""

    start: float
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def chart(audits: Iterable[Audit], now: float, hours: int = 24) -> list[Bar]:
    """Audits per hour over the last ``hours`` hours, oldest first."""
    first = (now // HOUR - (hours - 1)) * HOUR
    counts: list[dict[str, int]] = [dict.fromkeys(EFFECTS, 0) for _ in range(hours)]
    for audit in audits:
        slot = int((audit.time - first) // HOUR)
        if 0 <= slot < hours and audit.effect in counts[slot]:
            counts[slot][audit.effect] += audit.count
    return [Bar(first + i * HOUR, c) for i, c in enumerate(counts)]


@dataclass(slots=True)
class Node:
    """A process of the tree: what the journal recorded of its exec."""

    pid: int
    path: str
    command: str = ""
    user: str = ""
    marked: bool = False  # the audit's own process
    children: list[Node] = field(default_factory=list)


def process_tree(spawns: Sequence[Mapping[str, Any]], pid: int, before: float) -> Node | None:
    """The audit's process ``pid`` with its ancestors above it and what it started below,
    from the journal's ``spawn`` entries up to ``before`` (a pid reused later is not
    mistaken for it). None when the journal never saw the pid."""
    latest: dict[int, Mapping[str, Any]] = {}
    for entry in spawns:
        if entry.get("kind") == "spawn" and float(entry.get("time", 0)) <= before:
            latest[int(entry.get("pid", 0))] = entry
    if pid not in latest:
        return None
    marked = _node(latest[pid], marked=True)
    marked.children = [_node(e) for p, e in latest.items() if _ppid(e) == pid and p != pid]
    top = marked
    seen = {pid}
    while (parent := _ppid(latest[top.pid])) in latest and parent not in seen:
        seen.add(parent)
        top = Node(parent, *_fields(latest[parent]), children=[top])
    return top


def _node(entry: Mapping[str, Any], *, marked: bool = False) -> Node:
    return Node(int(entry.get("pid", 0)), *_fields(entry), marked=marked)


def _fields(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(entry.get("path", "")), str(entry.get("command", "")), str(entry.get("user", ""))


def _ppid(entry: Mapping[str, Any]) -> int:
    return int(entry.get("ppid", 0))


def learning_left(doc: Mapping[str, Any]) -> float | None:
    """Seconds of learning still to go; None when not learning or learning has no end."""
    target = doc.get("learningTarget")
    if doc.get("state") != "learning" or target is None:
        return None
    return max(0.0, float(target) - float(doc.get("learnedSeconds") or 0.0))


def rule_from_model(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A runtime rule for the model's image that allows what it learned: its processes, its
    listening and outbound ports and the folders it wrote. Everything else alerts, so the
    rule can be tightened to prevent or block once it has been watched."""
    image = str(doc.get("imageName") or doc.get("imageId") or "*")
    written = sorted(str(p) for p in doc.get("writtenPaths") or ())
    return {
        "name": name,
        "notes": f"made from the model {doc.get('profileId', '')} of {image}",
        "scope": [{"images": [image]}],
        "processes": {"effect": "alert", "allowed": _paths(doc.get("processes"), "path")},
        "network": {
            "effect": "alert",
            "listening": {"allowed": _ports(doc.get("listening"))},
            "outbound": {"allowed": _ports(doc.get("outboundPorts"))},
        },
        "filesystem": {
            "effect": "alert",
            "allowed": written,
        },
    }


def _paths(items: Any, key: str) -> list[str]:
    return sorted({str(i[key]) for i in items or [] if isinstance(i, Mapping) and i.get(key)})


def _ports(items: Any) -> list[str]:
    found = set()
    for item in items or []:
        if isinstance(item, Mapping):
            proto, port = item.get("protocol", "tcp"), item.get("port")
            found.add(str(port) if proto == "tcp" else f"{proto}/{port}")
    return sorted(found)
