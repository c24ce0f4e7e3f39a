"""The runtime model of one image: fed events by the defender, asked questions on the hot path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.model import anomaly
from garrison.model.clock import Clock, system_clock
from garrison.model.contents import Contents
from garrison.model.lifecycle import LearningConfig, Lifecycle, State
from garrison.model.profile import Identity
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent

DOC_VERSION = 1


@dataclass(frozen=True, slots=True)
class StaticPart:
    """What the image config says will run."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    @classmethod
    def of(cls, container: ContainerInfo) -> StaticPart:
        return cls(tuple(container.entrypoint), tuple(container.cmd))


class RuntimeModel:
    """One image's model.

    ``observe_*`` learn while learning and, once active, return the audit for an event
    outside the model (``None`` when the event is normal). ``revision`` grows with each
    change, so the owner knows when to save.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        clock: Clock = system_clock,
        config: LearningConfig | None = None,
        static: StaticPart | None = None,
        created: float | None = None,
    ) -> None:
        self.identity = identity
        self.clock = clock
        self.config = config or LearningConfig()
        self.static = static or StaticPart()
        self.created = clock() if created is None else created
        self.contents = Contents()
        self.life = Lifecycle(self.created, self.config)
        self.revision = 0
        # The id of the last user command applied (garrison.model.merge): a document of a
        # higher generation replaces this one whole on the other hosts.
        self.generation = 0

    @property
    def profile_id(self) -> str:
        return self.identity.profile_id

    @property
    def state(self) -> State:
        return self.life.state

    # -- the hot path -------------------------------------------------------------------

    def is_learning(self) -> bool:
        # The state test first: an active model answers without reading the clock.
        return self.life.state is State.LEARNING and self.life.is_learning(self.clock())

    def knows_process(self, path: str, file: str = "") -> bool:
        return self.contents.knows_process(path, file)

    def process_names(self) -> frozenset[str]:
        return self.contents.process_names()

    # The rest of garrison.policy.ModelView: what the verdict engine asks of a model.

    def knows_parent(self, path: str, parent: str, file: str = "") -> bool:
        return self.contents.knows_parent(path, parent, file)

    def knows_listening(self, protocol: str, port: int) -> bool:
        return self.contents.knows_listening(protocol, port)

    def knows_outbound_port(self, protocol: str, port: int) -> bool:
        return self.contents.knows_outbound_port(protocol, port)

    def knows_outbound_address(self, address: str) -> bool:
        return self.contents.knows_outbound_address(address)

    def knows_write(self, path: str) -> bool:
        return self.contents.knows_write(path)

    def observe_process(
        self, event: ProcessEvent, container: ContainerInfo, host: str
    ) -> Audit | None:
        if self.is_learning():
            self.contents.learn_process(event)
            self.revision += 1
            return None
        known = self.knows_process(event.path, event.file_identity)
        if self.state is State.ACTIVE and not known:
            return anomaly.process_audit(event, self._where(container, host))
        return None

    def observe_net(self, event: NetEvent, container: ContainerInfo, host: str) -> Audit | None:
        if self.is_learning():
            if self.contents.learn_net(event):
                self.revision += 1
            return None
        if self.state is not State.ACTIVE:
            return None
        return self._net_anomaly(event, container, host)

    def _net_anomaly(self, event: NetEvent, container: ContainerInfo, host: str) -> Audit | None:
        known = self.contents
        if event.kind == "listen":
            if known.knows_listening(event.protocol, event.local_port):
                return None
            return anomaly.listening_audit(event, self._where(container, host))
        if not known.knows_outbound_port(event.protocol, event.remote_port):
            return anomaly.outbound_port_audit(event, self._where(container, host))
        if not known.knows_outbound_address(event.remote_ip):
            return anomaly.outbound_address_audit(event, self._where(container, host))
        return None

    def observe_file(self, event: FileEvent, container: ContainerInfo, host: str) -> Audit | None:
        if self.is_learning():
            if self.contents.learn_file(event):
                self.revision += 1
            return None
        if self.state is State.ACTIVE and not self.contents.knows_write(event.path):
            return anomaly.file_audit(event, self._where(container, host))
        return None

    def _where(self, container: ContainerInfo, host: str) -> anomaly.Where:
        return anomaly.Where(container, host, self.profile_id)

    # -- lifecycle ------------------------------------------------------------------------

    def container_started(self, container_id: str) -> None:
        self.life.container_started(container_id, self.clock())
        self.revision += 1

    def container_stopped(self, container_id: str) -> None:
        self.life.container_stopped(container_id, self.clock())
        self.revision += 1

    def tick(self) -> bool:
        """Let time move the state on (call it every second or so); True on a change."""
        changed = self.life.tick(self.clock())
        if changed:
            self.revision += 1
        return changed

    def expired(self) -> bool:
        return self.life.expired(self.clock())

    def relearn(self) -> None:
        """Forget everything learned and learn again from scratch."""
        self.contents = Contents()
        self.life.relearn(self.clock())
        self.revision += 1

    def extend(self, seconds: float) -> None:
        """Keep what was learned and learn ``seconds`` more (of running time)."""
        if not seconds > 0:
            raise InvalidInput("extend needs a positive number of seconds")
        self.life.extend(self.clock(), seconds)
        self.revision += 1

    def learn_start(self) -> None:
        """Learn (additively) until ``learn_stop``."""
        self.life.learn_start(self.clock())
        self.revision += 1

    def learn_stop(self) -> None:
        """Stop learning now: the model turns active."""
        self.life.learn_stop(self.clock())
        self.revision += 1

    # -- documents ----------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        """The JSON document stored and shown (``garrison models show --json``)."""
        ident = self.identity
        return {
            "v": DOC_VERSION,
            "profileId": ident.profile_id,
            "imageName": ident.image_name,
            "imageId": ident.image_id,
            "imageDigest": ident.image_digest,
            "namespace": ident.namespace,
            "cluster": ident.cluster,
            "created": self.created,
            **self.life.to_doc(self.clock()),
            "runningContainers": sorted(self.life.running),
            "static": {"entrypoint": list(self.static.entrypoint), "cmd": list(self.static.cmd)},
            **self.contents.to_doc(),
            "generation": self.generation,
        }

    @classmethod
    def from_doc(
        cls,
        doc: dict[str, Any],
        *,
        clock: Clock = system_clock,
        config: LearningConfig | None = None,
    ) -> RuntimeModel:
        """Raises InvalidInput for a document this version cannot read."""
        try:
            return cls._from_doc(doc, clock, config or LearningConfig())
        except (KeyError, TypeError, ValueError) as exc:
            name = doc.get("profileId", "?") if isinstance(doc, dict) else "?"
            raise InvalidInput(f"model {name}: unreadable document ({exc!r})") from exc

    @classmethod
    def _from_doc(cls, doc: dict[str, Any], clock: Clock, config: LearningConfig) -> RuntimeModel:
        if doc["v"] != DOC_VERSION:
            raise ValueError(f"document version {doc['v']}")
        keys = ("imageName", "imageId", "imageDigest", "namespace", "cluster")
        identity = Identity(str(doc["profileId"]), *(str(doc[k]) for k in keys))
        static = StaticPart(tuple(doc["static"]["entrypoint"]), tuple(doc["static"]["cmd"]))
        created = float(doc["created"])
        model = cls(identity, clock=clock, config=config, static=static, created=created)
        model.contents = Contents.from_doc(doc)
        model.life = Lifecycle.from_doc(doc, clock(), config)
        model.generation = int(doc.get("generation") or 0)  # absent before many hosts
        return model
