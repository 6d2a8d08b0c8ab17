"""tuner.names and report.markup.esc: every control and bidi character in a name is shown escaped, never raw."""

import os

import pytest

from tuner.names import BIDI_CONTROLS, as_text, for_html, for_terminal, tsv_cell
from tuner.report.markup import esc

# One of each kind a name can hold that must never reach a terminal or a page raw, with how it is shown.
BIDI = [(character, f"\\u{ord(character):04x}") for character in BIDI_CONTROLS]
C0 = [("\x00", "\\x00"), ("\x07", "\\x07"), ("\x1b", "\\x1b"), ("\r", "\\r"), ("\x1f", "\\x1f")]
DEL_C1 = [("\x7f", "\\x7f"), ("\x80", "\\x80"), ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\x9f", "\\x9f")]
HOSTILE = BIDI + C0 + DEL_C1


def test_the_bidi_controls_are_the_marks_embeddings_overrides_and_isolates():
    assert BIDI_CONTROLS == "\u061c\u200e\u200f" + "".join(map(chr, range(0x202A, 0x202F))) + "".join(
        map(chr, range(0x2066, 0x206A)))


@pytest.mark.parametrize("character, shown", HOSTILE)
def test_the_terminal_tsv_and_html_show_each_kind_escaped(character, shown):
    name = f"cat{character}gnp.exe"
    assert for_terminal(name) == f"cat{shown}gnp.exe"
    assert tsv_cell(name) == f"cat{shown}gnp.exe"  # a backslash of the name's own is doubled, not the escape's
    assert for_html(name) == f"cat{shown}gnp.exe"
    assert esc(name) == f"cat{shown}gnp.exe"
    assert character not in for_terminal(name) + tsv_cell(name) + esc(name)


def test_tab_and_newline_are_escaped_on_the_terminal_and_left_as_white_space_in_html():
    assert for_terminal("a\tb\nc") == "a\\tb\\nc" and tsv_cell("a\tb\nc") == "a\\tb\\nc"
    assert for_html("a\tb\nc") == "a\tb\nc" and esc("a\tb\nc") == "a\tb\nc"


def test_plain_names_markup_and_other_scripts_are_left_as_they_are():
    for name in ("cat", "Katze_ü", "猫", "قطة", "ζώο 1.png"):
        assert for_terminal(name) == tsv_cell(name) == for_html(name) == esc(name) == as_text(name) == name
    assert esc('<b a="1">&') == "&lt;b a=&quot;1&quot;&gt;&amp;"
    assert esc(f"<i>\u202e</i>") == "&lt;i&gt;\\u202e&lt;/i&gt;"


def test_bytes_that_are_not_utf8_are_shown_as_hex_and_stored_as_valid_text():
    name = os.fsdecode(b"bad\xff\xe2\x80\xae.png")  # \xe2\x80\xae is U+202E in UTF-8: decoded, so escaped as one
    assert as_text(name) == "bad\\xff\u202e.png"  # storable; shown only through the functions below
    assert for_terminal(name) == for_html(name) == esc(name) == "bad\\xff\\u202e.png"
    assert tsv_cell(name) == "bad\\\\xff\\u202e.png"


def test_escaping_twice_changes_nothing_more():
    name = "".join(character for character, _ in HOSTILE)
    assert for_terminal(for_terminal(name)) == for_terminal(name)
    assert for_html(for_html(name)) == for_html(name)
