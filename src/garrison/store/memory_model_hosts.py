"""The in-memory store's record of which hosts saved each model (a part of ``MemoryStore``):
the same rules as the SQL stores (store/sql_model_hosts.py), under the store's lock."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from garrison.store.base import ModelHost, check_kind


class MemoryModelHosts:
    """Needs the store's ``_lock`` and its ``_models`` (keyed by profile id); the store's
    ``delete_models`` calls ``_forget_model_hosts`` under its lock."""

    _lock: threading.Lock
    _models: dict[str, tuple[float, str]]

    def __init__(self) -> None:
        self._model_hosts: dict[str, dict[str, ModelHost]] = {}  # profile id → host → saves

    def record_model_hosts(self, host: str, profile_ids: Sequence[str], when: float) -> None:
        check_kind(host, "host name")
        with self._lock:
            for profile_id in profile_ids:
                if profile_id not in self._models:
                    continue  # a model deleted meanwhile leaves no host behind
                hosts = self._model_hosts.setdefault(profile_id, {})
                old = hosts.get(host)
                first, last = (when, when) if old is None else (old.first_saved, old.last_saved)
                hosts[host] = ModelHost(host, first, max(last, when))

    def model_hosts(self, profile_id: str) -> list[ModelHost]:
        with self._lock:
            hosts = self._model_hosts.get(profile_id, {})
            return [hosts[h] for h in sorted(hosts)]

    def model_host_counts(self) -> dict[str, int]:
        with self._lock:
            return {p: len(hosts) for p, hosts in self._model_hosts.items() if hosts}

    def _forget_model_hosts(self, profile_ids: Sequence[str]) -> None:
        for profile_id in profile_ids:
            self._model_hosts.pop(profile_id, None)
