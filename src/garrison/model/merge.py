"""One image's model learned on several hosts: two documents of the same model made one.

Each host learns what its containers of the image do; the console keeps the union, and each
host takes in what the others learned. The merge is idempotent and commutative (sets are
united, counts and times take their maximum or minimum), so documents that go back and forth
between hosts and console settle, whatever their order.

A user's command (relearn, extend, learn-start, learn-stop) sets the model's *generation* to
the command's id on each host that applies it: a document of a higher generation replaces one
of a lower one whole — what a host learned before a relearn must not come back through a
merge. Within one generation the more advanced state wins (active over learning over
archived: learning ended somewhere, or a container still runs somewhere).
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]
STATE_RANK = {"archived": 0, "learning": 1, "active": 2}
LIFECYCLE = ("state", "learningTarget", "archivedAt", "resumeState")


def generation(doc: Doc) -> int:
    return int(doc.get("generation") or 0)


def merge_docs(stored: Doc, incoming: Doc) -> Doc:
    """The model both documents describe (the same ``profileId``)."""
    if generation(incoming) != generation(stored):
        return dict(incoming if generation(incoming) > generation(stored) else stored)
    merged = dict(incoming)
    winner = incoming if _rank(incoming) >= _rank(stored) else stored
    merged.update({key: winner.get(key) for key in LIFECYCLE if key in winner})
    merged["learnedSeconds"] = max(_num(stored, "learnedSeconds"), _num(incoming, "learnedSeconds"))
    merged["lastRunningAt"] = max(_num(stored, "lastRunningAt"), _num(incoming, "lastRunningAt"))
    merged["created"] = min(_num(stored, "created"), _num(incoming, "created"))
    merged.update(merge_contents(stored, incoming))
    return merged


def merge_contents(a: Doc, b: Doc) -> Doc:
    """The union of two models' contents (``Contents.to_doc``'s keys)."""
    return {
        "processes": _processes(a.get("processes", []), b.get("processes", [])),
        "listening": _ports(a.get("listening", []), b.get("listening", [])),
        "outboundPorts": _ports(a.get("outboundPorts", []), b.get("outboundPorts", [])),
        "outboundAddresses": sorted(
            {*a.get("outboundAddresses", []), *b.get("outboundAddresses", [])}
        ),
        "anyOutboundAddress": bool(a.get("anyOutboundAddress") or b.get("anyOutboundAddress")),
        "writtenPaths": sorted({*a.get("writtenPaths", []), *b.get("writtenPaths", [])}),
    }


def _processes(a: list[Doc], b: list[Doc]) -> list[Doc]:
    found: dict[str, Doc] = {}
    for entry in [*a, *b]:
        path = str(entry["path"])
        old = found.get(path)
        found[path] = dict(entry) if old is None else _process(old, entry)
    return [found[path] for path in sorted(found)]


def _process(old: Doc, new: Doc) -> Doc:
    return {
        **old,
        "files": sorted({*old.get("files", []), *new.get("files", [])}),
        "parents": sorted({*old["parents"], *new["parents"]}),
        "users": sorted({*old["users"], *new["users"]}),
        "count": max(int(old["count"]), int(new["count"])),
        "firstSeen": min(float(old["firstSeen"]), float(new["firstSeen"])),
        "lastSeen": max(float(old["lastSeen"]), float(new["lastSeen"])),
    }


def _ports(a: list[Doc], b: list[Doc]) -> list[Doc]:
    pairs = {(str(p["protocol"]), int(p["port"])) for p in [*a, *b]}
    return [{"protocol": proto, "port": port} for proto, port in sorted(pairs)]


def _rank(doc: Doc) -> int:
    return STATE_RANK.get(str(doc.get("state")), 0)


def _num(doc: Doc, key: str) -> float:
    value = doc.get(key)
    return float(value) if isinstance(value, int | float) else 0.0
