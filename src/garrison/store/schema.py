"""The store's schema, as the newest migration leaves it (``garrison.store.migrations``).

The same tables on SQLite and PostgreSQL. A change to a table here is a new migration there:
``tests/store/test_migrations.py`` fails until the migrations make what this module says.
``SCHEMA_VERSION`` is also kept in SQLite's ``PRAGMA user_version``, so that a Garrison from
before the migrations refuses a store it would misread.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

SCHEMA_VERSION = 4

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("profile_id", Text, primary_key=True),
    Column("doc", Text, nullable=False),
    Column("updated", Float, nullable=False),
)

audits = Table(
    "audits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", Text, nullable=False, unique=True),
    Column("time", Float, nullable=False),
    Column("container_id", Text, nullable=False),
    Column("container_name", Text, nullable=False),
    Column("image_name", Text, nullable=False),
    Column("image_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("effect", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("doc", Text, nullable=False),
    # Filters' fields (migration 0002), copied from doc when stored: the host that saw it, the
    # rule, the attack type; msg and command lower case, as UTF-8 bytes (a command line's
    # non-UTF-8 byte, kept as a lone surrogate, encoded as such), searched byte for byte.
    Column("host", Text, nullable=False, server_default=""),
    Column("rule", Text, nullable=False, server_default=""),
    Column("attack_type", Text, nullable=False, server_default=""),
    Column("folded_msg", LargeBinary, nullable=True),
    Column("folded_command", LargeBinary, nullable=True),
    Index("audits_time", "time"),
    Index("audits_host", "host", "time"),
)

policies = Table(
    "policies",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("doc", Text, nullable=False),
    Column("updated", Float, nullable=False),
)

# The highest sequence number of the audit spool stored so far (see console/spool.py): written
# in the transaction that stores the audits, so a replay stores each spooled audit once.
spool_marks = Table(
    "spool_marks",
    metadata,
    Column("name", Text, primary_key=True),
    Column("seq", Integer, nullable=False),
)

blocked = Table(
    "blocked_containers",
    metadata,
    Column("container_id", Text, primary_key=True),
    Column("doc", Text, nullable=False),
    Column("time", Float, nullable=False),
    # The host whose defender blocked it (migration 0003; '' before, and on one host).
    Column("host", Text, nullable=False, server_default=""),
)

status = Table(
    "status",
    metadata,
    Column("source", Text, primary_key=True),
    Column("doc", Text, nullable=False),
    Column("updated", Float, nullable=False),
)

model_commands = Table(
    "model_commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("op", Text, nullable=False),
    Column("profile_id", Text, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("time", Float, nullable=False),
    Column("done", Float, nullable=True),  # when a defender applied it
)

# Which host applied which command (migration 0003): with many hosts a command is done per
# host, not once ("done" above is then the first host's time).
model_command_acks = Table(
    "model_command_acks",
    metadata,
    Column("command_id", Integer, ForeignKey("model_commands.id"), primary_key=True),
    Column("host", Text, primary_key=True),
)

# Alert channels and the outbox (added without a version change: only new tables, which an
# older Garrison ignores). A delivery names its audit; a channel removed takes its
# deliveries with it.
alert_channels = Table(
    "alert_channels",
    metadata,
    Column("name", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("created", Float, nullable=False),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", Text, nullable=False),
    Column("audit_id", Integer, ForeignKey("audits.id"), nullable=False),
    Column("state", Text, nullable=False),  # pending, sent, skipped (no profile routes it)
    Column("folded", Integer, nullable=False),  # 0: the first alert; N: a summary of N more
    Column("attempts", Integer, nullable=False),
    Column("next_try", Float, nullable=False),
    Column("created", Float, nullable=False),
    Column("sent", Float, nullable=True),
    Column("error", Text, nullable=False),
    Index("alert_outbox_due", "channel", "state", "next_try"),
    # Retention: whether an audit is still owed to a channel, and its deliveries deleted with
    # it, without a scan of the outbox per audit. Added to stores that exist on open.
    Index("alert_outbox_audit", "audit_id", "state"),
)

# Per channel and audit once its first alert went: how many occurrences were told so far, and
# when the next summary may go (the aggregation period of garrison.alerts.profiles).
alert_marks = Table(
    "alert_marks",
    metadata,
    Column("channel", Text, primary_key=True),
    Column("audit_id", Integer, primary_key=True),
    Column("counted", Integer, nullable=False),
    Column("period", Float, nullable=False),
    Column("next_summary", Float, nullable=False),
    Index("alert_marks_audit", "audit_id"),  # retention deletes an audit's marks with it
)

# Occurrences of the audits retention deleted, by type and effect: added to the live audits'
# counts, they keep the metrics' audit counters from going down when old audits are pruned.
audit_pruned_totals = Table(
    "audit_pruned_totals",
    metadata,
    Column("type", Text, primary_key=True),
    Column("effect", Text, primary_key=True),
    Column("count", Integer, nullable=False),
)

# Incidents (garrison.incidents): audits of one container correlated into a story. New tables
# only, as the outbox. An incident's audits are rows of incident_audits, with the time each
# joined (the story's order: an audit's own time is that of its latest occurrence).
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("container_id", Text, nullable=False),
    Column("anchor", Text, nullable=False),
    Column("state", Text, nullable=False),  # open, archived
    Column("last", Float, nullable=False),
    Column("doc", Text, nullable=False),
    Index("incidents_open", "container_id", "anchor", "state"),
    Index("incidents_last", "last"),
)

incident_audits = Table(
    "incident_audits",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("audit_id", Integer, ForeignKey("audits.id"), primary_key=True),
    Column("time", Float, nullable=False),
    Index("incident_audits_audit", "audit_id"),
)

# Console users, API tokens and page sessions (garrison.auth). New tables only, as the
# outbox: an older Garrison ignores them. Only hashes of what authenticates are kept: the
# argon2id hash of a password, the SHA-256 of a token's secret and of a session's cookie.
# Foreign keys document the links (SQLite enforces none without PRAGMA foreign_keys): a
# user's tokens and sessions are deleted with it explicitly, in its transaction.
users = Table(
    "users",
    metadata,
    Column("name", Text, primary_key=True),  # unique: two processes adding it, one wins
    Column("role", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user", Text, ForeignKey("users.name"), nullable=False),
    Column("name", Text, nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=True),
    Column("last_used", Float, nullable=True),
    Index("api_tokens_user", "user"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("key_hash", Text, primary_key=True),
    Column("user", Text, ForeignKey("users.name"), nullable=False),
    Column("csrf", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Index("sessions_user", "user"),
    Index("sessions_expires", "expires"),
)

# Scan reports (garrison.scan.report): the newest few per image (per container for a
# container's check), each whole as JSON, with the summary a listing reads. A new table
# only, as the outbox.
scan_reports = Table(
    "scan_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),  # image, container
    Column("subject", Text, nullable=False),  # the image id, the container id
    Column("name", Text, nullable=False),  # the image reference scanned, the container name
    Column("time", Float, nullable=False),
    Column("summary", Text, nullable=False),
    Column("doc", Text, nullable=False),
    Index("scan_reports_subject", "kind", "subject", "time"),
)

# The hosts of a console (garrison.fleet, migration 0003): each known by the serial (decimal
# text: a serial has up to 159 bits) of the client certificate it was last enrolled with.
hosts = Table(
    "hosts",
    metadata,
    Column("name", Text, primary_key=True),
    Column("serial", Text, nullable=False),
    Column("enrolled", Float, nullable=False),
    Column("revoked", Float, nullable=True),
    Column("last_seen", Float, nullable=True),
)

# One-time enrolment tokens (garrison.fleet.enroll): only the SHA-256 of a secret is kept.
enrol_tokens = Table(
    "enrol_tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Column("used", Float, nullable=True),  # when last used
    # How many hosts may enrol with it (migration 0004): 1 for a host's own token, more for
    # one that a DaemonSet's nodes share; ``uses`` counts those that did.
    Column("max_uses", Integer, nullable=False, server_default="1"),
    Column("uses", Integer, nullable=False, server_default="0"),
)

# The console's CA (garrison.fleet.pki, migration 0004): one row, id 1, so that replicas of
# the console on one PostgreSQL sign and check certificates alike. The key is PEM, unencrypted:
# the database is as secret as the CA's folder was (docs/security.md).
console_ca = Table(
    "console_ca",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("cert_pem", Text, nullable=False),
    Column("key_pem", Text, nullable=False),
    Column("created", Float, nullable=False),
)

# Serials (decimal text) of client certificates the CA revoked, with their host.
revoked_serials = Table(
    "revoked_serials",
    metadata,
    Column("serial", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("revoked", Float, nullable=False),
)

# Which hosts saved each model (migration 0004): one model per image across hosts, with
# the hosts that learned or ran it.
model_hosts = Table(
    "model_hosts",
    metadata,
    Column("profile_id", Text, primary_key=True),
    Column("host", Text, primary_key=True),
    Column("first_saved", Float, nullable=False),
    Column("last_saved", Float, nullable=False),
)
