"""CycloneDX SBOM (JSON, spec 1.6) of an image's inventory, written with
cyclonedx-python-lib: one ``library`` component per package with its purl, the OS as an
``operating-system`` component, the image as the BOM's subject."""

from __future__ import annotations

from collections import Counter
from importlib.metadata import PackageNotFoundError, version

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import License
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from garrison.scan.inventory.parsed import arch_of
from garrison.scan.types import Inventory, OSInfo, Package

SPEC_VERSION = "1.6"
_PURL_TYPE = {"Debian": "deb", "Alpine": "apk", "PyPI": "pypi", "npm": "npm"}


def cyclonedx_json(inventory: Inventory, indent: int | None = 2) -> str:
    """The inventory as a CycloneDX 1.6 JSON document."""
    return JsonV1Dot6(cyclonedx_bom(inventory)).output_as_string(indent=indent)


def cyclonedx_bom(inventory: Inventory) -> Bom:
    bom = Bom()
    bom.metadata.tools.components.add(_garrison())
    image = Component(
        type=ComponentType.CONTAINER,
        name=inventory.image_name or inventory.image_id or "image",
        version=inventory.image_id or None,
        bom_ref="image",
    )
    bom.metadata.component = image
    parts = [_os_component(inventory.os), *_package_components(inventory)]
    bom.components.update(parts)
    bom.register_dependency(image, parts)
    return bom


def purl(pkg: Package, os: OSInfo) -> PackageURL:
    """The package URL (https://github.com/package-url/purl-spec) as Trivy and OSV write it:
    ``pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64&distro=debian-12``."""
    kind = _PURL_TYPE[pkg.ecosystem]
    if kind in ("deb", "apk"):
        qualifiers = {"arch": arch_of(pkg), "distro": _distro(os)}
        namespace = os.family if os.family != "unknown" else pkg.ecosystem.lower()
        return PackageURL(kind, namespace, pkg.name, pkg.version, _present(qualifiers))
    scope, _, name = pkg.name.rpartition("/")
    return PackageURL(kind, scope or None, name, pkg.version)


def _distro(os: OSInfo) -> str:
    if not os.version:
        return ""
    # Debian advisories apply to a release (12), not to its point releases (12.7).
    release = os.version.split(".")[0] if os.family == "debian" else os.version
    return f"{os.family}-{release}"


def _present(qualifiers: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in qualifiers.items() if value}


def _package_components(inventory: Inventory) -> list[Component]:
    purls = [purl(p, inventory.os) for p in inventory.packages]
    seen = Counter(str(p) for p in purls)
    refs: Counter[str] = Counter()
    components = []
    for pkg, url in zip(inventory.packages, purls, strict=True):
        ref = str(url)
        if seen[ref] > 1:  # the same package installed twice (two node_modules trees)
            refs[ref] += 1
            ref = f"{ref}#{refs[ref]}"
        components.append(_component(pkg, url, ref))
    return components


def _component(pkg: Package, url: PackageURL, ref: str) -> Component:
    return Component(
        type=ComponentType.LIBRARY,
        name=url.name,
        group=url.namespace if pkg.ecosystem == "npm" else None,
        version=pkg.version,
        purl=url,
        bom_ref=ref,
        licenses=_licenses(pkg.licenses),
        properties=_properties(pkg),
    )


def _licenses(names: tuple[str, ...]) -> list[License]:
    factory = LicenseFactory()
    if len(names) == 1:
        return [factory.make_from_string(names[0])]
    # CycloneDX allows one expression or a list of named licenses, never both mixed.
    return [factory.make_with_name(name) for name in names]


def _properties(pkg: Package) -> list[Property]:
    values = {"garrison:package:path": pkg.path}
    if pkg.ecosystem in ("Debian", "Alpine"):
        values["garrison:package:source_name"] = pkg.match_name
        values["garrison:package:source_version"] = pkg.match_version
    return [Property(name=key, value=value) for key, value in values.items() if value]


def _os_component(os: OSInfo) -> Component:
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os.family,
        version=os.version or None,
        description=os.pretty_name or None,
        bom_ref="os",
    )


def _garrison() -> Component:
    try:
        own = version("garrison")
    except PackageNotFoundError:
        own = None
    return Component(type=ComponentType.APPLICATION, name="garrison", version=own)
