"""Scans through the console: each one's report stored as it is made, so that the CLI, the
API and the pages read the same reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.audit.record import Audit
from garrison.model.clock import Clock
from garrison.scan.report import container_report, digest_of, image_report
from garrison.scan.types import ContainerCheck, ScanResult
from garrison.store.base import Store

if TYPE_CHECKING:  # the scanner brings the Docker SDK: only what scans imports it
    from garrison.scan.gate import ContainerLookup, Gate
    from garrison.scan.gate.gate import PasswdLookup
    from garrison.scan.scanner import ImageRef, Progress, Scanner


def scan_image(
    store: Store, scanner: Scanner, image: str, clock: Clock, progress: Progress | None
) -> ScanResult:
    """As ``Scanner.scan``, keeping the image's digest for the report; ``scannedAt`` is when
    the scan ended."""
    tell = progress or (lambda _step: None)
    tell("resolve")
    ref = scanner.resolve(image)
    result = scanner.scan_ref(ref, progress=tell)
    store.save_scan(image_report(result, ref.id, digest_of(ref.inspect, ref.name), clock()))
    return result


def scan_container(store: Store, scanner: Scanner, ref: str, clock: Clock) -> ContainerCheck:
    check = scanner.check_container(ref)
    store.save_scan(container_report(check, clock()))
    return check


def gate(
    store: Store,
    scanner: Scanner,
    clock: Clock,
    *,
    containers: ContainerLookup | None,
    passwd: PasswdLookup | None,
    scan_timeout: float,
) -> Gate:
    """The authorization gate on the console's store: the policies in it, its audits and
    blocked containers, and every image scan the gate makes kept as that image's report."""
    from garrison.scan.gate import Gate, StoredPolicies  # noqa: PLC0415 - the Docker SDK's cost

    def audit(record: Audit) -> None:
        store.add_audits([record])

    def keep(ref: ImageRef, result: ScanResult) -> None:
        store.save_scan(image_report(result, ref.id, digest_of(ref.inspect, ref.name), clock()))

    return Gate(
        scanner, StoredPolicies(store), on_audit=audit,
        is_blocked=lambda cid: any(b.container_id == cid for b in store.list_blocked()),
        containers=containers, passwd=passwd, scan_timeout=scan_timeout, on_scanned=keep,
    )  # fmt: skip
