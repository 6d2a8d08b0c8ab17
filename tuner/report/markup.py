"""The HTML pieces report.html is made of: escaped text, tables, inline images, and the page around them.

Everything here treats values as data: class names, file names and hyperparameter values go
through `esc`, so a folder named `<script>` shows as text and never becomes markup, and a control
or bidi character in a name shows as `\\u202e`, never raw (it would reorder what the page shows).
The page needs nothing outside itself: styles and the table-sorting script are inline and
images are data: URIs, so it opens from disk, offline, or as an e-mail attachment.
"""

from __future__ import annotations

import base64
import html
import math
from typing import Any, Sequence

from tuner.names import for_html

# Shown for a value that was not measured or does not apply (never an empty cell, which reads as a rendering bug).
MISSING = "–"

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 1180px; padding: 0 24px 48px; }
h1 { margin: 24px 0 4px; } h2 { margin-top: 40px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
nav { position: sticky; top: 0; background: #fff; padding: 6px 0; border-bottom: 1px solid #eee; z-index: 1; }
nav a { margin-right: 14px; white-space: nowrap; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13.5px; }
th, td { border: 1px solid #d6d6d6; padding: 3px 8px; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #aaa; }
tr.winner td { background: #fff4d6; font-weight: 600; }
td.diagonal { background: #dff0d8; } td.error { background: #fbe3e3; }
.scroll { overflow-x: auto; } .nowrap { white-space: nowrap; }
img.figure { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.unavailable { color: #777; font-style: italic; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 6px 10px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; }
figure.mistake { margin: 0; width: 150px; font-size: 12.5px; border: 1px solid #ddd; padding: 6px; }
figure.mistake img { image-rendering: pixelated; display: block; margin: 0 auto 4px; }
.file { font-family: ui-monospace, monospace; font-size: 11.5px; word-break: break-all; color: #555; }
"""

# Sorts a table.sortable by the clicked column: numbers as numbers (a cell's data-value when it has one),
# text as text, empty cells last either way; a second click reverses.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (header) {
  header.addEventListener("click", function () {
    var body = header.closest("table").tBodies[0], column = header.cellIndex;
    var ascending = header.dataset.order !== "ascending";
    header.closest("tr").querySelectorAll("th").forEach(function (other) { delete other.dataset.order; });
    header.dataset.order = ascending ? "ascending" : "descending";
    function key(row) {
      var cell = row.cells[column], text = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
      var number = parseFloat(text);
      return text === "" || text === "\\u2013" ? null : (isNaN(number) ? text.toLowerCase() : number);
    }
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
      var order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


class Markup(str):
    """A string that is already HTML (made here from escaped parts), inserted as it is."""


def esc(value: Any) -> str:
    """Any value as HTML text: escaped, quotes included, so it is safe inside an attribute as well.

    Control and bidi characters are shown escaped first (names.for_html): browsers reorder text around
    the bidi ones, and the controls are not allowed in an HTML document at all.
    """
    return html.escape(for_html(str(value)), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A value as the tables show it: floats to `digits` decimals, whole numbers with thousands separators."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], sortable: bool = False,
          row_classes: Sequence[str] | None = None, digits: dict[str, int] | None = None) -> Markup:
    """An HTML table: headers and cells escaped (a Markup cell is inserted as it is), numbers right-aligned.

    Args:
        headers: the column names.
        rows: the cells; numbers carry data-value, so sorting by a column with 12,345 in it is numeric.
        sortable: clicking a header sorts the rows by that column (SORT_SCRIPT).
        row_classes: a CSS class per row ("winner"), or "".
        digits: decimals of a column's floats by header (seconds: 1); 4 for the others.
    """
    places = [(digits or {}).get(name, 4) for name in headers]
    head = "".join(f"<th>{esc(name)}</th>" for name in headers)
    lines = []
    for index, row in enumerate(rows):
        css = row_classes[index] if row_classes else ""
        lines.append(f"<tr{_class_attribute(css)}>" + "".join(map(_cell, row, places)) + "</tr>")
    return Markup(f'<div class="scroll"><table{_class_attribute("sortable" if sortable else "")}><thead><tr>{head}</tr></thead><tbody>'
                  + "\n".join(lines) + "</tbody></table></div>")


def _class_attribute(css: str) -> str:
    return f' class="{esc(css)}"' if css else ""


def _cell(value: Any, digits: int = 4) -> str:
    if isinstance(value, Markup):
        return f"<td>{value}</td>"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        shown = fmt(value, digits)
        sort_value = "" if shown == MISSING else repr(value)
        return f'<td class="number" data-value="{sort_value}">{esc(shown)}</td>'
    return f"<td>{esc(fmt(value))}</td>"


def png_image(data: bytes | None, alt: str, css: str = "figure", missing: str = "not available") -> Markup:
    """A PNG inlined as a data: URI (nothing is fetched when the page opens), or a note when there is none."""
    if data is None:
        return unavailable(missing)
    encoded = base64.b64encode(data).decode("ascii")
    return Markup(f'<img class="{esc(css)}" alt="{esc(alt)}" src="data:image/png;base64,{encoded}">')


def unavailable(reason: str) -> Markup:
    """A greyed note where a section or figure has nothing to show, saying why."""
    return Markup(f'<p class="unavailable">{esc(reason)}</p>')


def paragraph(text: str, css: str = "") -> Markup:
    """A paragraph of plain text (escaped); css "warning" sets it apart."""
    return Markup(f"<p{_class_attribute(css)}>{esc(text)}</p>")


def facts(items: Sequence[tuple[str, Any]]) -> Markup:
    """A list of name: value lines (a definition list); a Markup value is inserted as it is."""
    return Markup('<dl class="facts">' + "".join(
        f"<dt>{esc(name)}</dt><dd>{value if isinstance(value, Markup) else esc(fmt(value))}</dd>"
        for name, value in items) + "</dl>")


def page(title: str, sections: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """The whole document: a title, a menu of the sections, and each section as an <h2 id=...> over its parts.

    Args:
        title: the page title (escaped).
        sections: (id, heading, parts) each; the parts are Markup.
    """
    menu = "\n".join(f'<a href="#{esc(anchor)}">{esc(heading)}</a>' for anchor, heading, _ in sections)
    body = "\n".join(f'<section><h2 id="{esc(anchor)}">{esc(heading)}</h2>\n' + "\n".join(parts) + "</section>"
                     for anchor, heading, parts in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n"
            f"<body><h1>{esc(title)}</h1><nav>{menu}</nav>\n{body}\n<script>{SORT_SCRIPT}</script></body></html>\n")
