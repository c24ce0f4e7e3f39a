"""Forensics: what Garrison keeps of a container it stopped, as one bundle per incident.

``bundle`` writes a bundle (one ``.tar.gz``, its manifest last), ``verify`` checks one
against its manifest, ``library`` keeps the bundles of a host and their retention.
"""

from __future__ import annotations

from garrison.forensics.bundle import BundleWriter, Manifest, Member, Missing
from garrison.forensics.library import BundleInfo, Library
from garrison.forensics.verify import Verdict, verify

__all__ = [
    "BundleInfo",
    "BundleWriter",
    "Library",
    "Manifest",
    "Member",
    "Missing",
    "Verdict",
    "verify",
]
