"""Install the Debian packages the development engine and test images need."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from garrison.errors import PackageInstallError

ENGINE_PACKAGES = ("docker.io", "busybox-static", "mmdebstrap")


def missing_packages(names: Sequence[str]) -> list[str]:
    """The packages of ``names`` that dpkg does not report as installed."""
    return [name for name in names if not _installed(name)]


def _installed(name: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip().endswith(" installed")


def ensure_packages(names: Sequence[str] = ENGINE_PACKAGES) -> list[str]:
    """Install what is missing with apt-get; return the names that were installed."""
    missing = missing_packages(names)
    if not missing:
        return []
    if os.geteuid() != 0:
        raise PackageInstallError(
            f"missing Debian packages {', '.join(missing)}; run as root or install them"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _apt(["apt-get", "update", "-qq"], env)
    _apt(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env)
    return missing


def _apt(argv: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        raise PackageInstallError(f"{' '.join(argv[:2])} failed: {' | '.join(tail)}")
