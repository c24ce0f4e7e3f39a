"""``garrison admission serve``: the Kubernetes validating admission webhook (docs/kubernetes.md).

It judges pods by the stored vulnerability and compliance policies and the stored scan
reports of their images; it scans nothing itself (``garrison scan image`` stores reports).
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import DataDir, StoreUrl, open_local_console, out

DEFAULT_WEBHOOK_ADDRESS = "127.0.0.1:8443"  # garrison.k8s.webhook.DEFAULT_ADDRESS
app = typer.Typer(help="The Kubernetes validating admission webhook.", no_args_is_help=True)


class UnscannedChoice(enum.StrEnum):  # garrison.k8s.UNSCANNED_CHOICES
    ADMIT = "admit"
    REFUSE = "refuse"


Address = Annotated[
    str, typer.Option("--address", help="HOST:PORT to listen on (an IP address; HTTPS only).")
]
Cert = Annotated[
    Path, typer.Option("--cert", help="PEM certificate the API server trusts (its caBundle).")
]
Key = Annotated[Path, typer.Option("--key", help="PEM private key of --cert.")]
UnscannedOption = Annotated[
    UnscannedChoice,
    typer.Option(
        "--unscanned",
        help="An image with no stored scan report under a vulnerability rule that alerts or "
        "blocks: admit it with an alert, or refuse it where the rule blocks.",
        case_sensitive=False,
    ),
]


@app.command()
def serve(
    cert: Cert,
    key: Key,
    address: Address = DEFAULT_WEBHOOK_ADDRESS,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
    unscanned: UnscannedOption = UnscannedChoice.ADMIT,
) -> None:
    """Answer the API server's AdmissionReview requests on POST /validate (GET /healthz for
    probes) until SIGINT or SIGTERM."""
    # starlette, uvicorn and the store load here, not for --help (issue 17).
    from garrison.k8s import AdmissionSettings  # noqa: PLC0415
    from garrison.k8s.webhook import WebhookConfig, WebhookServer  # noqa: PLC0415
    from garrison.k8s.wiring import stored_admission  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with open_local_console(data_dir, store) as console:
        settings = AdmissionSettings("refuse" if unscanned is UnscannedChoice.REFUSE else "admit")
        admission = stored_admission(console.store, settings)
        server = WebhookServer(admission, WebhookConfig(address, cert, key))
        out.print(f"admission webhook on {server.url}/validate (unscanned images: "
                  f"{unscanned.value})", markup=False, highlight=False)  # fmt: skip
        server.run()
