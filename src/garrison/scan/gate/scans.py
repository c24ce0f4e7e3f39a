"""Scans with a deadline: the gate answers dockerd within ``timeout`` whatever the scan costs.

A create waits for its image's scan at most ``timeout`` seconds (docs/authz.md, "Bounds"). A
scan that takes longer goes on in the background — one per image, however many creates ask —
and its result lands in the scanner's cache, where the next create of that image finds it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

from garrison.scan.scanner import ImageRef, Scanner
from garrison.scan.types import ScanResult

log = logging.getLogger(__name__)
# Told of each scan the gate finished (to keep its report); never delays a create's answer.
OnScanned = Callable[[ImageRef, ScanResult], None]

DEFAULT_SCAN_TIMEOUT = 20.0  # dockerd gives up on a plugin call after 30 s of retries


class ScanTimeout(Exception):
    """The scan did not finish within the deadline; it goes on in the background."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"the image scan did not finish within the gate's scan timeout of {timeout:g} s; "
            "it goes on in the background: try again shortly"
        )
        self.timeout = timeout


class BoundedScans:
    """``scan(ref)``: the scanner's result within ``timeout`` seconds, or ScanTimeout."""

    def __init__(
        self,
        scanner: Scanner,
        timeout: float = DEFAULT_SCAN_TIMEOUT,
        on_scanned: OnScanned | None = None,
    ) -> None:
        self.scanner = scanner
        self.timeout = timeout
        self.on_scanned = on_scanned
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="gate-scan")
        self._lock = threading.Lock()
        self._running: dict[str, concurrent.futures.Future[ScanResult]] = {}

    def scan(self, ref: ImageRef) -> ScanResult:
        cached = self.scanner.cached(ref.id)
        if cached is not None:
            return cached
        future = self._future(ref)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError as exc:
            raise ScanTimeout(self.timeout) from exc

    def _future(self, ref: ImageRef) -> concurrent.futures.Future[ScanResult]:
        with self._lock:
            future = self._running.get(ref.id)
            if future is not None:
                return future
            future = self._pool.submit(self.scanner.scan_ref, ref)
            self._running[ref.id] = future
        # Outside the lock: a future already done runs its callback at once, in this thread.
        future.add_done_callback(lambda done: self._done(ref, done))
        return future

    def _done(self, ref: ImageRef, future: concurrent.futures.Future[ScanResult]) -> None:
        with self._lock:
            self._running.pop(ref.id, None)
        if self.on_scanned is None or future.cancelled() or future.exception() is not None:
            return
        try:
            self.on_scanned(ref, future.result())
        except Exception:  # a report not kept must not cost the scan its cached result
            log.exception("gate: the scan report of %s was not kept", ref.name)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
