"""All the models a defender holds, by profile id and by running container."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from garrison.errors import InvalidInput
from garrison.model import commands, merge
from garrison.model.clock import Clock, system_clock
from garrison.model.commands import ModelCommand
from garrison.model.contents import Contents
from garrison.model.lifecycle import LearningConfig, State
from garrison.model.profile import Identity
from garrison.model.runtime_model import RuntimeModel, StaticPart
from garrison.runtime.base import ContainerInfo

log = logging.getLogger(__name__)


class ModelBook:
    """The defender's models. ``for_container`` is the O(1) hot-path lookup."""

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        config: LearningConfig | None = None,
        cluster: str = "",
    ) -> None:
        self.clock = clock
        self.config = config or LearningConfig()
        self.cluster = cluster
        self._models: dict[str, RuntimeModel] = {}
        self._by_container: dict[str, RuntimeModel] = {}
        self._saved: dict[str, tuple[int, State]] = {}  # what was saved: revision, state

    def __iter__(self) -> Iterator[RuntimeModel]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def get(self, profile_id: str) -> RuntimeModel | None:
        return self._models.get(profile_id)

    def for_container(self, container_id: str) -> RuntimeModel | None:
        return self._by_container.get(container_id)

    def load(self, docs: Iterable[dict[str, Any]]) -> list[InvalidInput]:
        """Take in stored models; an unreadable one is skipped and returned, not fatal."""
        errors: list[InvalidInput] = []
        for doc in docs:
            try:
                model = RuntimeModel.from_doc(doc, clock=self.clock, config=self.config)
            except InvalidInput as exc:
                log.warning("%s", exc)
                errors.append(exc)
                continue
            self._models[model.profile_id] = model
            self._saved[model.profile_id] = (model.revision, model.state)
        return errors

    def absorb(self, doc: dict[str, Any]) -> bool:
        """Take in what another host learned of a model (its document, as the console merged
        it): a model this book lacks is taken as it is; one no container runs here is
        replaced by the merge of both; one that runs here keeps its own lifecycle and gains
        the other's contents of the same generation (a later generation is a user's command,
        which reaches this host too and is applied here). False when the document is
        unreadable."""
        try:
            other = RuntimeModel.from_doc(doc, clock=self.clock, config=self.config)
        except InvalidInput as exc:
            log.warning("%s", exc)
            return False
        mine = self._models.get(other.profile_id)
        if mine is None or (not mine.life.running and merge.generation(doc) >= mine.generation):
            merged = doc if mine is None else merge.merge_docs(mine.to_doc(), doc)
            self._replace(RuntimeModel.from_doc(merged, clock=self.clock, config=self.config))
            return True
        if other.generation == mine.generation:
            mine.contents = Contents.from_doc(merge.merge_contents(mine.to_doc(), doc))
        return True

    def _replace(self, model: RuntimeModel) -> None:
        self._models[model.profile_id] = model
        self._saved[model.profile_id] = (model.revision, model.state)

    def container_started(self, container: ContainerInfo) -> RuntimeModel:
        """A container of an image runs (adopted or started): its model, made if new."""
        identity = Identity.of(container, self.cluster)
        model = self._models.get(identity.profile_id)
        if model is None:
            model = RuntimeModel(
                identity, clock=self.clock, config=self.config, static=StaticPart.of(container)
            )
            self._models[identity.profile_id] = model
        self._by_container[container.id] = model
        model.container_started(container.id)
        return model

    def container_stopped(self, container_id: str) -> None:
        model = self._by_container.pop(container_id, None)
        if model is not None:
            model.container_stopped(container_id)

    def tick(self) -> list[str]:
        """Move every model on with time; returns the ids of models removed (expired)."""
        removed = [m.profile_id for m in self._models.values() if m.expired()]
        for profile_id in removed:
            del self._models[profile_id]
            self._saved.pop(profile_id, None)
        for model in self._models.values():
            model.tick()
        return removed

    def changed(self) -> list[dict[str, Any]]:
        """Documents of the models to save: changed since the last call, or learning with a
        container running (their learning time moves on)."""
        docs = []
        for model in self._models.values():
            running = model.state is State.LEARNING and bool(model.life.running)
            saved = self._saved.get(model.profile_id)
            # A model turns active on the hot path too (is_learning() ends learning on time,
            # between ticks): a state unlike the saved one is a change.
            if running or saved != (model.revision, model.state):
                docs.append(model.to_doc())
                self._saved[model.profile_id] = (model.revision, model.state)
        return docs

    def apply(self, command: ModelCommand) -> bool:
        """Run a queued user command; False when this book has no such model."""
        model = self._models.get(command.profile_id)
        if model is None:
            return False
        commands.apply(model, command)
        return True
