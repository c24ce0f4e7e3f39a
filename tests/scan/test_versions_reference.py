"""Each ecosystem's ordering against that ecosystem's own tool, on 10,000 generated pairs:
Debian against ``dpkg --compare-versions``, PyPI against ``packaging``, npm against npm's
``semver`` package run by node. (Alpine: ``test_versions_apk.py``; apk-tools is not packaged
for Debian 12.)

The generators make versions each tool accepts, realistic (``2.36-9+deb12u9``, ``1.0rc1``,
``1.2.3-beta.1``) and awkward (epochs, ``~~``, huge numbers, ``+b1``, implicit post-releases,
local versions, prerelease identifiers with hyphens). Each field of a version is one draw from
a list (hypothesis pays per draw, and 10,000 pairs must take seconds), and the two versions of
a pair share a run of leading fields, so that comparisons reach the later parts.

dpkg and node each answer the whole batch in one process, not a pipe round trip per pair
(which on a busy 2-core machine doubled the run): node reads the 10,000 pairs as one JSON
array; dpkg (an exec per comparison, its only interface) is asked, as each pair is drawn, the
one relation our comparator claims, and only the pairs it does not confirm are asked again.
Every disagreement is listed, shortest first.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from packaging.version import Version as Pep440
from univers.versions import DebianVersion, PypiVersion, SemverVersion

from garrison.scan.vulndb._versions import comparator

T = TypeVar("T")
Pair = tuple[str, str]
PAIRS = 10_000


def joined(pieces: Sequence[str], longest: int, blanks: int = 0) -> list[str]:
    """Every concatenation of up to ``longest`` pieces, the empty one ``blanks`` times more."""
    runs = [""] * (blanks + 1)
    for length in range(1, longest + 1):
        runs += ["".join(run) for run in itertools.product(pieces, repeat=length)]
    return runs


def crossed(*lists: Sequence[str]) -> list[str]:
    return ["".join(run) for run in itertools.product(*lists)]


def pairs(fields: Sequence[Sequence[str]]) -> st.SearchStrategy[Pair]:
    """Two versions, each the concatenation of one pick per field, sharing leading fields
    (never all of them: b's last field is drawn anew, and may still come out equal)."""
    strategies = [st.sampled_from(field) for field in fields]

    @st.composite
    def draw_pair(draw: st.DrawFn) -> Pair:
        a = [draw(field) for field in strategies]
        shared = draw(st.integers(0, len(strategies) - 1))
        b = a[:shared] + [draw(field) for field in strategies[shared:]]
        return "".join(a), "".join(b)

    return draw_pair()


def drawn(strategy: st.SearchStrategy[T], each: Callable[[T], None] | None = None) -> list[T]:
    """10,000 examples drawn by hypothesis, to be checked in one batch; ``each`` is called
    with every example as it is drawn."""
    found: list[T] = []

    @settings(max_examples=PAIRS, database=None, phases=[Phase.generate])
    @given(strategy)
    def collect(example: T) -> None:
        found.append(example)
        if each is not None:
            each(example)

    collect()
    assert len(found) == PAIRS  # the space is far larger: hypothesis never runs dry here
    return found


def disagreements(pairs: list[Pair], ours: list[int], theirs: Sequence[object]) -> list[str]:
    wrong = [(a, b, o, t) for (a, b), o, t in zip(pairs, ours, theirs, strict=True) if o != t]
    wrong.sort(key=lambda case: len(case[0]) + len(case[1]))
    return [f"{a!r} vs {b!r}: ours {o}, reference {t}" for a, b, o, t in wrong[:20]]


def need(program: str, install: str) -> str:
    """The program's path; a failure that says what to install, never a silent skip."""
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: {install}", pytrace=False)
    return path


def run(argv: list[str], stdin: str) -> tuple[str, str]:
    """The program's output and its complaints; it must exit 0."""
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, (argv[0], done.returncode, done.stderr)
    return done.stdout, done.stderr


def ordered_by(cmp: Callable[[str, str], int], batch: list[Pair]) -> list[int]:
    return [cmp(a, b) for a, b in batch]


# --- Debian: dpkg --compare-versions ------------------------------------------------------

# One ``sh`` runs dpkg for each line it reads (an exec per comparison is dpkg's only interface,
# about a millisecond each) and prints dpkg's exit code: 0 true, 1 false, 2 refused.
DPKG_LOOP = 'while read -r a op b; do dpkg --compare-versions "$a" "$op" "$b"; echo $?; done'
DPKG_OPS = {-1: "lt", 0: "eq", 1: "gt"}


class Dpkg:
    """``dpkg --compare-versions`` in one ``sh`` that works through the questions while more
    are being drawn: the execs run beside hypothesis instead of after it."""

    def __init__(self) -> None:
        need("dpkg", "the dpkg package (on every Debian system)")
        # Both closed by answers(); files, not pipes, so that nothing read late can block dpkg.
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["sh", "-c", DPKG_LOOP], stdin=subprocess.PIPE, stdout=self.out, stderr=self.err,
            text=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        )  # fmt: skip

    def ask(self, a: str, op: str, b: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{a} {op} {b}\n")

    def answers(self) -> tuple[list[str], str]:
        """dpkg's exit code for each question, in order, and what it printed on stderr."""
        self.process.communicate(timeout=600)
        assert self.process.returncode == 0
        for file in (self.out, self.err):
            file.seek(0)
        codes, complaints = self.out.read().split(), self.err.read()
        self.out.close()
        self.err.close()
        return codes, complaints


def dpkg_orders(batch: list[Pair]) -> list[int | str]:
    """dpkg's -1, 0 or 1 for each pair ("refused" when it refuses a version)."""
    dpkg = Dpkg()
    for a, b in batch:
        for op in DPKG_OPS.values():
            dpkg.ask(a, op, b)
    answers, _ = dpkg.answers()
    orders: list[int | str] = []
    for index in range(len(batch)):
        codes = answers[3 * index : 3 * index + 3]
        orders.append(list(DPKG_OPS)[codes.index("0")] if "0" in codes else "refused")
    return orders


DEB_NUMBERS = ["0", "1", "2", "9", "10", "00", "01", "010", "2.36", "3.0.11", "1.2.13",
               "20230717", "18446744073709551616", "99999999999999999999999"]  # fmt: skip
DEB_PIECES = [".0", ".1", ".10", ".01", "~rc1", "~beta2", "~", "~~", "~a", "+dfsg", "+ds1",
              "+", "a", "b", "A", "Z", "+b1", ".dfsg", "+really2.0", "+git20230717",
              "1", "."]  # fmt: skip
DEB_REVISIONS = ["1", "2", "0", "00", "9+deb12u9", "9+deb12u10", "1+deb12u1", "1~deb12u1",
                 "1~bpo12+1", "0ubuntu1", "0ubuntu0.22.04.1", "1+b1", "1.1", "a", "~", "1~",
                 "+", "0.", "1build1"]  # fmt: skip
DEBIAN_FIELDS = (
    ["", "", "", "0:", "1:", "2:", "01:", "10:", "2147483647:"],
    DEB_NUMBERS,
    joined(DEB_PIECES, 2, blanks=40),
    # A hyphen in the upstream part only with a revision after it (the last hyphen splits).
    [""] * 40 + crossed(["", "", "", "-1", "-rc1", "-1-1"], [f"-{r}" for r in DEB_REVISIONS]),
)


def test_debian_orders_10000_pairs_as_dpkg() -> None:
    debian_cmp, dpkg = comparator(DebianVersion), Dpkg()

    def ask(pair: Pair) -> None:
        dpkg.ask(pair[0], DPKG_OPS[debian_cmp(*pair)], pair[1])

    batch = drawn(pairs(DEBIAN_FIELDS), each=ask)
    codes, complaints = dpkg.answers()
    assert complaints == ""  # not even a warning: each version is one dpkg takes as it is
    # Only the pairs dpkg did not confirm are asked again, for dpkg's own answer.
    wrong = [pair for pair, code in zip(batch, codes, strict=True) if code != "0"]
    assert disagreements(wrong, ordered_by(debian_cmp, wrong), dpkg_orders(wrong)) == []


def test_dpkg_reference_answers_as_dpkg() -> None:
    cases = [("1.0~rc1", "1.0"), ("1:1.0", "2.0"), ("1.0", "1.0-0"), ("1.0-", "1.0")]
    assert dpkg_orders(cases) == [-1, 1, 0, "refused"]  # "1.0-": an empty revision


# --- PyPI: packaging ----------------------------------------------------------------------

PY_NUMBERS = ["0", "1", "2", "10", "01"]
PY_RELEASES = [*PY_NUMBERS, "2024", "1.2.3.4.5", "18446744073709551616.0"] + [
    ".".join(run) for n in (2, 3) for run in itertools.product(PY_NUMBERS, repeat=n)
]
PYPI_FIELDS = (
    crossed(["", "", "", "", "v", "V", " "], ["", "", "", "", "0!", "1!", "2!", "01!"]),
    PY_RELEASES,
    ["", "", "", "a1", "b2", "rc1", "c1", "a0", "alpha1", "beta", "pre2", "preview3", ".a1",
     "-rc.1", "_b_2", "RC1", "a", "rc10"],
    crossed(["", "", "", ".post1", "-1", ".post", "post2", "-post.3", "_r4", "rev5", ".POST1",
             "-2", ".post0"], ["", "", "", ".dev0", ".dev", "dev1", "-dev2", "_DEV3", ".dev10"]),
    crossed(["", "", "", "+local", "+ubuntu1", "+1", "+01", "+a.1", "+a-b_c", "+abc.2.x",
             "+1.2", "+1.a", "+A"], ["", "", "", " "]),
)  # fmt: skip


def packaging_cmp(a: str, b: str) -> int:
    left, right = Pep440(a), Pep440(b)
    return (left > right) - (left < right)


@settings(max_examples=PAIRS)
@given(pairs(PYPI_FIELDS))
def test_pypi_orders_10000_pairs_as_packaging(pair: Pair) -> None:
    a, b = pair
    assert comparator(PypiVersion)(a, b) == packaging_cmp(a, b), pair


# --- npm: the semver package, run by node -------------------------------------------------

SEMVER_RELEASE = "7.8.6"  # npm's semver, pinned: the comparator npm itself uses
NODE_BATCH = """
const semver = require(process.argv[1]);
let text = "";
process.stdin.on("data", (chunk) => { text += chunk; });
process.stdin.on("end", () => {
  const orders = JSON.parse(text).map(([a, b]) => {
    try { return semver.compare(a, b); } catch (error) { return "invalid"; }
  });
  process.stdout.write(JSON.stringify(orders));
});
"""
NODE_HELP = "install Node.js and npm (Debian: apt-get install nodejs npm)"


@pytest.fixture(scope="module")
def node_semver(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[Pair]], list[object]]:
    """npm's semver, installed from the npm registry into a folder of this session."""
    node, npm = need("node", NODE_HELP), need("npm", NODE_HELP)
    folder = tmp_path_factory.mktemp("npm-semver")
    install = [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund"]
    done = subprocess.run(
        [*install, "--loglevel=error", f"semver@{SEMVER_RELEASE}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm could not install semver@{SEMVER_RELEASE}: {done.stderr[-2000:]}")
    module = folder / "node_modules" / "semver"

    def orders(batch: list[Pair]) -> list[object]:
        output, _ = run([node, "-e", NODE_BATCH, str(module)], json.dumps(batch))
        answers: list[object] = json.loads(output)
        return answers

    return orders


SEMVER_NUMBERS = ["0", "1", "2", "9", "10", "11", "123", "9007199254740991"]  # JS's largest
SEMVER_IDS = ["0", "1", "2", "10", "11", "alpha", "beta", "rc", "a", "A", "Z", "alpha-1", "-",
              "--", "0a", "1a", "x-0", "01a"]  # fmt: skip
NPM_FIELDS = (
    ["", "", "", "", "v", " "],
    SEMVER_NUMBERS,
    crossed(*[["." + n for n in SEMVER_NUMBERS]] * 2),
    [""] * 60
    + ["-" + ".".join(ids) for n in (1, 2) for ids in itertools.product(SEMVER_IDS, repeat=n)]
    + ["-" + ".".join(ids) for ids in itertools.product(["0", "1", "a"], repeat=3)],
    crossed(["", "", "", "", "+build", "+001", "+sha.5114f85", "+exp.sha.5114f85", "+-",
             "+20130313144700", "+b.0"], ["", "", "", " "]),
)  # fmt: skip


def test_npm_orders_10000_pairs_as_node_semver(
    node_semver: Callable[[list[Pair]], list[object]],
) -> None:
    batch = drawn(pairs(NPM_FIELDS))
    ours = ordered_by(comparator(SemverVersion), batch)
    assert disagreements(batch, ours, node_semver(batch)) == []


def test_node_semver_reference_answers_as_semver(
    node_semver: Callable[[list[Pair]], list[object]],
) -> None:
    cases = [("1.0.0-alpha.1", "1.0.0-alpha.beta"), ("1.0.0+b", "1.0.0+a"), ("01.0.0", "1.0.0")]
    assert node_semver(cases) == [-1, 0, "invalid"]  # build metadata ignored; no leading zero
