"""The OCI image layout read as one stream, with or without ``manifest.json``: index.json →
(nested indexes →) image manifest → layers, on archives built here as real tar bytes the way
skopeo, buildx and Docker 25 write them, and on hostile ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

import pytest

from garrison.errors import ScanError
from garrison.scan.inventory import read_layers
from garrison.scan.inventory.limits import MAX_DEPTH, MAX_DOCUMENTS, MAX_IMAGE_MANIFEST
from garrison.scan.inventory.oci import ZSTD_MAGIC
from tests.scan.test_inventory_layers import OS_RELEASE, layer, npm

LAYER = "application/vnd.oci.image.layer.v1.tar"
GZIP_LAYER = LAYER + "+gzip"
ZSTD_LAYER = LAYER + "+zstd"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}
ATTESTATION = {"os": "unknown", "architecture": "unknown"}

Blob = tuple[str, bytes]  # member name, content


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(data: bytes) -> Blob:
    return f"blobs/sha256/{hashlib.sha256(data).hexdigest()}", data


def describe(data: bytes, media_type: str, platform: dict[str, str] | None = None) -> Any:
    found: dict[str, Any] = {"mediaType": media_type, "digest": sha(data), "size": len(data)}
    return found | ({"platform": platform} if platform else {})


def as_json(document: Any) -> bytes:
    return json.dumps(document).encode()


def image(*layers: tuple[bytes, str]) -> tuple[bytes, list[Blob]]:
    """An image manifest naming ``layers`` (content, media type) and its blobs: the config,
    the layers and the manifest itself."""
    config = as_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    manifest = as_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": describe(config, CONFIG),
            "layers": [describe(data, media) for data, media in layers],
        }
    )
    return manifest, [blob(config), *(blob(data) for data, _ in layers), blob(manifest)]


def index(*manifests: Any) -> bytes:
    return as_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": list(manifests)})


def layout(
    index_json: bytes | None,
    blobs: list[Blob],
    *,
    index_first: bool = False,
    manifest_json: bytes | None = None,
) -> io.BytesIO:
    """An OCI layout archive: oci-layout, index.json before or after the blobs, and a
    Docker 25 ``manifest.json`` last when one is given."""
    members = [("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), *blobs]
    if index_json is not None:
        members.insert(1 if index_first else len(members), ("index.json", index_json))
    if manifest_json is not None:
        members.append(("manifest.json", manifest_json))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def single(*layers: tuple[bytes, str], index_first: bool = False) -> io.BytesIO:
    manifest, blobs = image(*layers)
    return layout(index(describe(manifest, MANIFEST)), blobs, index_first=index_first)


LOWER = layer(("file", "etc/os-release", OS_RELEASE), npm("a"), npm("gone"))
UPPER = layer(("file", "srv/app/node_modules/.wh.gone", b""), npm("b"))


def npm_names(files: dict[str, bytes]) -> set[str]:
    prefix, suffix = "srv/app/node_modules/", "/package.json"
    return {p[len(prefix) : -len(suffix)] for p in files if p.startswith(prefix)}


# --- layouts read -------------------------------------------------------------------------


@pytest.mark.parametrize("index_first", [False, True], ids=["blobs-first", "index-first"])
def test_oci_layout_without_manifest_json_stacks_plain_and_gzip_layers(index_first: bool) -> None:
    upper = gzip.compress(UPPER)
    rootfs = read_layers(single((LOWER, LAYER), (upper, GZIP_LAYER), index_first=index_first))
    assert npm_names(rootfs.files) == {"a", "b"}
    assert rootfs.files["etc/os-release"] == OS_RELEASE
    assert rootfs.skipped == ()
    assert rootfs.layers == (blob(LOWER)[0], blob(upper)[0])


def test_oci_docker_25_layout_reads_manifest_json_and_no_json_blob_is_a_broken_layer() -> None:
    manifest, blobs = image((LOWER, LAYER), (UPPER, LAYER))
    names = [blob(LOWER)[0], blob(UPPER)[0]]
    docker = as_json([{"Config": blobs[0][0], "RepoTags": ["x:1"], "Layers": names}])
    archive = layout(index(describe(manifest, MANIFEST)), blobs, manifest_json=docker)
    rootfs = read_layers(archive)
    assert npm_names(rootfs.files) == {"a", "b"}
    assert rootfs.skipped == ()


def test_manifest_json_wins_over_index_json() -> None:
    manifest, blobs = image((LOWER, LAYER))
    docker = as_json([{"Layers": [blob(UPPER)[0]]}])
    archive = layout(
        index(describe(manifest, MANIFEST)), [*blobs, blob(UPPER)], manifest_json=docker
    )
    assert npm_names(read_layers(archive).files) == {"b"}


def test_unreadable_manifest_json_falls_back_to_index_json_and_says_so() -> None:
    manifest, blobs = image((LOWER, LAYER))
    archive = layout(index(describe(manifest, MANIFEST)), blobs, manifest_json=b"{}")
    rootfs = read_layers(archive)
    assert npm_names(rootfs.files) == {"a", "gone"}
    assert rootfs.skipped == (
        "no readable manifest.json (not a list of images, layers): index.json read",
    )


def test_layer_whose_first_member_name_opens_with_a_brace_is_still_a_layer() -> None:
    odd = layer(("file", "{odd}", b"x"), ("file", "etc/os-release", OS_RELEASE))
    rootfs = read_layers(single((odd, LAYER)))
    assert set(rootfs.files) == {"etc/os-release"}
    assert rootfs.skipped == ()


# --- which image of an index --------------------------------------------------------------


def multi_platform(*platforms: dict[str, str] | None) -> tuple[io.BytesIO, list[bytes]]:
    """An index of one image per platform, each holding one npm package named after its
    position; the manifests, in order."""
    entries, blobs, manifests = [], [], []
    for at, platform in enumerate(platforms):
        manifest, more = image((layer(npm(f"p{at}")), LAYER))
        entries.append(describe(manifest, MANIFEST, platform))
        blobs.extend(more)
        manifests.append(manifest)
    return layout(index(*entries), blobs), manifests


def test_oci_multi_platform_index_reads_linux_amd64_and_says_so() -> None:
    archive, manifests = multi_platform(ARM64, AMD64 | {"variant": "v2"}, ATTESTATION)
    rootfs = read_layers(archive)
    assert npm_names(rootfs.files) == {"p1"}
    short = sha(manifests[1])[7:19]
    assert rootfs.skipped == (f"index.json: 2 image manifests, {short} (linux/amd64/v2) read",)


def test_oci_index_without_linux_amd64_reads_the_first_without_a_platform() -> None:
    archive, _ = multi_platform(ARM64, None, None)
    rootfs = read_layers(archive)
    assert npm_names(rootfs.files) == {"p1"}
    assert "3 image manifests" in rootfs.skipped[0]


def test_oci_index_of_another_platform_only_is_read_and_says_so() -> None:
    archive, _ = multi_platform(ARM64)
    rootfs = read_layers(archive)
    assert npm_names(rootfs.files) == {"p0"}
    assert rootfs.skipped[0].startswith("index.json: no manifest for linux/amd64, ")
    assert rootfs.skipped[0].endswith(" (linux/arm64) read")


def test_oci_nested_index_with_an_attestation_reads_the_image_as_buildx_writes_it() -> None:
    manifest, blobs = image((LOWER, LAYER), (gzip.compress(UPPER), GZIP_LAYER))
    proof, proof_blobs = image((b'{"_type": "https://in-toto.io/Statement/v0.1"}', LAYER))
    inner = index(describe(manifest, MANIFEST, AMD64), describe(proof, MANIFEST, ATTESTATION))
    outer = index(describe(inner, INDEX))
    rootfs = read_layers(layout(outer, [*proof_blobs, *blobs, blob(inner)], index_first=True))
    assert npm_names(rootfs.files) == {"a", "b"}
    assert rootfs.skipped == ()


# --- layers that cannot be read -----------------------------------------------------------


def test_oci_zstd_layer_is_skipped_with_a_note_and_the_rest_read() -> None:
    zstd = ZSTD_MAGIC + b"\x04\x00\x00" + b"not decoded" * 10
    rootfs = read_layers(single((LOWER, LAYER), (zstd, ZSTD_LAYER)))
    assert npm_names(rootfs.files) == {"a", "gone"}
    short = sha(zstd)[7:19]
    assert rootfs.skipped == (
        f"layer 1 ({short}): skipped, zstd-compressed, which Python's standard library cannot read",
    )


def test_oci_missing_layer_blob_is_skipped_with_a_note() -> None:
    manifest, blobs = image((LOWER, LAYER), (UPPER, LAYER))
    kept = [b for b in blobs if b != blob(UPPER)]
    rootfs = read_layers(layout(index(describe(manifest, MANIFEST)), kept))
    assert npm_names(rootfs.files) == {"a", "gone"}
    assert rootfs.skipped == (f"layer 1 ({sha(UPPER)[7:19]}): skipped, missing from the archive",)


def test_oci_layer_naming_a_json_blob_is_skipped_as_not_a_layer() -> None:
    _, blobs = image((LOWER, LAYER))
    config = blobs[0][1]
    listed = as_json({"layers": [describe(LOWER, LAYER), describe(config, LAYER)]})
    rootfs = read_layers(layout(index(describe(listed, MANIFEST)), [*blobs, blob(listed)]))
    assert npm_names(rootfs.files) == {"a", "gone"}
    assert rootfs.skipped == (
        f"layer 1 ({sha(config)[7:19]}): skipped, a JSON document, not a layer tar",
    )


def test_oci_missing_manifest_blob_is_a_scan_error() -> None:
    manifest, blobs = image((LOWER, LAYER))
    archive = layout(index(describe(manifest, MANIFEST)), blobs[:-1])
    with pytest.raises(
        ScanError,
        match=r"index\.json names [0-9a-f]{12}, no image index or manifest: not in the archive",
    ):
        read_layers(archive)


BAD_DIGESTS = [
    "sha512:" + "a" * 128,
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63,
    "sha256:../../../etc/passwd",
    "sha256:" + "a" * 64 + "/../../manifest.json",
    "",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_oci_index_naming_a_digest_that_is_not_sha256_is_a_scan_error(digest: str) -> None:
    manifest, blobs = image((LOWER, LAYER))
    entry = describe(manifest, MANIFEST) | {"digest": digest}
    with pytest.raises(ScanError, match=r"index\.json names .*, not a sha256 digest"):
        read_layers(layout(index(entry), blobs))


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_oci_layer_digest_that_is_not_sha256_is_skipped_and_names_no_member(digest: str) -> None:
    # the traversal names a real layer of the archive: it must not be read through it
    traversal = f"sha256:../sha256/{sha(UPPER)[7:]}"
    manifest = as_json(
        {
            "layers": [
                describe(LOWER, LAYER),
                describe(UPPER, LAYER) | {"digest": digest},
                describe(UPPER, LAYER) | {"digest": traversal},
            ]
        }
    )
    archive = layout(
        index(describe(manifest, MANIFEST)), [blob(LOWER), blob(UPPER), blob(manifest)]
    )
    rootfs = read_layers(archive)
    assert npm_names(rootfs.files) == {"a", "gone"}
    assert [note.split(": ")[0] for note in rootfs.skipped] == ["layer 1", "layer 2"]
    assert all("is not a sha256 digest" in note for note in rootfs.skipped)


def test_oci_index_loop_is_a_scan_error() -> None:
    # names are taken, not hashes, so that two indexes can name each other
    first, second = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    one = index({"mediaType": INDEX, "digest": second})
    two = index({"mediaType": INDEX, "digest": first})
    blobs = [(f"blobs/sha256/{'1' * 64}", one), (f"blobs/sha256/{'2' * 64}", two)]
    with pytest.raises(ScanError, match=r"names 111111111111 again: the indexes loop"):
        read_layers(layout(index({"mediaType": INDEX, "digest": first}), blobs))


def test_oci_indexes_nested_deeper_than_the_limit_are_a_scan_error() -> None:
    manifest, blobs = image((LOWER, LAYER))
    entry = describe(manifest, MANIFEST)
    for _ in range(MAX_DEPTH + 1):
        nested = index(entry)
        blobs.append(blob(nested))
        entry = describe(nested, INDEX)
    with pytest.raises(ScanError, match=f"image indexes nested deeper than {MAX_DEPTH}"):
        read_layers(layout(index(entry), blobs))


def test_oci_oversized_index_json_is_a_scan_error_before_it_is_read() -> None:
    manifest, blobs = image((LOWER, LAYER))
    huge = index(describe(manifest, MANIFEST)) + b" " * MAX_IMAGE_MANIFEST
    with pytest.raises(ScanError, match=r"index\.json: skipped, \d+ bytes, larger than 4 MiB"):
        read_layers(layout(huge, blobs))


def test_oci_oversized_manifest_blob_is_a_scan_error_saying_why() -> None:
    manifest, blobs = image((LOWER, LAYER))
    huge = manifest[:-1] + b', "pad": "' + b"x" * MAX_IMAGE_MANIFEST + b'"}'
    archive = layout(index(describe(huge, MANIFEST)), [*blobs, blob(huge)])
    with pytest.raises(ScanError, match="larger than 4 MiB for a JSON document, and not a tar"):
        read_layers(archive)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "not JSON, and not a tar"),
        (b"{not json", "not JSON, and not a tar"),
    ],
    ids=["deep", "broken"],
)
def test_oci_manifest_blob_that_is_not_json_is_a_scan_error_saying_why(
    body: bytes, why: str
) -> None:
    archive = layout(index(describe(body, MANIFEST)), [blob(body)])
    with pytest.raises(ScanError, match=why):
        read_layers(archive)


@pytest.mark.parametrize(
    ("index_json", "why"),
    [
        (b"[]", "index.json: not a JSON object"),
        (b"\xff", "index.json: not JSON"),
        (b'{"layout": 1}', "index.json: lists no manifests"),
        (index(), "index.json lists no image manifest"),
        (index(describe(b"x", MANIFEST, ATTESTATION)), "index.json lists no image manifest"),
        (as_json({"manifests": [{}] * 501}), "index.json lists 501 manifests, more than 500"),
    ],
    ids=["list", "bytes", "no-manifests", "empty", "attestation-only", "too-many"],
)
def test_oci_index_json_leading_to_no_image_is_a_scan_error(index_json: bytes, why: str) -> None:
    with pytest.raises(ScanError, match="not a readable image archive: " + why):
        read_layers(layout(index_json, []))


def test_oci_documents_past_the_cap_are_not_kept_and_the_error_says_so() -> None:
    decoys = [blob(index({"digest": sha(bytes([n]))})) for n in range(MAX_DOCUMENTS)]
    manifest, blobs = image((LOWER, LAYER))
    archive = layout(index(describe(manifest, MANIFEST)), [*decoys, *blobs])
    with pytest.raises(
        ScanError, match=f"a JSON document past the first {MAX_DOCUMENTS}, not kept"
    ):
        read_layers(archive)


def test_archive_without_manifest_or_index_is_a_scan_error_naming_both() -> None:
    with pytest.raises(ScanError, match=r"no readable manifest\.json or index\.json"):
        read_layers(layout(None, [blob(LOWER)]))
