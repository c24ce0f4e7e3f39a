"""Vulnerability decisions remembered for the creates that follow.

A rule's decision on an image is a pure function of the rule, the image's findings and the day
(grace periods and the expiry of exceptions are counted in days), and it costs about a
millisecond for the 600 findings of a Debian image: paid on every create of that image, it was
a fifth of what the gate added to a cached create (benchmarks/README.md, issue 17). The cached
scan hands the same findings object to every create, and the stored policies the same rule
objects until they are read again, so both are remembered by identity (each entry keeps them
alive, so an id is never reused while it is a key).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from garrison.scan.rules import Decision, VulnerabilityRule
from garrison.scan.types import Finding

_Key = tuple[int, int, dt.date]
_Entry = tuple[VulnerabilityRule, Sequence[Finding], Decision]


def utc_today() -> dt.date:
    """The day ``VulnerabilityPolicy.evaluate`` judges on when given none."""
    return dt.datetime.now(dt.UTC).date()


class VulnerabilityVerdicts:
    """``decide(rule, findings)``: ``rule.evaluate(findings, today)``, remembered."""

    def __init__(self, size: int = 64, today: Callable[[], dt.date] = utc_today) -> None:
        self.size = size
        self.today = today
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    def decide(self, rule: VulnerabilityRule, findings: Sequence[Finding]) -> Decision:
        today = self.today()
        key = (id(rule), id(findings), today)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is rule and entry[1] is findings:
                self._entries.move_to_end(key)
                return entry[2]
        decision = rule.evaluate(findings, today)
        with self._lock:
            self._entries[key] = (rule, findings, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return decision
