"""Incidents: audits of one container correlated into stories (a binary written then run, an
unknown process that then connected out, a shell started by a server, a scan, a miner)."""

from garrison.incidents.correlate import Link, links
from garrison.incidents.record import STATES, Incident, IncidentFilter, IncidentState

__all__ = ["STATES", "Incident", "IncidentFilter", "IncidentState", "Link", "links"]
