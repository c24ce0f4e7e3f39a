"""What an image contains: its OS and its packages (dpkg, apk, Python, npm), read from the
layers the engine exports, whiteouts and opaque directories applied.

``inventory_of`` reads an image on an engine; ``read_layers`` reads a ``docker save`` archive
alone; ``inventory_from_files`` parses files however they were obtained.
"""

from __future__ import annotations

from garrison.scan.inventory.archive import read_layers
from garrison.scan.inventory.build import inventory_from_files
from garrison.scan.inventory.engine import image_config, inventory_of
from garrison.scan.inventory.osinfo import detect_os
from garrison.scan.inventory.rootfs import Rootfs

__all__ = [
    "Rootfs",
    "detect_os",
    "image_config",
    "inventory_from_files",
    "inventory_of",
    "read_layers",
]
