"""The one escaping every printer uses: nothing a terminal would obey gets through, and
plain text comes back unchanged."""

from __future__ import annotations

import json
import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from operator_core import safe_text
from operator_core.safe_text import has_surrogates, json_visible, shown, visible

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def test_every_control_format_and_separator_code_point_is_escaped() -> None:
    missed = [
        hex(cp)
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) in UNSAFE_CATEGORIES and visible(chr(cp)) == chr(cp)
    ]
    assert missed == []


def test_escapes_are_visible_and_on_one_line() -> None:
    assert visible("a\nb\tc\r") == r"a\nb\tc\r"
    assert visible("\x1b[31mred\x07") == r"\x1b[31mred\x07"
    assert visible("\x9b\x7f") == r"\x9b\x7f"
    assert visible("abc\u202etxt.exe") == r"abc\u202etxt.exe"
    assert visible(b"bad\xff".decode("utf-8", "surrogateescape")) == r"bad\xff"


def test_plain_text_is_unchanged_and_is_the_same_object() -> None:
    text = "région 7 → s2 [bold] {x} ✓ 漢字 emoji 🚀"
    assert visible(text) is text


def test_shown_is_bounded_for_deep_and_huge_values() -> None:
    deep: list[object] = []
    for _ in range(10_000):
        deep = [deep]
    assert shown(deep) == "[[[[...]]]]"
    assert len(shown("x" * 100_000)) < 100
    assert shown(10**5000) == "<int>"  # Python refuses to print it: no ValueError here


def test_surrogates_are_detected() -> None:
    assert has_surrogates("a\udcffb") and not has_surrogates("plain ✓")


@given(st.lists(st.text(st.characters(codec="utf-8") | st.sampled_from(["\u202e", "\x7f", "é"]))))
def test_json_visible_skips_the_pattern_only_where_it_would_change_nothing(
    values: list[str],
) -> None:
    """``json_visible`` returns JSON that is printable (but for the layout's newlines) as it
    is, without the pattern: the same text the pattern's substitution gives."""
    text = json.dumps(values, indent=2, ensure_ascii=False)
    assert json_visible(text) == safe_text._unsafe().sub(safe_text._json_escape, text)
