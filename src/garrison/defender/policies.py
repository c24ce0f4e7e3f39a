"""The runtime rules in force in this defender, and each container's resolved policy.

Rules live in the store (policy kind ``runtime``, written by ``garrison rules apply``). The
defender polls them each second and swaps them in atomically; containers' policies are
resolved again at once, so a change reaches running containers within a second.
"""

from __future__ import annotations

import logging

from garrison.policy import EffectivePolicy, PolicyEngine, RuleSet, Subject
from garrison.runtime.base import ContainerInfo

log = logging.getLogger(__name__)


def subject_of(container: ContainerInfo, host: str) -> Subject:
    return Subject(
        image=container.image_name,
        container=container.name,
        host=host,
        labels=dict(container.labels),
        namespace=container.namespace or "",
    )


class Policies:
    """Container id → its policy, kept current with the rules. Read from any thread."""

    def __init__(self, host: str, engine: PolicyEngine | None = None) -> None:
        self.host = host
        self.engine = engine or PolicyEngine()
        self._containers: dict[str, ContainerInfo] = {}
        self._policies: dict[str, EffectivePolicy] = {}

    def for_container(self, container_id: str) -> EffectivePolicy | None:
        return self._policies.get(container_id)

    def upper_dir(self, container_id: str) -> str | None:
        container = self._containers.get(container_id)
        return container.upper_dir if container is not None else None

    def add(self, container: ContainerInfo) -> EffectivePolicy:
        self._containers[container.id] = container
        policy = self.engine.resolve(subject_of(container, self.host))
        self._policies[container.id] = policy
        return policy

    def remove(self, container_id: str) -> None:
        self._containers.pop(container_id, None)
        self._policies.pop(container_id, None)

    def swap(self, rules: RuleSet) -> bool:
        """Put new rules in force; True when they changed (policies resolved again)."""
        if not self.engine.swap(rules):
            return False
        for container in list(self._containers.values()):
            self.add(container)
        log.info("runtime rules %s in force (%d rules)", self.engine.version[:12], len(rules.rules))
        return True
