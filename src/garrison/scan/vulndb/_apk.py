"""Alpine package versions, ordered as apk-tools orders them (``apk version -t``).

Written from the rules of apk-tools 3's ``src/version.c`` (its 2024 lexer rewrite, "fix zero
prefix handling") and the cases of its ``test/unit/version.data``; no code is taken from it.
A version is::

    digits {.digits} [letter] {_suffix[digits]} [~hexhash] [-rdigits]

with the suffixes ``alpha beta pre rc`` (below the release) and ``cvs svn git hg p`` (above
it). Anything else is refused, as ``apk version -t`` refuses it: ``1.0a1``, ``1.0_foo``,
``1.0-r``, ``v1.0``. (apk-tools 2, the apk of older Alpine releases, differs on edge cases:
it took a digit after the letter, ``1.0a1``, but no ``~hash`` nor numbers of 18 digits, and
ordered some components with leading zeros otherwise, ``8.2.0`` > ``8.2.001``.)

apk walks both versions token by token. At the first token whose *kind* differs, a
pre-release suffix loses; otherwise the version whose token comes later in the grammar loses
(``1.0-r5`` < ``1.0.1``: a revision where the other still has a digit; ``1.0`` < ``1.0-r0``).
That rule looks at kinds only, so each token here is ``(rank, number, text)`` with the ranks
in that order, and apk's order is plain comparison of the token tuples: hashable, and equal
exactly when apk prints ``=``.
"""

from __future__ import annotations

import re

from univers.versions import Version

_VERSION = re.compile(
    r"(?P<first>[0-9]+)(?P<dots>(?:\.[0-9]+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_[a-z]+[0-9]*)*)(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>[0-9]+))?"
)
_SUFFIX = re.compile(r"_([a-z]+)([0-9]*)")

# Ranks: where two versions first have tokens of different kinds, the higher rank is the
# greater version. ``_FIRST`` only ever meets ``_FIRST``.
_PRE, _END, _REVISION, _HASH, _SUFFIX_NO, _POST, _LETTER, _DIGIT, _FIRST = range(9)
_PRE_RELEASE = ("alpha", "beta", "pre", "rc")
_POST_RELEASE = ("cvs", "svn", "git", "hg", "p")
# apk reads numbers into a uint64_t without an overflow check (apk_blob_pull_uint), so a
# number of 20 digits or more wraps; it is compared as apk compares it.
_WRAP = 1 << 64

Token = tuple[int, int, str]  # (rank, number, text)


def sort_key(text: str) -> tuple[Token, ...]:
    """The tokens of ``text`` as apk orders them; :class:`ValueError` if apk refuses it."""
    match = _VERSION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an apk version")
    tokens = [(_FIRST, _number(match["first"]), "")]
    tokens += [_digits(part) for part in match["dots"].split(".")[1:]]
    if match["letter"]:
        tokens.append((_LETTER, ord(match["letter"]), ""))
    tokens += _suffixes(match["suffixes"])
    if match["hash"] is not None:
        tokens.append((_HASH, 0, match["hash"]))
    if match["revision"] is not None:
        tokens.append((_REVISION, _number(match["revision"]), ""))
    tokens.append((_END, 0, ""))
    return tuple(tokens)


def _number(digits: str) -> int:
    return int(digits) % _WRAP


def _digits(part: str) -> Token:
    # After the first, a component with a leading zero compares as text (the Gentoo rule:
    # 8.2.0 < 8.2.001 < 8.2.002), and such text sorts below any number ("0…" < "1…").
    if part.startswith("0"):
        return (_DIGIT, -1, part)
    return (_DIGIT, _number(part), "")


def _suffixes(text: str) -> list[Token]:
    tokens: list[Token] = []
    for name, digits in _SUFFIX.findall(text):
        tokens.append(_suffix(name))
        if digits:
            tokens.append((_SUFFIX_NO, _number(digits), ""))
    return tokens


def _suffix(name: str) -> Token:
    if name in _PRE_RELEASE:
        return (_PRE, _PRE_RELEASE.index(name), "")
    if name in _POST_RELEASE:
        return (_POST, _POST_RELEASE.index(name), "")
    raise ValueError(f"_{name} is not an apk version suffix")


class ApkVersion(Version):
    """An Alpine package version, behind univers' ``Version`` interface, in apk's order."""

    @classmethod
    def normalize(cls, string: str) -> str:
        return string  # apk takes a version as written: " 1.0" and "v1.0" are none

    @classmethod
    def is_valid(cls, string: str) -> bool:
        try:
            sort_key(string)
        except ValueError:
            return False
        return True

    @classmethod
    def build_value(cls, string: str) -> tuple[Token, ...]:
        return sort_key(string)

    def __str__(self) -> str:
        return str(self.string)
