"""Sphinx extension for the cis_eval book (Jupyter Book 1.x).

It does a few small jobs that Jupyter Book 1 does not do on its own:

* **Notebook downloads.** Every page that is a MyST notebook (it has a ``kernelspec`` in
  its front matter) is converted with jupytext into a clean ``.ipynb`` (no outputs, fixed
  cell ids, so the file only changes when the page does), written to ``_sources/`` beside
  the page's source and offered as ".ipynb" in the page's download menu. The theme shows
  that entry only for notebooks it copies for launch buttons, which need the network, so
  this extension supplies the file itself.
* **Execution status.** The ``{cis-exec-table}`` directive renders the execution record
  myst-nb keeps for the pages executed in this build: page, method, run time and status.
  It is myst-nb's ``nb-exec-table`` without the modification time, so the page carries no
  timestamp.
* **No Thebe.** Jupyter Book always loads sphinx-thebe, which writes a script pointing at
  unpkg.com into every page; its page hooks are disconnected (the book offers no live
  kernels, which need the network).
* **Inline figures.** Kernels inherit the build's environment; the extension sets
  ``MPLBACKEND`` to Jupyter's inline backend so ``plt.show()`` puts each figure in the page
  even when the build runs under ``MPLBACKEND=Agg`` (as ``make`` exports).
* **Execution cache that knows the package.** Pages are executed through jupyter-cache
  (``execute_notebooks: cache``), which re-runs a page only when its code changes. A
  page's output also depends on cis_eval and on the shipped data, which jupyter-cache
  does not see, so the cache is emptied whenever their fingerprint changes: a change in
  the package still re-executes every page.
* **Build stamp.** After an HTML build that finished without warnings it writes
  ``cis_build.json`` beside the ``html`` folder, holding a fingerprint of every input of
  the book (the book's sources, the package source, the shipped data and pyproject.toml).
  Tests reuse an existing build only when the fingerprint still matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jupytext
from docutils import nodes
from myst_nb.ext.execution_tables import METADATA_KEY
from myst_nb.sphinx_ import NbMetadataCollector
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

STAMP_NAME = "cis_build.json"
# Kernels inherit the build's environment. `make` exports MPLBACKEND=Agg for scripts, which
# would make plt.show() draw nothing in a page; pages use Jupyter's inline backend.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
_SKIP_DIRS = {"_build", "__pycache__", ".ipynb_checkpoints", ".jupyter_cache"}


# --------------------------------------------------------------------------- inputs


def book_inputs(book_dir: Path) -> list[Path]:
    """Every file whose change can change the built book, in a fixed order."""
    root = book_dir.resolve().parent
    files = [p for p in book_dir.resolve().rglob("*") if p.is_file()]
    files += list((root / "src" / "cis_eval").rglob("*"))
    files += list((root / "data" / "synthetic").glob("*"))
    files.append(root / "pyproject.toml")
    keep = [
        p for p in files if p.is_file() and not _SKIP_DIRS.intersection(p.relative_to(root).parts)
    ]
    return sorted(set(keep), key=lambda p: p.relative_to(root).as_posix())


def input_fingerprint(book_dir: Path) -> str:
    """SHA-256 over the relative paths and contents of :func:`book_inputs`."""
    return _fingerprint(book_inputs(book_dir), book_dir.resolve().parent)


def package_inputs(book_dir: Path) -> list[Path]:
    """The inputs of the pages' outputs that are not the pages: package, data, project."""
    book = book_dir.resolve()
    return [p for p in book_inputs(book_dir) if not p.is_relative_to(book)]


def _fingerprint(paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # removed while we looked: the build is not current
            content = b"\0missing"
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def _cache_path(app: Sphinx) -> Path:
    configured = getattr(app.config, "nb_execution_cache_path", "") or ""
    if configured:
        return Path(configured)
    return Path(app.outdir).parent / ".jupyter_cache"  # myst-nb's default


def _refresh_execution_cache(app: Sphinx) -> None:
    # jupyter-cache keys a page by its code alone; empty the cache when cis_eval or the
    # shipped data change, so outputs never come from an older package.
    if getattr(app.config, "nb_execution_mode", "") != "cache":
        return
    book = Path(app.srcdir)
    current = _fingerprint(package_inputs(book), book.resolve().parent)
    cache = _cache_path(app)
    record = cache.with_name(cache.name + ".inputs")
    if record.is_file() and record.read_text().strip() == current:
        return
    if cache.exists():
        shutil.rmtree(cache)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(current + "\n")


def _drop_thebe(app: Sphinx, config: Any) -> None:
    # Jupyter Book always loads sphinx-thebe, whose page hooks put a script pointing at
    # unpkg.com and a Binder configuration into every page. The book offers no live
    # kernels (they need the network), so those hooks are disconnected.
    for event in ("env-before-read-docs", "doctree-resolved"):
        for listener in list(app.events.listeners.get(event, [])):
            if getattr(listener.handler, "__module__", "") == "sphinx_thebe":
                app.disconnect(listener.id)


def _use_inline_figures(app: Sphinx) -> None:
    os.environ["MPLBACKEND"] = INLINE_BACKEND


def _remember_inputs(app: Sphinx) -> None:
    # Only a build that completes cleanly leaves a stamp: drop the old one first.
    (Path(app.outdir).parent / STAMP_NAME).unlink(missing_ok=True)
    # Fingerprint at the start, so edits made while the book builds make the stamp stale.
    app.cis_fingerprint = input_fingerprint(Path(app.srcdir))  # type: ignore[attr-defined]


def _write_stamp(app: Sphinx, exception: Exception | None) -> None:
    if app.builder.name != "html":
        return
    stamp = Path(app.outdir).parent / STAMP_NAME
    if exception is not None or app._warncount:
        stamp.unlink(missing_ok=True)
        return
    record = {"inputs_sha256": getattr(app, "cis_fingerprint", ""), "warnings": 0}
    stamp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- downloads


def notebook_for_download(source: Path) -> Any | None:
    """The page as a clean notebook, or None when the page is not a notebook."""
    notebook = jupytext.read(source)
    if "kernelspec" not in notebook.metadata:
        return None
    notebook.metadata.pop("jupytext", None)
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i:03d}"  # fixed ids: the file changes only when the page does
    return notebook


def _offer_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    if doctree is None or app.builder.name != "html":
        return
    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".md":
        return
    notebook = notebook_for_download(source)
    if notebook is None:
        return
    target = Path(app.outdir, "_sources", *f"{pagename}.ipynb".split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(jupytext.writes(notebook, fmt="ipynb"), encoding="utf-8")
    # sphinx-book-theme adds a ".ipynb" entry to the download menu when this is set.
    context["ipynb_source"] = f"{pagename}.ipynb"


# --------------------------------------------------------------------------- status table


class ExecStatusNode(nodes.General, nodes.Element):
    """Placeholder replaced by the execution-status table once every page has run."""


class ExecStatusTable(SphinxDirective):
    """``{cis-exec-table}``: execution statistics of the pages executed in this build."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        # The same marker as myst-nb's table, so myst-nb rewrites this page when any
        # notebook is re-executed.
        NbMetadataCollector.set_doc_data(self.env, self.env.docname, METADATA_KEY, True)
        return [ExecStatusNode()]


def _cell(text: str | nodes.Node) -> nodes.entry:
    para = nodes.paragraph()
    para += nodes.Text(text) if isinstance(text, str) else text
    return nodes.entry("", para)


class ExecStatusTransform(SphinxPostTransform):
    """Fill the placeholder with one row per executed page, in table-of-contents order."""

    default_priority = 8

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(ExecStatusNode)):
            node.replace_self(self._table())

    def _table(self) -> nodes.table:
        data = NbMetadataCollector.get_doc_data(self.env)
        order = {doc: i for i, doc in enumerate(_toc_order(self.env))}
        docs = sorted(
            (d for d, v in data.items() if v.get("exec_data")),
            key=lambda d: (order.get(d, len(order)), d),
        )
        headers = ["Page", "Method", "Run time (s)", "Status"]
        table = nodes.table(classes=["colwidths-auto", "cis-exec-table"])
        group = nodes.tgroup(cols=len(headers))
        table += group
        for _ in headers:
            group += nodes.colspec(colwidth=1)
        head = nodes.thead()
        group += head
        row = nodes.row()
        head += row
        for h in headers:
            row += _cell(h)
        body = nodes.tbody()
        group += body
        total = 0.0
        for doc in docs:
            exec_data = data[doc]["exec_data"]
            runtime = exec_data.get("runtime")
            total += runtime or 0.0
            title = self.env.titles[doc].astext() if doc in self.env.titles else doc
            uri = self.app.builder.get_relative_uri(self.env.docname, doc)
            link = nodes.reference("", title, internal=True, refuri=uri)
            row = nodes.row()
            body += row
            row += _cell(link)
            row += _cell(str(exec_data.get("method", "")))
            row += _cell("-" if runtime is None else f"{runtime:.2f}")
            row += _cell("ok" if exec_data.get("succeeded") else "FAILED")
        row = nodes.row()
        body += row
        row += _cell("All pages")
        row += _cell("")
        row += _cell(f"{total:.2f}")
        row += _cell("ok" if all(data[d]["exec_data"].get("succeeded") for d in docs) else "")
        return table


def _toc_order(env: Any) -> list[str]:
    """Docnames in reading order (root first, then the table of contents)."""
    root = env.config.root_doc
    order = [root]
    seen = {root}
    stack = [root]
    while stack:
        doc = stack.pop(0)
        for child in env.toctree_includes.get(doc, []):
            if child not in seen:
                seen.add(child)
                order.append(child)
                stack.append(child)
    return order


# --------------------------------------------------------------------------- setup


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive, the download hook and the build stamp."""
    app.add_node(ExecStatusNode)
    app.add_directive("cis-exec-table", ExecStatusTable)
    app.add_post_transform(ExecStatusTransform)
    app.connect("config-inited", _drop_thebe)
    app.connect("builder-inited", _use_inline_figures)
    app.connect("builder-inited", _remember_inputs)
    # Before myst-nb opens the cache (its handler runs at the default priority, 500).
    app.connect("builder-inited", _refresh_execution_cache, priority=400)
    # After the theme prepares its header buttons (priority 500, registered earlier) and
    # before it fills them (priority 501).
    app.connect("html-page-context", _offer_notebook, priority=500)
    app.connect("build-finished", _write_stamp)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": False}
