"""``/api/v1/images``: the stored scan reports, the newest per image (``garrison scan image``
stores one with each scan).

``REF`` is a name the image was scanned under (``nginx`` is ``nginx:latest``), its id, or a
prefix of 4 characters or more of the id. An image name holds ``/``: the path takes it whole.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from garrison.api.deps import Core, Reader

router = APIRouter(tags=["images"])
PATH = "/api/v1/images"


@router.get(PATH)
def list_images(console: Core, _: Reader) -> list[dict[str, Any]]:
    """The newest report's summary per image (counts by severity, no lists), the most
    recently scanned first."""
    return console.list_images()


@router.get(f"{PATH}/{{ref:path}}")
def image_report(console: Core, _: Reader, ref: str) -> dict[str, Any]:
    """The image's newest report, whole: ``garrison scan image --json`` with every severity,
    and ``scannedAt``, ``digest``, ``vulnerabilityTotals``, ``complianceTotals``."""
    return console.image_report(ref)
