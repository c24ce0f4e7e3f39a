"""``StoreTokenBook``: a store as the book of enrolment tokens (``garrison.fleet.enroll``), so
that tokens outlive the console's process and each use is spent once across its replicas:
``spend(StoreTokenBook(store), presented, now)``."""

from __future__ import annotations

from garrison.fleet.enroll import TokenRecord
from garrison.store.base import Store


class StoreTokenBook:
    """A ``TokenBook`` on ``store``: its ``mark_used`` is the store's atomic spend of a use."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, record: TokenRecord) -> None:
        """InvalidInput when a token with the same id is there already."""
        self.store.add_enrol_token(record)

    def get(self, token_id: str) -> TokenRecord | None:
        return self.store.get_enrol_token(token_id)

    def mark_used(self, token_id: str, when: float) -> bool:
        return self.store.mark_enrol_token_used(token_id, when)
