"""The Docker boundary: an image's inventory and its configuration, read through the API.

Docker errors are mapped here, once, to Garrison's own.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import docker.models.images
import requests.exceptions

from garrison.errors import NotFound, RuntimeUnavailable, ScanError
from garrison.scan.inventory.archive import read_layers
from garrison.scan.inventory.build import inventory_from_files
from garrison.scan.inventory.chunks import ChunkReader, prefetched
from garrison.scan.types import Inventory

CHUNK = 1024 * 1024


def inventory_of(client: docker.DockerClient, image: str) -> Inventory:
    """The inventory of an image (name or id) on the engine, read from ``docker save``."""
    with _docker_errors(image):
        found = client.images.get(image)
        rootfs = read_layers(
            io.BufferedReader(ChunkReader(prefetched(found.save(chunk_size=CHUNK))), CHUNK)
        )
    return inventory_from_files(
        rootfs.files, str(found.id), image, rootfs.skipped, rootfs.npm_links
    )


def image_config(client: docker.DockerClient, image: str) -> dict[str, Any]:
    """The image's ``Config`` as the engine reports it (``User``, ``Healthcheck``, ``Env``,
    ``Cmd``, ``Labels``…), plus ``Id``, ``RepoTags`` and ``History`` (the entries of
    ``GET /images/{name}/history``: ``CreatedBy``, ``Created``, ``Comment``, ``Size``…)."""
    with _docker_errors(image):
        found = client.images.get(image)
        history: list[dict[str, Any]] = found.history()
    return {
        **(found.attrs.get("Config") or {}),
        "Id": found.id,
        "RepoTags": list(found.tags),
        "History": history,
    }


@contextlib.contextmanager
def _docker_errors(image: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise NotFound(f"image {image} not found on the engine") from exc
    except requests.exceptions.ConnectionError as exc:
        raise RuntimeUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
    except docker.errors.DockerException as exc:
        raise ScanError(f"image {image} could not be read: {exc}") from exc
