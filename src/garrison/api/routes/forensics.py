"""``/api/v1/forensics/bundles``: the bundles captured when containers were blocked.

Listing is a reader's; downloading a bundle is an operator's: it holds the container's whole
file system, secrets included.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from garrison.api.deps import Core, Operator, Reader

router = APIRouter(tags=["forensics"])
PATH = "/api/v1/forensics/bundles"


@router.get(PATH)
def list_bundles(console: Core, _: Reader) -> list[dict[str, Any]]:
    """The bundles kept on this host, newest first."""
    return [b.to_json() for b in console.bundles().list()]


@router.get(f"{PATH}/{{ref}}")
def show_bundle(console: Core, _: Reader, ref: str) -> dict[str, Any]:
    """One bundle by id (or a unique prefix), or a container's newest by name or id prefix."""
    return console.bundles().get(ref).to_json()


GZIP = {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}


@router.get(f"{PATH}/{{ref}}/download", response_class=FileResponse,
            responses={200: {"content": GZIP, "description": "The bundle"}})  # fmt: skip
def download_bundle(console: Core, _: Operator, ref: str) -> FileResponse:
    """The bundle's .tar.gz (check it with ``garrison forensics verify FILE``)."""
    bundle = console.bundles().get(ref)
    return FileResponse(bundle.path, media_type="application/gzip", filename=bundle.path.name)


@router.post(f"{PATH}/{{ref}}/pin")
def pin_bundle(console: Core, _: Operator, ref: str) -> dict[str, Any]:
    """Keep it whatever the retention says."""
    shelf = console.bundles()
    return shelf.pin(shelf.get(ref).id, True).to_json()


@router.post(f"{PATH}/{{ref}}/unpin")
def unpin_bundle(console: Core, _: Operator, ref: str) -> dict[str, Any]:
    shelf = console.bundles()
    return shelf.pin(shelf.get(ref).id, False).to_json()
