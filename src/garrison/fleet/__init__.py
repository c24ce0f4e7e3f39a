"""The hosts of a console: their identity, their enrolment, and the mutual TLS they reach
the console over (issue 18, "many hosts").

Each host is known by a client certificate the console's own CA signed for its name
(``pki``); a host gets one by presenting a one-time enrolment token with a certificate request
it made itself (``enroll``), so its private key never leaves it. Both ends then speak TLS
trusting only that CA (``tls``), and the console refuses revoked hosts after each handshake.
"""

from __future__ import annotations

from garrison.fleet._revoked import Revoked
from garrison.fleet.enroll import (
    MemoryTokenBook,
    TokenBook,
    TokenRecord,
    TokenRefused,
    make_token,
    parse_token,
    redeem,
    spend,
)
from garrison.fleet.pki import (
    ConsoleCA,
    Credentials,
    HostRequest,
    check_host_name,
    make_host_request,
)
from garrison.fleet.tls import (
    PeerRefused,
    check_peer,
    client_context,
    peer_certificate,
    peer_serial,
    server_context,
)

__all__ = [
    "ConsoleCA",
    "Credentials",
    "HostRequest",
    "MemoryTokenBook",
    "PeerRefused",
    "Revoked",
    "TokenBook",
    "TokenRecord",
    "TokenRefused",
    "check_host_name",
    "check_peer",
    "client_context",
    "make_host_request",
    "make_token",
    "parse_token",
    "peer_certificate",
    "peer_serial",
    "redeem",
    "server_context",
    "spend",
]
