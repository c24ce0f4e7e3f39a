"""The limits on what one image may cost the inventory, in one place (docs/scanning.md,
"Limits").

Each bounds the memory and time a hostile image can make a scan spend, well above what a real
one needs: a Debian status file of 3,000 packages is about 4 MiB, a ``package.json`` or a
``METADATA`` a few KiB (a few hundred when it carries its README), an os-release under 1 KiB.
Past a limit the file (or record) is skipped and named in the inventory's ``skipped``; the
rest of the image is still read.
"""

from __future__ import annotations

KIB = 1 << 10
MIB = 1 << 20

MAX_DATABASE = 32 * MIB  # a dpkg status file (or status.d entry) or file list, apk's database
MAX_EGG = 16 * MIB  # a zipped .egg, read for its EGG-INFO/PKG-INFO (up to MAX_MANIFEST)
MAX_MANIFEST = 4 * MIB  # a package.json, METADATA, PKG-INFO or single-file egg-info
MAX_RELEASE = 64 * KIB  # os-release, debian_version, alpine-release
MAX_KEPT = 256 * MIB  # the wanted files of all the layers of one image, together
KEPT_ENTRY = 256  # what keeping one more file costs besides its bytes (its path, the dict)
MAX_IMAGE_MANIFEST = 4 * MIB  # the manifest.json of a docker save archive
MAX_LAYERS = 500  # layers an image lists (overlayfs stacks at most 500, Docker 125)
MAX_DOCUMENTS = 64  # OCI image indexes and manifests kept from one archive (one per platform…)
MAX_DEPTH = 8  # OCI image indexes followed from index.json down to a manifest
MAX_HEADER = 1 * MIB  # a tar extended header (pax, GNU long name), which tarfile reads whole
MAX_PATH = 4_096  # a member's name or a link's target, in characters (Linux's PATH_MAX)
MAX_FIELD = 4_096  # a name, version, source, architecture or license, in characters
MAX_RECORDS = 100_000  # stanzas in one database (Debian has about 65,000 packages in all)
MAX_NOTES = 50  # skipped records named per file or layer; the rest are counted


def too_large(path: str, size: int, limit: int) -> str | None:
    """The skipped note for a file of ``size`` bytes at ``path``, when over ``limit``."""
    if size <= limit:
        return None
    return f"{path}: skipped, {size} bytes, larger than {in_units(limit)}"


def in_units(size: int) -> str:
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size // KIB} KiB" if size % KIB == 0 else f"{size} bytes"
