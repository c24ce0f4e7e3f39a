"""Downloading OSV's per-ecosystem archives: ``{base_url}/{ecosystem}/all.zip``, the layout
of the public bucket https://osv-vulnerabilities.storage.googleapis.com/."""

from __future__ import annotations

import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from garrison.errors import GarrisonError, InvalidInput
from garrison.scan.vulndb._archive import GIB, MAX_SOURCE_BYTES

DEFAULT_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = ("Debian", "Alpine", "PyPI", "npm")
DEFAULT_TIMEOUT = 60.0  # seconds without data before a download is given up
MAX_TIMEOUT = 3600.0
# An archive holds at most MAX_SOURCE_BYTES of records once inflated, so no more than that
# downloaded (a server that never stops sending must not fill the disk).
MAX_DOWNLOAD_BYTES = MAX_SOURCE_BYTES
_CHUNK = 1 << 20


class DownloadError(GarrisonError):
    """An OSV archive could not be downloaded."""


def check_timeout(timeout: float) -> None:
    if not 0 < timeout <= MAX_TIMEOUT:  # also refuses NaN
        raise InvalidInput(f"timeout {timeout}: give seconds above 0, at most {MAX_TIMEOUT:.0f}")


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
            _copy(response, file, url)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"download of {url} failed: {exc.reason}") from exc
    except (TimeoutError, OSError) as exc:
        raise DownloadError(f"download of {url} failed: {exc}") from exc


def _copy(response: BinaryIO, file: BinaryIO, url: str) -> None:
    copied = 0
    while chunk := response.read(_CHUNK):
        copied += len(chunk)
        if copied > MAX_DOWNLOAD_BYTES:
            raise DownloadError(
                f"download of {url} refused: larger than {MAX_DOWNLOAD_BYTES // GIB} GiB"
            )
        file.write(chunk)
