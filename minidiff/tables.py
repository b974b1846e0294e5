"""Results tables that show as styled HTML in a notebook (and the course site) and as aligned text
in a terminal.

A notebook shows a table by leaving it as a cell's last expression or by ``table.show()``: Jupyter
then stores both renderings, ``text/html`` for the eye and ``text/plain`` for anything without a
browser. The HTML is written here rather than by a dataframe library's styler because checked cells
(``# NBVAL_CHECK_OUTPUT``) compare it: it must be byte-identical across machines and package
versions, and carry no random element ids.
"""
from __future__ import annotations

import html
import re
from collections.abc import Sequence

#: one style sheet, scoped to the tables' class, repeated with each table so that an output stands alone
STYLE = ("<style>"
         "table.md-table{border-collapse:collapse;margin:0.4em 0;font-size:0.9em;"
         "font-variant-numeric:tabular-nums}"
         "table.md-table caption{caption-side:top;text-align:left;font-weight:600;padding:0.2em 0}"
         "table.md-table th{border-bottom:2px solid #555;padding:0.25em 0.7em;text-align:right}"
         "table.md-table td{border-bottom:1px solid #ddd;padding:0.2em 0.7em;text-align:right}"
         "table.md-table .l{text-align:left}"
         "table.md-table tbody tr:nth-child(even) td{background:#f6f6f6}"
         "table.md-table tbody tr td.holds{background:#dff0d8;color:#1e4620}"
         "table.md-table tbody tr td.fails{background:#f8e0e0;color:#6b1d1d}"
         "table.md-table tbody tr td.unstable{color:#777;font-style:italic}"
         "table.md-table tfoot td{border-bottom:none;font-style:italic;text-align:left}"
         "</style>")


NUMBER = re.compile(r"^[−+\-]?(\d|\.\d)|^[–—]?$")  # a figure (or an empty / "–" cell): right-aligned


def _cell(value) -> str:
    return value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)


def _left(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[bool]:
    """Which columns align left: the first, and any that holds words rather than figures."""
    return [j == 0 or not all(NUMBER.match(r[j]) for r in rows) for j in range(len(columns))]


def html_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str = "", footer: str = "",
               classes: Sequence[Sequence[str]] | None = None) -> str:
    """An HTML table of ``rows`` (each as many cells as ``columns``); ``classes`` gives each cell a
    CSS class of :data:`STYLE` (``holds``, ``fails``, ``unstable``) or ``""``. Columns of figures align
    right, columns of words left (:func:`_left`)."""
    left = _left(columns, rows)
    tag = lambda name, text, cls: f'<{name} class="{cls}">{html.escape(text)}</{name}>' if cls else f"<{name}>{html.escape(text)}</{name}>"  # noqa: E731
    out = [STYLE, '<table class="md-table">']
    if title:
        out.append(f"<caption>{html.escape(title)}</caption>")
    out.append("<thead><tr>" + "".join(tag("th", c, "l" if l else "") for c, l in zip(columns, left)) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = classes[i] if classes else [""] * len(row)
        out.append("<tr>" + "".join(tag("td", v, " ".join(filter(None, (k, "l" if l else "")))) for v, k, l in zip(row, cls, left)) + "</tr>")
    out.append("</tbody>")
    if footer:
        out.append(f'<tfoot><tr><td colspan="{len(columns)}">{html.escape(footer)}</td></tr></tfoot>')
    out.append("</table>")
    return "".join(out)


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str = "", footer: str = "") -> str:
    """The same table as aligned text: figures right-aligned, words left-aligned."""
    widths = [max(len(r[j]) for r in [list(columns), *rows]) for j in range(len(columns))]
    left = _left(columns, rows)
    line = lambda cells: "  ".join(c.ljust(w) if l else c.rjust(w) for c, w, l in zip(cells, widths, left))  # noqa: E731
    lines = ([title] if title else []) + [line(columns)] + [line(r) for r in rows] + ([footer] if footer else [])
    return "\n".join(l.rstrip() for l in lines)


class Table:
    """A results table: named columns, rows of cells (strings as given; numbers by ``str``/``:g``).

    Example::

        table = Table(["inversion", "PSNR (dB)"], title="reconstruction, 12 images")
        table.add("DDIM, w = 1", fmt(psnr_w1, 1))
        table.show()
    """

    def __init__(self, columns: Sequence[str], title: str = "", footer: str = ""):
        if isinstance(columns, str) or not columns:
            raise ValueError(f"columns: expected a non-empty list of column names, got {columns!r}")
        self.columns, self.title, self.footer = [str(c) for c in columns], title, footer
        self.rows: list[list[str]] = []

    def add(self, *cells) -> None:
        """Append one row: exactly one cell per column."""
        if len(cells) != len(self.columns):
            raise ValueError(f"Table.add: expected {len(self.columns)} cells ({', '.join(self.columns)}), got {len(cells)}")
        self.rows.append([_cell(c) for c in cells])

    def text(self) -> str:
        return text_table(self.columns, self.rows, self.title, self.footer)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return html_table(self.columns, self.rows, self.title, self.footer)

    def show(self) -> None:
        """Display the table (HTML and text in a notebook; text elsewhere)."""
        show(self)


def show(table) -> None:
    """Display ``table`` with its rich renderings in IPython, or print its text outside it."""
    from IPython import get_ipython  # installed with ipywidgets
    from IPython.display import display

    if get_ipython() is not None:
        display(table)
    else:
        print(repr(table))
