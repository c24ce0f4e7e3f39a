"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO`` and the
single-file ``*.egg-info`` distutils writes (all in the core-metadata email format).

Names are normalized as PEP 503 says (``PyYAML`` → ``pyyaml``) because that is the form OSV's
PyPI records and purls use for matching.
"""

from __future__ import annotations

from packaging.metadata import RawMetadata, parse_email
from packaging.utils import canonicalize_name

from garrison.scan.inventory.parsed import Parsed, package

_CLASSIFIER = "License :: "
_SHORT = 80  # a License field longer than this is the license's text, not its name


def parse_metadata(data: bytes, path: str) -> Parsed:
    raw, _unparsed = parse_email(data)
    name, version = raw.get("name", "").strip(), raw.get("version", "").strip()
    if not name or not version:
        return Parsed(skipped=[f"{path}: skipped, no Name or Version"])
    pkg = package("PyPI", canonicalize_name(name), version, path=path, licenses=_licenses(raw))
    return Parsed(packages=[pkg])


def _licenses(raw: RawMetadata) -> tuple[str, ...]:
    expression = raw.get("license_expression", "").strip()
    if expression:
        return (expression,)
    text = raw.get("license", "").strip()
    if text and "\n" not in text and len(text) <= _SHORT and text.upper() != "UNKNOWN":
        return (text,)
    classifiers = raw.get("classifiers", [])
    return tuple(c.split(" :: ")[-1] for c in classifiers if c.startswith(_CLASSIFIER))
