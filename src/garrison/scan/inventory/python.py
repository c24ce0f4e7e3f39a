"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, the
single-file ``*.egg-info`` distutils writes, and eggs' ``EGG-INFO/PKG-INFO``, in a folder or
in a zipped ``.egg`` (all in the core-metadata email format).

Names are normalized as PEP 503 says (``PyYAML`` → ``pyyaml``) because that is the form OSV's
PyPI records and purls use for matching.

Only the header fields read here go to ``packaging``'s parser: the email parser costs some
thirty times its input in memory, and a METADATA is mostly its description (the body) and
requirements, which the inventory does not read.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

from packaging.metadata import RawMetadata, parse_email
from packaging.utils import canonicalize_name

from garrison.scan.inventory.limits import MAX_MANIFEST, in_units, too_large
from garrison.scan.inventory.parsed import Parsed, clipped, package

_CLASSIFIER = "License :: "
_SHORT = 80  # a License field longer than this is the license's text, not its name
_MOST_CLASSIFIERS = 100  # License classifiers read; a real distribution gives one or two
# The header lines, as the email parser reads them (``email.feedparser``: a header, a
# continuation, or a Unix From line); the first other line, an empty one usually, ends them.
# Possessive (``*+``): a plain ``*`` keeps a backtracking record per line, hundreds of bytes.
_HEADERS = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*+")
_EGG_INFO = "EGG-INFO/PKG-INFO"
# What zipfile raises on a damaged or unusual zip: a bad structure, a CRC or size that does
# not match, an unknown compression method, encryption (RuntimeError), a truncated stream.
_BAD_ZIP = (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, zlib.error)
_WANTED = re.compile(
    rb"(?:^|(?<=[\r\n]))(name|version|license|license-expression|classifier):"
    rb"[^\r\n]*(?:(?:\r\n|\r|\n)[\t ][^\r\n]*)*+",
    re.IGNORECASE,
)


def parse_metadata(data: bytes, path: str) -> Parsed:
    if note := too_large(path, len(data), MAX_MANIFEST):
        return Parsed(skipped=[note])
    raw, _unparsed = parse_email(_wanted_headers(data))
    name, version = raw.get("name", "").strip(), raw.get("version", "").strip()
    if not name or not version:
        return Parsed(skipped=[f"{path}: skipped, no Name or Version"])
    parsed = Parsed()
    pkg = package("PyPI", canonicalize_name(name), version, path=path, licenses=_licenses(raw))
    parsed.add(pkg, f"{path}:")
    return parsed


def parse_zipped_egg(data: bytes, path: str) -> Parsed:
    """The distribution of a zipped ``.egg``, from its ``EGG-INFO/PKG-INFO``; at most
    ``MAX_MANIFEST`` bytes of it are inflated, whatever size the zip declares."""
    pkg_info, why = _egg_pkg_info(data)
    if why:
        return Parsed(skipped=[f"{path}: skipped, {why}"])
    return parse_metadata(pkg_info, path)


def _egg_pkg_info(data: bytes) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as egg:
            info = egg.getinfo(_EGG_INFO)
            if info.file_size > MAX_MANIFEST:
                return b"", f"its {_EGG_INFO} is larger than {in_units(MAX_MANIFEST)}"
            with egg.open(info) as member:
                return member.read(MAX_MANIFEST + 1), ""
    except KeyError:
        return b"", f"a zip without {_EGG_INFO}"
    except _BAD_ZIP as exc:
        return b"", f"not a readable zip ({clipped(str(exc) or type(exc).__name__)})"


def _wanted_headers(data: bytes) -> bytes:
    """The header fields read here, each with its continuation lines; a field given twice is
    kept twice (``packaging`` then leaves it out, as it would from the whole file)."""
    headers = _HEADERS.match(data)
    counts: dict[bytes, int] = {}
    kept = []
    for match in _WANTED.finditer(data, 0, headers.end() if headers else 0):
        name, block = match.group(1).lower(), match.group()
        if name == b"classifier":
            wanted = block[len(name) + 1 :].lstrip().startswith(_CLASSIFIER.encode())
            most = _MOST_CLASSIFIERS
        else:
            wanted, most = True, 2
        if wanted and counts.get(name, 0) < most:
            counts[name] = counts.get(name, 0) + 1
            kept.append(block)
    return b"\n".join(kept)


def _licenses(raw: RawMetadata) -> tuple[str, ...]:
    expression = raw.get("license_expression", "").strip()
    if expression:
        return (expression,)
    text = raw.get("license", "").strip()
    if text and "\n" not in text and len(text) <= _SHORT and text.upper() != "UNKNOWN":
        return (text,)
    classifiers = raw.get("classifiers", [])
    return tuple(c.split(" :: ")[-1] for c in classifiers if c.startswith(_CLASSIFIER))
