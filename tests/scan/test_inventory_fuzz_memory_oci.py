"""Bounded memory for the OCI layout: JSON blobs past the limit streamed through unread, and
the costliest documents within it kept no more than ``MAX_DOCUMENTS`` at a time, each reduced
to its descriptors; in a child process whose peak resident set must stay under the ceiling of
``test_inventory_fuzz_memory``."""

from __future__ import annotations

import json
from pathlib import Path

from garrison.scan.inventory.limits import (
    MAX_DOCUMENTS,
    MAX_IMAGE_MANIFEST,
    MAX_LAYERS,
    MAX_NOTES,
    MIB,
)
from tests.scan.test_inventory_fuzz_memory import (
    CEILING_KIB,
    Many,
    Piece,
    entry,
    run_child,
    tar,
    write,
)


def costly_manifest(number: int, *, padded: bool) -> tuple[Piece, ...]:
    """A manifest of the most descriptors, each field longer than is kept; ``padded``, then
    empty arrays (the JSON that costs most per byte to parse) up to ``MAX_IMAGE_MANIFEST``."""
    long = f"{number:x}".ljust(300, "x")
    platform = {"os": long, "architecture": long, "variant": long}
    layer = {"mediaType": long, "digest": long, "platform": platform}
    head = json.dumps({"layers": [layer] * MAX_LAYERS})[:-1].encode() + b', "pad": ['
    pad = Many(b"[],", MAX_IMAGE_MANIFEST - len(head) - 100) if padded else b""
    return head, pad, b"[]]}"


def test_huge_and_costly_json_blobs_go_through_in_bounded_memory(tmp_path: Path) -> None:
    names = [f"blobs/sha256/{n:064x}" for n in range(MAX_DOCUMENTS + 4)]
    first = "sha256:" + names[0].rsplit("/", 1)[1]
    index = json.dumps({"manifests": [{"digest": first}]}).encode()
    huge = (b'{"layers": "', Many(b"x", 300 * MIB), b'"}')  # past the limit: not kept
    source = write(
        tmp_path / "image.tar",
        *tar(
            (entry("index.json"), (index,)),
            (entry("blobs/sha256/" + "f" * 64), huge),
            *((entry(name), costly_manifest(n, padded=n < 4)) for n, name in enumerate(names)),
        ),
    )
    out, peak = run_child("archive", source, tmp_path)
    assert out["files"] == []
    # the first manifest's layers all have digests that are not sha256: each named, then counted
    assert len(out["skipped"]) == MAX_NOTES + 1
    assert "is not a sha256 digest" in out["skipped"][0]
    assert peak < CEILING_KIB, f"peak RSS {peak // 1024} MiB"
