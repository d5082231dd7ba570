"""Self-contained HTML and Markdown reports assembled from tables, text and figures.

A :class:`Report` is a list of blocks. ``to_html()`` gives one file with styles inline and
figures embedded as SVG, so it opens offline and makes no external request; ``to_markdown()``
gives the same content for version control. Nothing here adds dates or object ids.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from typing import Any

from .safety import escape_markup
from .table import Table

__all__ = ["Report"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
max-width:980px;margin:2rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.7rem;border-bottom:3px solid #00597c;padding-bottom:.3rem}
h2{font-size:1.3rem;margin-top:2rem;color:#00597c}
p.lead{font-size:1.05rem}
.cis-table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}
.cis-table caption{text-align:left;font-weight:600;padding-bottom:.4rem}
.cis-table th,.cis-table td{padding:.3rem .6rem;border-bottom:1px solid #ddd}
.cis-table th{background:#eef4f7;text-align:right}
.cis-table th:first-child{text-align:left}
.cis-table td.num{text-align:right;font-variant-numeric:tabular-nums}
.cis-table tfoot td{font-size:.8rem;color:#555;border:0;padding-top:.5rem}
.note{font-size:.88rem;color:#444;background:#f6f6f6;border-left:4px solid #9ab;padding:.5rem .8rem}
.flag{color:#a03000;font-weight:600}
figure{margin:1rem 0}
figcaption{font-size:.85rem;color:#444}
figure svg{max-width:100%;height:auto}
@page{margin:1.5cm}
@media print{
body{max-width:none;margin:0;padding:0;font-size:10pt;line-height:1.3}
h1,h2,caption{break-after:avoid;page-break-after:avoid}
h2{margin-top:1.2rem}
.cis-table{width:100%;table-layout:fixed;font-size:7.5pt}
.cis-table th,.cis-table td{padding:.12rem .25rem;overflow-wrap:anywhere;hyphens:auto}
.cis-table thead{display:table-header-group}
.cis-table tr,figure,.note,p.lead{break-inside:avoid;page-break-inside:avoid}
.cis-table tfoot td{font-size:7pt}
}
"""


def figure_svg(fig: Any) -> str:
    """Render a matplotlib figure to inline SVG text (no external fonts or links)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    # A fixed hash salt keeps the SVG ids, and so the file, identical from run to run.
    import matplotlib as mpl

    with mpl.rc_context({"svg.hashsalt": "cis_eval", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


@dataclass
class Report:
    """An ordered collection of headings, paragraphs, notes, tables and figures.

    Parameters
    ----------
    title : str
        Document title.
    blocks : list
        Filled by :meth:`heading`, :meth:`text`, :meth:`note`, :meth:`table`, :meth:`figure`.
    """

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> Report:
        """Add a section heading."""
        self.blocks.append(("h2", text))
        return self

    def text(self, text: str, *, lead: bool = False) -> Report:
        """Add a paragraph of plain text."""
        self.blocks.append(("lead" if lead else "p", text))
        return self

    def note(self, text: str) -> Report:
        """Add a highlighted explanatory note."""
        self.blocks.append(("note", text))
        return self

    def table(self, table: Table) -> Report:
        """Add a table."""
        self.blocks.append(("table", table))
        return self

    def figure(self, fig: Any, caption: str = "") -> Report:
        """Add a matplotlib figure (embedded as SVG; the figure is closed)."""
        self.blocks.append(("figure", (figure_svg(fig), caption)))
        return self

    def to_html(self) -> str:
        """One self-contained HTML page (inline CSS and SVG; no scripts, no external links)."""
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, value in self.blocks:
            if kind == "h2":
                out.append(f"<h2>{html.escape(value)}</h2>")
            elif kind == "p":
                out.append(f"<p>{html.escape(value)}</p>")
            elif kind == "lead":
                out.append(f'<p class="lead">{html.escape(value)}</p>')
            elif kind == "note":
                out.append(f'<p class="note">{html.escape(value)}</p>')
            elif kind == "table":
                out.append(value.to_html())
            elif kind == "figure":
                svg, caption = value
                cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
                out.append(f"<figure>{svg}{cap}</figure>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def to_markdown(self) -> str:
        """The same content as Markdown (figures are left out).

        Text may carry names from the user's files, so raw HTML is escaped and each block
        stays on one line (a name cannot start a heading or end a quote).
        """
        out = [f"# {escape_markup(self.title)}", ""]
        for kind, value in self.blocks:
            if kind == "h2":
                out += [f"## {escape_markup(value)}", ""]
            elif kind in ("p", "lead"):
                out += [escape_markup(value), ""]
            elif kind == "note":
                out += [f"> {escape_markup(value)}", ""]
            elif kind == "table":
                out += [value.to_markdown(), ""]
        return "\n".join(out)
