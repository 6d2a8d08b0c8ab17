"""Names are data, not markup: file and class names made valid text, and escaped where a terminal or TSV reads them.

A file name on Linux is any bytes but "/" and NUL. Python hands bytes that are not UTF-8 over
as lone surrogates, which cannot be printed or written as UTF-8 JSON, and a name may hold
tabs, newlines or terminal escape sequences that would break a TSV row or repaint a terminal.
"""

from __future__ import annotations

import re

# C0 controls (tab, newline, ESC, ...), DEL and the C1 controls: never shown raw.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def as_text(name: str) -> str:
    """A file-system name as valid Unicode: bytes that are not UTF-8 become \\xNN escapes.

    Names that are valid UTF-8 (nearly all) come back unchanged.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def for_terminal(text: str) -> str:
    """`text` (made valid with as_text) with every control character shown as \\t, \\n, \\r or \\xNN."""
    return _CONTROL.sub(lambda match: _NAMED.get(match.group(), f"\\x{ord(match.group()):02x}"), as_text(text))


def tsv_cell(text: str) -> str:
    """A TSV cell that cannot split a row: backslash, tab, newline and other controls escaped (as in PostgreSQL's text format)."""
    return for_terminal(as_text(text).replace("\\", "\\\\"))
