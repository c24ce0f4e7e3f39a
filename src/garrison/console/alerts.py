"""The console's alert channels and outbox (the ``Console`` methods delegate here)."""

from __future__ import annotations

import time

from garrison.alerts.channel import Channel, check_channel
from garrison.alerts.render import render
from garrison.alerts.send import deliver
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.store.base import ChannelRecord, Store


def add_channel(store: Store, name: str, url: str, now: float) -> ChannelRecord:
    """Checked before it is stored: a malformed URL is refused, naming the field."""
    channel = check_channel(name, url)
    record = ChannelRecord(channel.name, channel.url, now)
    store.add_channel(record)
    return record


def test_channel(store: Store, name: str, hostname: str) -> None:
    """Send a test alert to the channel now (DeliveryFailed says why it did not go)."""
    found = [c for c in store.list_channels() if c.name == name]
    if not found:
        raise InvalidInput(f"channel name {name!r}: no such channel")
    audit = Audit(
        time=time.time(), hostname=hostname, type="defender", attackType="alertTest",
        effect="alert", msg=f"a test alert from Garrison to the channel {name}",
    )  # fmt: skip
    deliver(Channel(name, found[0].url), render(audit), hostname=hostname)
