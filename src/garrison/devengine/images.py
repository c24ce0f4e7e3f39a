"""Real test images, built locally (no registry is reachable) and cached by a content key.

Each recipe has a content key: a hash of everything that goes into the image. The image
carries it as the label ``garrison.content-key``; when the engine already holds an image
with that name and key, nothing is built. Root file system tarballs are also kept in a
cache folder, so a fresh engine (a new data root) imports them in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from garrison.errors import ImageBuildError

log = logging.getLogger(__name__)

KEY_LABEL = "garrison.content-key"
RECIPE_VERSION = "2"
BUSYBOX_BINARY = Path("/usr/bin/busybox")
ENV_CACHE = "GARRISON_IMAGE_CACHE"
DEFAULT_CACHE = Path("/var/tmp/garrison-image-cache")
BUILD_RETRIES = (10.0, 60.0)  # pauses before building a Debian root file system again


def cache_dir_from_env() -> Path:
    """``GARRISON_IMAGE_CACHE`` names the folder of root file system tarballs."""
    return Path(os.environ.get(ENV_CACHE) or DEFAULT_CACHE)


@dataclass(frozen=True)
class Recipe:
    """How to make one test image's root file system."""

    name: str
    kind: str  # "busybox" or "debian"
    packages: tuple[str, ...] = ()
    suite: str = "bookworm"
    changes: tuple[str, ...] = ()
    extra_inputs: tuple[str, ...] = field(default=())

    def content_key(self) -> str:
        parts = {
            "version": RECIPE_VERSION,
            "name": self.name,
            "kind": self.kind,
            "packages": sorted(self.packages),
            "suite": self.suite,
            "changes": list(self.changes),
            "inputs": list(self.extra_inputs),
        }
        if self.kind == "busybox":
            parts["busybox"] = _file_digest(BUSYBOX_BINARY)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


BUSYBOX = Recipe(
    name="garrison-test/busybox:latest",
    kind="busybox",
    changes=('CMD ["/bin/sh"]',),
)
DEBIAN = Recipe(
    name="garrison-test/debian:12",
    kind="debian",
    packages=("netcat-openbsd", "procps", "python3-minimal"),
    changes=('CMD ["/bin/bash"]',),
)
NGINX = Recipe(
    name="garrison-test/nginx:latest",
    kind="debian",
    packages=("nginx-light", "curl", "procps"),
    changes=('CMD ["nginx", "-g", "daemon off;"]', "EXPOSE 80/tcp"),
)
ALL_RECIPES = (BUSYBOX, DEBIAN, NGINX)


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ImageBuildError(f"cannot read {path}: {exc}") from exc


def ensure_image(client: docker.DockerClient, recipe: Recipe, cache_dir: Path) -> str:
    """The image id of ``recipe`` on this engine, building or importing it when needed."""
    key = recipe.content_key()
    current = _image_with_key(client, recipe.name, key)
    if current is not None:
        return current
    tarball = cache_dir / f"{recipe.name.replace('/', '_').replace(':', '_')}-{key}.tar"
    if not tarball.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        _build_rootfs(recipe, tarball)
    return _import(client, recipe, key, tarball)


def _image_with_key(client: docker.DockerClient, name: str, key: str) -> str | None:
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return str(image.id) if labels.get(KEY_LABEL) == key else None


def _build_rootfs(recipe: Recipe, tarball: Path) -> None:
    partial = tarball.with_name(tarball.stem + ".partial.tar")
    if recipe.kind == "busybox":
        _busybox_rootfs(partial)
    else:
        _debian_rootfs(recipe, partial)
    partial.rename(tarball)


def _busybox_rootfs(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="garrison-busybox-") as tmp:
        root = Path(tmp)
        for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy2(BUSYBOX_BINARY, root / "bin/busybox")
        # Each applet at its usual place, and every one in /bin too (as `busybox --install`
        # does on small images), so `/bin/nc` runs the nc applet.
        for applet in _busybox_applets():
            for link in (root / applet, root / "bin" / Path(applet).name):
                if not link.exists() and not link.is_symlink():
                    link.symlink_to("/bin/busybox")
        (root / "etc/passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        )
        (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
        (root / "tmp").chmod(0o1777)
        _run(["tar", "-C", str(root), "-cf", str(out), "."], "pack busybox root")


def _busybox_applets() -> list[str]:
    listing = _run([str(BUSYBOX_BINARY), "--list-full"], "list busybox applets")
    return [line.strip() for line in listing.splitlines() if line.strip()]


def _debian_rootfs(recipe: Recipe, out: Path) -> None:
    argv = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        "--format=tar",
        f"--include={','.join(recipe.packages)}",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        recipe.suite,
        str(out),
    ]
    for pause in (*BUILD_RETRIES, None):
        try:
            _run(argv, f"mmdebstrap {recipe.name}")
            return
        except ImageBuildError as exc:  # e.g. a mirror in the middle of a sync
            if pause is None:
                raise
            log.warning("%s; trying again in %.0f s", exc, pause)
            time.sleep(pause)


def _run(argv: list[str], what: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageBuildError(f"cannot {what}: {exc}") from exc
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-5:])
        raise ImageBuildError(f"cannot {what} (exit {result.returncode}): {tail}")
    return result.stdout


def _import(client: docker.DockerClient, recipe: Recipe, key: str, tarball: Path) -> str:
    repository, _, tag = recipe.name.partition(":")
    changes = [*recipe.changes, f"LABEL {KEY_LABEL}={key}"]
    try:
        client.api.import_image_from_file(
            str(tarball), repository=repository, tag=tag or "latest", changes=changes
        )
        return str(client.images.get(recipe.name).id)
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"cannot import {recipe.name}: {exc}") from exc


def ensure_all(client: docker.DockerClient, cache_dir: Path) -> dict[str, str]:
    """Every test image, by name → image id."""
    return {recipe.name: ensure_image(client, recipe, cache_dir) for recipe in ALL_RECIPES}
