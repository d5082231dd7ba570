"""One table renderer shared by every result: Markdown, HTML, LaTeX, CSV and plain text.

Output is deterministic: fixed digits, no dates, times or object ids, so executed book
pages and committed analysis outputs only change when the numbers do. Every export escapes
for its own format (:mod:`cis_eval.present.safety`): cells may hold names from a user's
files, so Markdown and text carry no live HTML, LaTeX no unescaped special character and
CSV no cell a spreadsheet would run as a formula.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .safety import escape_latex, escape_markup, neutralise_formulas, single_line

__all__ = ["Table", "records"]


def records(frame: pd.DataFrame) -> list[SimpleNamespace]:
    """The rows of a frame as namespaces: attribute access like ``itertuples``.

    The values keep their Python or numpy types; result classes use this to lay out their
    presentation tables.
    """
    return [
        SimpleNamespace(**{str(k): v for k, v in rec.items()}) for rec in frame.to_dict("records")
    ]


def _fmt(value: object, spec: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "Yes" if value else "No"
    if isinstance(value, (int, np.integer)) and spec == "":
        return f"{int(value):,}"
    if isinstance(value, (int, float, np.integer, np.floating)) and spec:
        return format(float(value), spec)
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


@dataclass(frozen=True, slots=True)
class Table:
    """A small presentation table with exports.

    Attributes
    ----------
    data : pandas.DataFrame
        The cells (numbers or text). Column names are the reader-facing headers.
    title : str
        Title shown above the table.
    notes : tuple of str
        Footnotes: estimator, standard errors, adjustments, suppression, sources.
    formats : mapping of str to str
        Format spec per column (e.g. ``{"Impact": "+.3f"}``); integers get thousands
        separators, other floats three decimals.
    index : bool
        Whether to show the frame's index as the first column.
    """

    data: pd.DataFrame
    title: str = ""
    notes: tuple[str, ...] = ()
    formats: Mapping[str, str] = field(default_factory=dict)
    index: bool = False

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        frame = self.data.reset_index() if self.index else self.data
        headers = [str(c) for c in frame.columns]
        rows = []
        for rec in frame.itertuples(index=False, name=None):
            rows.append(
                [_fmt(v, self.formats.get(h, "")) for h, v in zip(headers, rec, strict=True)]
            )
        return headers, rows

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the underlying cells (unformatted)."""
        return self.data.copy()

    def to_text(self) -> str:
        """Plain-text rendering with aligned columns (HTML and control characters escaped)."""
        headers, rows = self._cells()
        headers = [escape_markup(h) for h in headers]
        rows = [[escape_markup(c) for c in r] for r in rows]
        widths = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(headers)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w)
                for j, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [escape_markup(self.title)] if self.title else []
        out += [line(headers), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in rows]
        out += [f"Note: {escape_markup(n)}" for n in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"Table({self.title!r}, {len(self.data)} rows x {self.data.shape[1]} columns)"

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown; notes follow as a paragraph.

        Raw HTML in any text (``<script>`` in a school's name) is escaped, so a Markdown
        viewer shows it as typed instead of running it.
        """
        headers, rows = self._cells()

        def cell(text: str) -> str:
            return escape_markup(text).replace("|", "\\|")

        align = ["---"] + ["---:"] * (len(headers) - 1)
        out = [f"**{escape_markup(self.title)}**", ""] if self.title else []
        out.append("| " + " | ".join(cell(h) for h in headers) + " |")
        out.append("| " + " | ".join(align) + " |")
        out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
        if self.notes:
            out += [""] + [f"*Note:* {escape_markup(n)}  " for n in self.notes]
        return "\n".join(out) + "\n"

    def to_html(self, *, table_class: str = "cis-table") -> str:
        """An HTML ``<table>`` with caption and footnotes (no external resources)."""
        headers, rows = self._cells()
        parts = [f'<table class="{html.escape(table_class)}">']
        if self.title:
            parts.append(f"<caption>{html.escape(self.title)}</caption>")
        parts.append(
            "<thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in headers)
            + "</tr></thead><tbody>"
        )
        for r in rows:
            cells = "".join(
                f'<td class="{"label" if j == 0 else "num"}">{html.escape(c)}</td>'
                for j, c in enumerate(r)
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody>")
        if self.notes:
            foot = "<br>".join(html.escape(n) for n in self.notes)
            parts.append(f'<tfoot><tr><td colspan="{len(headers)}">{foot}</td></tr></tfoot>')
        parts.append("</table>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_latex(self) -> str:
        """A ``tabular`` environment (booktabs rules) with the notes below."""
        headers, rows = self._cells()
        tex = escape_latex
        # Title and notes are comments: one line each, so no text can end the comment.
        comment = single_line
        spec = "l" + "r" * (len(headers) - 1)
        out = []
        if self.title:
            out.append(f"% {comment(self.title)}")
        out += [
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            " & ".join(tex(h) for h in headers) + " \\\\",
            "\\midrule",
        ]
        out += [" & ".join(tex(c) for c in r) + " \\\\" for r in rows]
        out += ["\\bottomrule", "\\end{tabular}"]
        out += [f"% Note: {comment(n)}" for n in self.notes]
        return "\n".join(out) + "\n"

    def to_csv(self) -> str:
        """CSV of the formatted cells (what the reader sees).

        A text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab,
        carriage return) is written with a leading ``'``; formatted numbers such as
        ``-0.125`` are written as they are.
        """
        headers, rows = self._cells()
        frame = neutralise_formulas(pd.DataFrame(rows, columns=headers))
        return frame.to_csv(index=False, lineterminator="\n")
