"""docs/detections.md lists every behaviour of the attack corpus, as the corpus says."""

from __future__ import annotations

from tests.attacks.corpus import BEHAVIOURS
from tests.attacks.coverage import DOC, rendered


def test_the_coverage_table_is_current() -> None:
    text = DOC.read_text()
    assert text == rendered(text), "run: python -m tests.attacks.coverage"


def test_the_corpus_has_forty_behaviours_of_distinct_names() -> None:
    names = [b.name for b in BEHAVIOURS]
    assert len(set(names)) == len(names)
    assert len(names) >= 40
