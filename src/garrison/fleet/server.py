"""The console's defender listener: HTTPS on its own address, with the console CA's server
certificate, asking every client for its certificate (a host enrolling has none yet, so the
handshake accepts none, but refuses one the CA did not sign).

uvicorn gives an app no view of the client's certificate, so the listener runs uvicorn with an
HTTP protocol of its own (``_PeerProtocol``): when a connection is made it reads the
certificate from the TLS object and hands every request of that connection to the app with
the certificate in its scope (``endpoints.PEER_KEY``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from garrison.fleet._files import write_private
from garrison.fleet.castore import open_ca
from garrison.fleet.endpoints import PEER_KEY, create_app
from garrison.fleet.service import FleetService
from garrison.serving import ServedSocket, bind, parse_address

log = logging.getLogger(__name__)

__all__ = ["DefenderListener", "open_ca", "server_names"]

SERVER_CERT = "defender-listener"


class _PeerProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        app = self.app

        async def with_peer(scope: Any, receive: Any, send: Any) -> None:
            scope[PEER_KEY] = der
            await app(scope, receive, send)

        self.app = with_peer


def server_names(address: str, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses the listener's certificate is for: those given, the
    address it listens on (unless a wildcard), and loopback."""
    host, _ = parse_address(address)
    dns = [n for n in names if not _is_ip(n)]
    ips = [n for n in names if _is_ip(n)]
    if _is_ip(host) and not ipaddress.ip_address(host).is_unspecified:
        ips.append(host)
    return [*dict.fromkeys([*dns, "localhost"])], [*dict.fromkeys([*ips, "127.0.0.1"])]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class DefenderListener(ServedSocket):
    """The listener on ``address`` for the hosts of ``service``; its server certificate is
    issued by the CA at each start, for ``names`` (what hosts dial) and the address, and
    saved in ``directory`` (this console's own: replicas each have theirs), by default the
    CA's folder. ``reuse_port``: replicas on one machine share the address."""

    def __init__(
        self,
        service: FleetService,
        address: str,
        names: Sequence[str] = (),
        *,
        directory: Path | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.address = address
        folder = directory or service.ca.directory
        if folder is None:
            raise ValueError("a listener of a CA kept in the store needs a directory")
        sock = bind(address, reuse_port=reuse_port)
        dns, ips = server_names(address, names)
        cert, key = service.ca.issue_server(dns, ips).save(folder, SERVER_CERT)
        ca_file = folder / "ca.pem"
        if folder != service.ca.directory:
            write_private(ca_file, service.ca.cert_pem)
        config = uvicorn.Config(
            create_app(service), log_level="warning", access_log=False, http=_PeerProtocol,
            ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_ca_certs=str(ca_file),
            ssl_cert_reqs=ssl.CERT_OPTIONAL, timeout_keep_alive=30,
        )  # fmt: skip
        super().__init__(sock, config, "https", "defender-listener")
