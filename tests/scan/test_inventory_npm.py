"""npm packages beyond a plain node_modules: workspaces linked from node_modules, pnpm's
linked store, lockfiles (versions 1 to 3, as npm writes them) of projects without
node_modules, and packages a system package manager installed."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from garrison.scan.inventory import inventory_from_files, read_layers
from garrison.scan.inventory.npm_lock import parse_lockfile
from garrison.scan.inventory.owners import listed_metadata
from garrison.scan.types import Inventory
from tests.scan.test_inventory_layers import OS_RELEASE, Entry, archive, layer

DATA = Path(__file__).parent / "data"
# What npm's lockfiles of tests/scan/npm_projects.py install without development
# dependencies (npm query --package-lock-only '*:not(.dev)'), each lockfile version alike.
LOCKED = [
    ("@acme/util", "2.0.0"),
    ("debugx", "4.3.4"),
    ("left-pad", "1.1.0"),
    ("left-pad", "1.3.0"),
    ("ws", "0.5.0"),
]
WS = json.dumps({"name": "ws", "version": "0.5.0"}).encode()


def manifest(name: str, version: str = "1.0.0") -> bytes:
    return json.dumps({"name": name, "version": version}).encode()


def npm_of(inventory: Inventory) -> list[tuple[str, str, str]]:
    return sorted((p.path, p.name, p.version) for p in inventory.packages if p.ecosystem == "npm")


def image(*entries: Entry) -> Inventory:
    rootfs = read_layers(archive([layer(("file", "etc/os-release", OS_RELEASE), *entries)]))
    return inventory_from_files(rootfs.files, skipped=rootfs.skipped, npm_links=rootfs.npm_links)


def test_a_workspace_linked_from_node_modules_is_listed_once_at_its_folder() -> None:
    inventory = image(
        ("file", "app/package.json", manifest("app")),
        ("file", "app/packages/ws/package.json", WS),
        ("file", "app/packages/unlinked/package.json", manifest("unlinked")),
        ("sym", "app/node_modules/ws", "../packages/ws"),
        ("sym", "app/node_modules/@acme/ws2", "/app/packages/ws"),  # absolute, scoped
        ("file", "app/node_modules/left-pad/package.json", manifest("left-pad")),
    )
    assert npm_of(inventory) == [
        ("app/node_modules/left-pad/package.json", "left-pad", "1.0.0"),
        ("app/packages/ws/package.json", "ws", "0.5.0"),
    ]


def test_pnpms_links_into_its_store_do_not_list_a_package_twice() -> None:
    store = "app/node_modules/.pnpm/left-pad@1.3.0/node_modules/left-pad"
    inventory = image(
        ("file", f"{store}/package.json", manifest("left-pad", "1.3.0")),
        ("sym", "app/node_modules/left-pad", ".pnpm/left-pad@1.3.0/node_modules/left-pad"),
    )
    assert npm_of(inventory) == [(f"{store}/package.json", "left-pad", "1.3.0")]


def test_a_link_that_dangles_or_loops_lists_nothing() -> None:
    inventory = image(
        ("sym", "app/node_modules/gone", "../packages/gone"),
        ("sym", "app/node_modules/a", "b"),
        ("sym", "app/node_modules/b", "a"),
    )
    assert npm_of(inventory) == []


def test_each_lockfile_version_lists_what_npm_would_install_without_dev_dependencies() -> None:
    for version in (1, 2, 3):
        lock = (DATA / f"inv_npm_lock_v{version}.json").read_bytes()
        tree = {"srv/app/package-lock.json": lock, "srv/app/packages/ws/package.json": WS}
        parsed = parse_lockfile(lock, "srv/app/package-lock.json", tree)
        assert sorted((p.name, p.version) for p in parsed.packages) == LOCKED, version
        assert {p.path for p in parsed.packages} == {"srv/app/package-lock.json"}
        assert parsed.skipped == [], version


def test_a_lockfile_is_not_read_where_node_modules_says_what_is_installed() -> None:
    lock = (DATA / "inv_npm_lock_v3.json").read_bytes()
    inventory = image(
        ("file", "app/package-lock.json", lock),
        ("file", "app/node_modules/left-pad/package.json", manifest("left-pad", "1.3.0")),
        ("file", "srv/package-lock.json", lock),
        ("file", "srv/packages/ws/package.json", WS),
    )
    assert npm_of(inventory) == [
        ("app/node_modules/left-pad/package.json", "left-pad", "1.3.0"),
        *[("srv/package-lock.json", name, version) for name, version in LOCKED],
    ]


def test_npm_shrinkwrap_wins_over_package_lock_and_one_inside_a_package_is_not_read() -> None:
    def lock(name: str) -> bytes:
        packages = {"": {"name": "app"}, f"node_modules/{name}": {"version": "2.0.0"}}
        return json.dumps({"lockfileVersion": 3, "packages": packages}).encode()

    inventory = image(
        ("file", "app/package-lock.json", lock("from-lock")),
        ("file", "app/npm-shrinkwrap.json", lock("from-shrinkwrap")),
        ("file", "opt/node_modules/x/package.json", manifest("x")),
        ("file", "opt/node_modules/x/npm-shrinkwrap.json", lock("inside-x")),
    )
    assert [name for _, name, _ in npm_of(inventory)] == ["from-shrinkwrap", "x"]


def test_entries_without_a_registry_version_are_skipped_and_said() -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app"},
            "node_modules/from-git": {"version": "git+ssh://git@example.invalid/x.git#abc"},
            "node_modules/no-version": {"resolved": "x"},
            "node_modules/ok": {"version": "1.2.3"},
            "node_modules/@scope/alias": {"name": "real-name", "version": "3.0.0"},
        },
    }
    parsed = parse_lockfile(json.dumps(lock).encode(), "p/package-lock.json", {})
    assert sorted((p.name, p.version) for p in parsed.packages) == [
        ("ok", "1.2.3"),
        ("real-name", "3.0.0"),
    ]
    assert len(parsed.skipped) == 2
    assert "node_modules/from-git skipped, version 'git+ssh:" in parsed.skipped[0]
    assert "node_modules/no-version skipped, no name or version" in parsed.skipped[1]


def test_a_version_1_local_folder_without_its_package_json_is_skipped_and_said() -> None:
    lock = (DATA / "inv_npm_lock_v1.json").read_bytes()
    parsed = parse_lockfile(lock, "srv/package-lock.json", {})
    assert ("ws", "0.5.0") not in {(p.name, p.version) for p in parsed.packages}
    assert parsed.skipped == [
        "srv/package-lock.json: node_modules/ws skipped, its folder packages/ws has no package.json"
    ]


def test_a_lockfile_that_is_not_one_is_skipped_and_said() -> None:
    deep: dict[str, object] = {"version": "1.0.0"}
    for _ in range(300):
        deep = {"version": "1.0.0", "dependencies": {"a": deep}}
    nested = json.dumps({"dependencies": {"a": deep}}).encode()
    for body, why in (
        (b"{", "not JSON"),
        (b"[1]", "not a JSON object"),
        (nested, "dependencies nested deeper than 200 skipped"),
    ):
        parsed = parse_lockfile(body, "x/package-lock.json", {})
        assert len(parsed.packages) == (201 if body is nested else 0)
        assert why in " ".join(parsed.skipped)


def test_a_dpkg_owned_module_linked_from_node_modules_is_left_to_debian() -> None:
    # Debian's node packages link their dependencies inside /usr/share/nodejs.
    listed = b"/.\n/usr/share/nodejs/foo\n/usr/share/nodejs/foo/package.json\n"
    inventory = image(
        ("file", "var/lib/dpkg/info/node-foo.list", listed),
        ("file", "usr/share/nodejs/foo/package.json", manifest("foo")),
        ("sym", "usr/share/nodejs/bar/node_modules/foo", "../../foo"),
    )
    assert npm_of(inventory) == []


def test_apk_owned_npm_packages_are_left_to_alpine() -> None:
    db = (
        b"P:npm\nV:10.9.1-r0\n"
        b"F:usr/lib/node_modules/npm\nR:package.json\nR:index.js\n"
        b"F:usr/lib/node_modules/npm/node_modules/@npmcli/arborist\nR:package.json\n\n"
    )
    inventory = image(
        ("file", "lib/apk/db/installed", db),
        ("file", "usr/lib/node_modules/npm/package.json", manifest("npm", "10.9.1")),
        (
            "file",
            "usr/lib/node_modules/npm/node_modules/@npmcli/arborist/package.json",
            manifest("@npmcli/arborist", "8.0.0"),
        ),
        ("file", "usr/local/lib/node_modules/own/package.json", manifest("own")),
    )
    assert npm_of(inventory) == [("usr/local/lib/node_modules/own/package.json", "own", "1.0.0")]


def test_a_file_list_keeps_every_package_json_line() -> None:
    listed = b"/usr/share/nodejs/foo/package.json\n/usr/share/nodejs/foo/index.js\n"
    assert listed_metadata(listed) == b"usr/share/nodejs/foo/package.json"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(
    ["packages", "dependencies", "version", "dev", "link", "resolved", "name", ""]
)
LOCKISH = st.recursive(
    st.text(max_size=8) | st.booleans() | st.none(),
    lambda inner: st.dictionaries(KEYS | st.text(max_size=12), inner, max_size=5),
    max_leaves=40,
)


@given(st.one_of(JSON, LOCKISH))
def test_any_json_lockfile_gives_packages_or_notes_never_an_error(value: object) -> None:
    tree = {"p/packages/ws/package.json": WS}
    parsed = parse_lockfile(json.dumps(value).encode(), "p/package-lock.json", tree)
    assert all(p.ecosystem == "npm" and p.version[0].isdigit() for p in parsed.packages)
