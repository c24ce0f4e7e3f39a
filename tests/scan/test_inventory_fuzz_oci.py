"""The OCI layout reader fed random layouts: any index.json, any blobs (indexes and manifests
naming each other, in loops or not, with digests good, bad and hostile; layers plain, gzip,
zstd, broken; garbage), before or after index.json. Each gives a root file system holding only
what the layers hold, or a ScanError: never another exception."""

from __future__ import annotations

import gzip
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from garrison.errors import ScanError
from garrison.scan.inventory import read_layers
from garrison.scan.inventory.oci import ZSTD_MAGIC
from tests.scan.test_inventory_oci import (
    AMD64,
    ARM64,
    ATTESTATION,
    BAD_DIGESTS,
    GZIP_LAYER,
    INDEX,
    LAYER,
    LOWER,
    MANIFEST,
    UPPER,
    ZSTD_LAYER,
    as_json,
    layout,
    single,
)

POOL = [f"{n:x}" * 64 for n in range(1, 5)]  # member names blobs may take, whatever they hold
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
pool_digest = st.sampled_from([f"sha256:{hexname}" for hexname in POOL])


def mostly(usual: st.SearchStrategy[Any], *rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` seven times in eight, else one of ``rare`` (one_of draws its branches alike)."""
    return st.integers(0, 7).flatmap(lambda n: st.one_of(*rare) if n == 0 else usual)


any_digest = mostly(pool_digest, st.sampled_from(BAD_DIGESTS), json_scalar)
any_platform = st.one_of(
    st.sampled_from([AMD64, ARM64, ATTESTATION, AMD64 | {"variant": "v3"}]),
    st.dictionaries(st.sampled_from(["os", "architecture", "variant"]), json_scalar),
    json_scalar,
)
descriptor = st.fixed_dictionaries(
    {"digest": any_digest},
    optional={
        "mediaType": st.sampled_from([INDEX, MANIFEST, LAYER, GZIP_LAYER, ZSTD_LAYER, "x"]),
        "platform": any_platform,
    },
)
any_descriptor = mostly(descriptor, json_scalar)


def any_document(*keys: str) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda key, entries: as_json({key: entries}),
        st.sampled_from(keys),
        st.lists(any_descriptor, min_size=1, max_size=4),
    )


any_layer = st.sampled_from([LOWER, UPPER, gzip.compress(UPPER), ZSTD_MAGIC + b"x"])
any_blob = mostly(
    st.one_of(any_document("manifests", "layers", "config"), any_layer),
    st.sampled_from([b"{", b"[]", b'{"layers": 1}']),
    st.binary(max_size=64),
)


@settings(max_examples=300, deadline=None)
@given(
    index_json=st.one_of(
        any_document("manifests"), any_document("layers"), st.none(), st.binary(max_size=32)
    ),
    blobs=st.lists(any_blob, min_size=len(POOL), max_size=len(POOL)),
    missing=st.sets(st.sampled_from(POOL), max_size=2),
    index_first=st.booleans(),
)
def test_any_oci_layout_gives_a_root_or_a_scan_error(
    index_json: bytes | None, blobs: list[bytes], missing: set[str], index_first: bool
) -> None:
    found = [(hexname, data) for hexname, data in zip(POOL, blobs, strict=True)]
    named = [(f"blobs/sha256/{h}", data) for h, data in found if h not in missing]
    try:
        rootfs = read_layers(layout(index_json, named, index_first=index_first))
    except ScanError as exc:
        message = str(exc)
    else:
        message = ""
        event(f"read, {len(rootfs.files)} files")
        assert set(rootfs.files) <= set(read_layers(single((LOWER, LAYER))).files) | {
            "srv/app/node_modules/b/package.json"
        }
        assert len(rootfs.layers) <= 4  # what one manifest may list here
        for note in rootfs.skipped:
            note.encode()
    assert not message or message.startswith("not a readable image archive: ")
