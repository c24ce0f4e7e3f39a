"""Which model a container belongs to: its profile id."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.runtime.base import ContainerInfo


def profile_id(image_id: str, namespace: str = "", cluster: str = "") -> str:
    """The image id (content-addressed: the same image has it on every host), and when the
    container is orchestrated, its namespace and cluster: ``sha256:…_prod_east``."""
    if namespace or cluster:
        return f"{image_id}_{namespace}_{cluster}"
    return image_id


@dataclass(frozen=True, slots=True)
class Identity:
    """What names a model, and the image it was made for."""

    profile_id: str
    image_name: str = ""
    image_id: str = ""
    image_digest: str = ""
    namespace: str = ""
    cluster: str = ""

    @classmethod
    def of(cls, container: ContainerInfo, cluster: str = "") -> Identity:
        """The identity of the model for this container (``cluster`` only if orchestrated)."""
        image = container.image_id or container.image_digest or container.image_name
        orchestrated = container.orchestrator is not None
        namespace = (container.namespace or "") if orchestrated else ""
        cluster = cluster if orchestrated else ""
        return cls(
            profile_id=profile_id(image, namespace, cluster),
            image_name=container.image_name,
            image_id=container.image_id,
            image_digest=container.image_digest or "",
            namespace=namespace,
            cluster=cluster,
        )
