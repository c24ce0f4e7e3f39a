"""The webhook on a console's store: the policies stored there (read again every two seconds,
the last good ones kept, as the gate reads them), the scan reports stored there, and each
decision's audit stored there as the gate's are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.k8s._reports import StoredReports
from garrison.k8s.admission import Admission, AdmissionSettings

if TYPE_CHECKING:
    from garrison.store.base import Store


def stored_admission(store: Store, settings: AdmissionSettings | None = None) -> Admission:
    # The gate's package brings the Docker SDK: loaded by what serves, never at import.
    from garrison.scan.gate.wiring import StoredPolicies  # noqa: PLC0415

    return Admission(
        StoredReports(store),
        StoredPolicies(store),
        on_audit=lambda audit: store.add_audits([audit]),
        settings=settings,
    )
