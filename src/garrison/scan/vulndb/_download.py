"""Downloading OSV's per-ecosystem archives: ``{base_url}/{ecosystem}/all.zip``, the layout
of the public bucket https://osv-vulnerabilities.storage.googleapis.com/."""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from garrison.errors import GarrisonError

DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = ("Debian", "Alpine", "PyPI", "npm")
DEFAULT_TIMEOUT = 60.0  # seconds without data before a download is given up


class DownloadError(GarrisonError):
    """An OSV archive could not be downloaded."""


def archive_url(base_url: str, ecosystem: str) -> str:
    return f"{base_url.rstrip('/')}/{urllib.parse.quote(ecosystem)}/all.zip"


def download(url: str, into: Path, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Save ``url`` to a temporary file under ``into``; the caller deletes it."""
    into.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=into, prefix="osv-", suffix=".zip")
    target = Path(name)
    try:
        with open(fd, "wb") as file:
            _fetch(url, file, timeout)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _fetch(url: str, file: BinaryIO, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "garrison-vulndb"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            shutil.copyfileobj(response, file, length=1 << 20)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"download of {url} failed: {exc.reason}") from exc
    except (TimeoutError, OSError) as exc:
        raise DownloadError(f"download of {url} failed: {exc}") from exc
