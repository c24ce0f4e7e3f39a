"""render(): what an alert says; inert(): whatever a container wrote arrives as one harmless
line."""

from __future__ import annotations

import dataclasses
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from garrison.alerts.render import (
    ELLIPSIS,
    FIELD_MAX,
    FIELD_NAMES,
    TITLE_MAX,
    email_header_safe,
    inert,
    render,
    slack_safe,
)
from tests.alerts.conftest import ANY_CHAR, HOSTILE, PLAIN

_ESCAPED = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _harmless(text: str) -> bool:
    return not any(unicodedata.category(char) in _ESCAPED for char in text)


def test_title_names_effect_type_container_and_image():
    assert render(PLAIN).title == (
        "Garrison prevent: processes/unexpectedProcess in web-1 (nginx:1.25)"
    )


def test_body_has_one_line_per_non_empty_field_in_order():
    audit = dataclasses.replace(PLAIN, user="", ruleName="")
    message = render(audit)
    keys = [line.split(": ", 1)[0] for line in message.body.split("\n")]
    empty = ("user", "rule", "auditId", "filePath", "bundle")  # no file written, no block
    assert keys == [name for name in FIELD_NAMES if name not in empty]
    assert "mitreTechnique: T1059 Command and Scripting Interpreter" in message.body.split("\n")
    assert "container: web-1" in message.body.split("\n")
    assert f"time: {PLAIN.to_json()['time']}" in message.body.split("\n")
    assert list(message.fields) == list(FIELD_NAMES)
    assert message.fields["user"] == ""
    assert message.fields["count"] == "3"
    assert not message.summary
    stored = render(dataclasses.replace(audit, id=41))
    assert stored.body.split("\n")[-1] == "auditId: 41", "a receiver can tell a resend"


def test_a_container_without_name_is_named_by_its_short_id_and_no_container_by_host():
    by_id = dataclasses.replace(PLAIN, containerName="")
    assert "in 3f1c9a0b7d2e (nginx:1.25)" in render(by_id).title
    on_host = dataclasses.replace(
        PLAIN, type="defender", containerName="", containerId="", imageName=""
    )
    assert render(on_host).title.endswith("in host node-7")


def test_folded_audits_make_a_summary():
    message = render(PLAIN, folded=4)
    assert message.summary
    assert message.body.split("\n")[-1] == f"{ELLIPSIS} and 4 more like it in the last period"
    assert message.title.endswith(" (+4 more)")


def test_a_long_title_is_cut_at_200_characters_keeping_the_summary_suffix():
    audit = dataclasses.replace(PLAIN, containerName="c" * 500)
    assert len(render(audit).title) == TITLE_MAX
    assert render(audit).title.endswith(ELLIPSIS)
    summary = render(audit, folded=12).title
    assert len(summary) == TITLE_MAX
    assert summary.endswith(f"{ELLIPSIS} (+12 more)")


def test_hostile_audit_renders_inert():
    message = render(HOSTILE)
    for text in (message.title, *message.fields.values()):
        assert _harmless(text)
    assert all(len(value) <= FIELD_MAX for value in message.fields.values())
    assert message.fields["command"].endswith(ELLIPSIS)
    assert message.fields["command"].startswith("sh -c x\\r\\nBcc: evil@example.test\\r\\n")
    assert "\\u2028second line\\u2029\\x85\\x1b[31m" in message.fields["command"]
    assert message.title.startswith("Garrison prevent: processes/unexpectedProcess in web-1\\r\\n")
    # The body's only line breaks are between fields.
    assert len(message.body.split("\n")) == len(FIELD_NAMES) - 3  # no auditId, filePath, bundle
    assert message.body.splitlines() == message.body.split("\n")


def test_inert_escapes_controls_visibly_and_keeps_the_rest():
    assert inert("a\tb\r\nc") == "a\\tb\\r\\nc"
    assert inert("\x00\x7f\x85\x9b") == "\\x00\\x7f\\x85\\x9b"
    assert inert("\u2028\u2029\u202e\u200b\ufeff") == "\\u2028\\u2029\\u202e\\u200b\\ufeff"
    assert inert("\U000e0041") == "\\U000e0041"  # an invisible tag character
    assert inert("\ud800") == "\\ud800"  # a lone surrogate, which UTF-8 cannot encode
    assert inert("naïve café ☕ 東京 <b>&") == "naïve café ☕ 東京 <b>&"


def test_inert_cuts_at_the_limit_with_an_ellipsis():
    assert inert("x" * 1000) == "x" * 1000
    assert inert("x" * 1001) == "x" * 999 + ELLIPSIS
    assert inert("\n" * 10, limit=5) == "\\n\\n" + ELLIPSIS


def test_slack_safe_makes_mentions_and_links_literal():
    assert slack_safe("<!channel>") == "&lt;!channel&gt;"
    assert slack_safe("<http://evil|click> & co") == "&lt;http://evil|click&gt; &amp; co"
    assert slack_safe("&lt;") == "&amp;lt;"


def test_email_header_safe_leaves_no_line_break():
    subject = email_header_safe("Garrison alert\r\nBcc: evil@example.test\n" + "x" * 500)
    assert "\r" not in subject
    assert "\n" not in subject
    assert len(subject) == TITLE_MAX


@given(st.text(ANY_CHAR), st.integers(min_value=1, max_value=2000))
def test_any_text_comes_out_one_harmless_line_within_the_limit(text, limit):
    shown = inert(text, limit)
    assert _harmless(shown)
    assert len(shown) <= limit
    assert len(shown.splitlines()) <= 1
    shown.encode("utf-8")  # nothing an encoder refuses (lone surrogates) is left


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp"))))
def test_harmless_text_within_the_limit_is_unchanged(text):
    assert inert(text, limit=len(text) + 1) == text


@given(
    st.builds(
        dataclasses.replace,
        st.just(PLAIN),
        containerName=st.text(),
        imageName=st.text(),
        attackType=st.text(),
        command=st.text(),
        msg=st.text(),
        user=st.text(),
    ),
    st.integers(min_value=0, max_value=10**6),
)
def test_any_audit_renders_to_harmless_text(audit, folded):
    message = render(audit, folded=folded)
    assert len(message.title) <= TITLE_MAX
    assert _harmless(message.title)
    assert all(_harmless(line) for line in message.body.split("\n"))
    assert message.summary == (folded > 0)
