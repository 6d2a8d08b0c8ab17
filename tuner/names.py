"""Names are data, not markup: file and class names made valid text, and escaped wherever a person reads them.

A file name on Linux is any bytes but "/" and NUL. Python hands bytes that are not UTF-8 over
as lone surrogates, which cannot be printed or written as UTF-8 JSON, and a name may hold
tabs, newlines, terminal escape sequences or bidirectional formatting characters that would
break a TSV row, repaint a terminal or show a name other than the one on disk.
"""

from __future__ import annotations

import re

# Bidirectional formatting characters (the Arabic letter mark, left-to-right and right-to-left marks, embeddings,
# overrides and isolates): invisible themselves, they reorder the characters around them, so "cat\u202egnp.exe"
# would read as "catexe.png". Terminals and browsers both obey them, so they are shown escaped, never raw.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 controls (tab, newline, ESC, ...), DEL, the C1 controls and the bidirectional ones: never shown raw.
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}]")
# The same for HTML, where tab and newline are only white space and cannot repaint or reorder anything.
_HTML_CONTROL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def as_text(name: str) -> str:
    """A file-system name as valid Unicode: bytes that are not UTF-8 become \\xNN escapes.

    Names that are valid UTF-8 (nearly all) come back unchanged: this makes a name storable (a
    manifest, JSON), not displayable; for_terminal, tsv_cell and for_html make it safe to show.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def escape_character(character: str) -> str:
    """One control character as it is shown: \\t, \\n, \\r, \\xNN up to U+00FF, \\uNNNN above (the bidi controls)."""
    code = ord(character)
    return _NAMED.get(character) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def for_terminal(text: str) -> str:
    """`text` (made valid with as_text) with every control and bidi character shown as \\t, \\n, \\r, \\xNN or \\uNNNN."""
    return _CONTROL.sub(lambda match: escape_character(match.group()), as_text(text))


def for_html(text: str) -> str:
    """`text` made valid, with every control and bidi character escaped as for_terminal does, except tab and newline.

    The result is still to be HTML-escaped (report.markup.esc does both): this only makes sure that
    nothing invisible or reordering reaches the page raw.
    """
    return _HTML_CONTROL.sub(lambda match: escape_character(match.group()), as_text(text))


def tsv_cell(text: str) -> str:
    """A TSV cell that cannot split a row: backslash, tab, newline and other controls escaped (as in PostgreSQL's text format)."""
    return for_terminal(as_text(text).replace("\\", "\\\\"))
