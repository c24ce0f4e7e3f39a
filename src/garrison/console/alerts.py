"""The console's alert channels and outbox (the ``Console`` methods delegate here)."""

from __future__ import annotations

import time

from garrison.alerts.channel import Channel, check_channel
from garrison.alerts.profiles import KIND, Profiles, profiles_from_doc
from garrison.alerts.render import render
from garrison.alerts.send import deliver
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.store.base import ChannelRecord, Store


def check_state(state: str) -> str:
    """An outbox state to list by ("": all)."""
    if state not in ("", "pending", "sent", "skipped"):
        raise InvalidInput(f"state must be pending, sent or skipped, not {state[:20]!r}")
    return state


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


def apply_profiles(store: Store, profiles: Profiles) -> None:
    """Store the profiles (they replace those in force); each channel they name must exist."""
    known = {c.name for c in store.list_channels()}
    for profile in profiles.profiles:
        missing = [c for c in profile.channels if c not in known]
        if missing:
            raise InvalidInput(
                f"profile {profile.name!r}, channels: no channel named {missing[0]!r} "
                "(garrison alerts channels add)"
            )
    store.set_policy(KIND, profiles.model_dump(mode="json"))


def stored_profiles(store: Store) -> Profiles:
    return profiles_from_doc(store.get_policy(KIND))
