"""What the console and its hosts say to each other: the paths of the defender protocol and
the JSON of what crosses it. Both ends import this module, so they cannot drift apart.

Enrolment (``/enrol/v1``) is the only part a host reaches without a client certificate; every
``/defender/v1`` path needs one, and the console takes the host's name from it, never from a
body (an audit's ``hostname`` is overwritten with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.store.base import BlockedContainer, audit_from_doc, check_audit

ENROL_CA = "/enrol/v1/ca"
ENROL_HOSTS = "/enrol/v1/hosts"
AUDITS = "/defender/v1/audits"  # POST a spooled batch; GET the host's mark
AUDIT = "/defender/v1/audit"  # POST one audit, stored at once (its id comes back)
AUDITS_OF = "/defender/v1/audits/of"  # GET …/{container_id}?limit=N
STATUS = "/defender/v1/status"
MODELS = "/defender/v1/models"  # GET all; POST {"save": [...], "delete": [...]}
SYNC = "/defender/v1/sync"  # GET policies and the host's model commands
COMMANDS_DONE = "/defender/v1/commands/done"
BLOCKS = "/defender/v1/blocks"  # GET the host's; POST one; DELETE …/{container_id}

POLICY_KINDS = ("runtime",)  # the policies a defender enforces (vulnerability ones: the gate)
MAX_BATCH = 500  # audits per POST
MAX_BODY = 16 * 1024 * 1024


def audit_doc(audit: Audit) -> dict[str, Any]:
    """Every field of an audit (``to_json`` leaves some out), as the spool writes it."""
    return audit.fields()


# Each field's JSON type: a host's audit is checked field by field before it reaches the store.
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "time": _NUMBER, "pid": (int,), "port": (int,), "count": (int,), "labels": (dict,),
    "id": (int, type(None)),
}  # fmt: skip


def audit_of(doc: object) -> Audit:
    """An audit from the wire; InvalidInput when it is not one (a field missing, or of the
    wrong type: text where text belongs, whole numbers for pid, port and count)."""
    if not isinstance(doc, Mapping):
        raise InvalidInput("an audit must be a JSON object")
    for name, value in doc.items():
        if name in Audit.__dataclass_fields__ and not _typed(name, value):
            raise InvalidInput(f"audit field {str(name)[:40]!r}: wrong type")
    labels = doc.get("labels", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidInput("audit labels: text keys and values only")
    try:
        return check_audit(audit_from_doc(doc, id=None))
    except TypeError as exc:
        raise InvalidInput(f"not an audit: {exc}") from exc


def _typed(name: str, value: object) -> bool:
    kinds = _FIELD_TYPES.get(name, (str,))
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def blocked_of(doc: object) -> BlockedContainer:
    if not isinstance(doc, Mapping):
        raise InvalidInput("a blocked container must be a JSON object")
    try:
        return BlockedContainer.from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"not a blocked container: {exc!r}") from exc
