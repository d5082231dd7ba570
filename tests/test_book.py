"""The book: every page in its table of contents runs, and the publishing set-up is consistent.

The pages are read from book/_toc.yml, never from a hand-kept list. Each notebook page is
executed with nbclient (jupytext reads the MyST text) in an empty temporary folder, as a
reader who downloaded the chapter's .ipynb would run it; `make book` separately executes
the pages in place, inside the repository.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
CODE_WIDTH = 78
CELL_TIMEOUT = 300  # seconds; generous for slow CI machines (never a test of speed)


def toc_pages(book: Path = BOOK) -> list[str]:
    """Every page of the book, in reading order, from its _toc.yml."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return pages


def source(page: str) -> Path:
    return BOOK / f"{page}.md"


def is_notebook(page: str) -> bool:
    return "kernelspec" in jupytext.read(source(page)).metadata


PAGES = toc_pages()
NOTEBOOKS = [p for p in PAGES if source(p).is_file() and is_notebook(p)]


def _extension():
    spec = importlib.util.spec_from_file_location("cis_book", BOOK / "_ext" / "cis_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- structure


def test_toc_lists_existing_pages_and_every_page_is_listed():
    assert len(PAGES) == len(set(PAGES)), "a page is listed twice"
    for page in PAGES:
        assert source(page).is_file(), f"_toc.yml lists {page}, but book/{page}.md is missing"
    written = {p.stem for p in BOOK.glob("*.md")} - {"README"}
    assert written <= set(PAGES), f"pages not in _toc.yml: {sorted(written - set(PAGES))}"


@pytest.mark.parametrize("page", PAGES)
def test_page_follows_the_book_rules(page):
    text = source(page).read_text()
    assert not re.search(r"^\s*[!%]\s*pip\b", text, re.MULTILINE), "pages never install packages"
    if not is_notebook(page):
        assert "{code-cell}" not in text, "code cells without a kernelspec are never run"
        return
    cells = [c for c in jupytext.read(source(page)).cells if c.cell_type == "code"]
    assert cells, "a notebook page without code should be plain Markdown"
    assert cells[0].source.strip() == "import cis_eval as ce", "first code cell"
    for cell in cells:
        assert "from cis_eval" not in cell.source, "pages use the public API as `ce.`"
        for line in cell.source.splitlines():
            # Longer lines scroll sideways in the book's code boxes.
            assert len(line) <= CODE_WIDTH, f"code line over {CODE_WIDTH} characters: {line}"


def test_landing_page_introduces_every_page():
    intro = source(PAGES[0]).read_text()
    linked = set(re.findall(r"\{doc\}`([^`<]+)`", intro))
    missing = [p for p in PAGES[1:] if p not in linked]
    assert not missing, f"intro.md does not link {missing} (add a line to 'How to read it')"


def test_pages_cite_only_works_in_the_bibliography():
    bib = (BOOK / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.MULTILINE))
    cited = set()
    for page in PAGES:
        for group in re.findall(r"\{cite:[pt]\}`([^`]+)`", source(page).read_text()):
            cited.update(k.strip() for k in group.split(","))
    assert cited, "no citations found"
    assert cited <= keys, f"unknown citation keys: {sorted(cited - keys)}"


def test_downloadable_notebooks_are_valid_and_hold_the_page_code():
    pytest.importorskip("myst_nb", reason="the book extras are not installed")
    make = _extension().notebook_for_download
    for page in PAGES:
        notebook = make(source(page))
        if not is_notebook(page):
            assert notebook is None, page
            continue
        nbformat.validate(notebook)
        assert "jupytext" not in notebook.metadata
        code = [c.source for c in notebook.cells if c.cell_type == "code"]
        expected = [c.source for c in jupytext.read(source(page)).cells if c.cell_type == "code"]
        assert code == expected, page
        assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code")
        assert make(source(page)) == notebook, "the download must not change between builds"


def test_config_keeps_the_build_strict_and_offline():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] in {"force", "cache"}
    assert config["execute"]["allow_errors"] is False
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    launch = config.get("launch_buttons", {})
    assert not any(launch.get(k) for k in ("binderhub_url", "jupyterhub_url", "colab_url"))
    assert not launch.get("thebe")
    assert "analytics" not in config.get("html", {})


def test_makefile_builds_the_book_strictly():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^book:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no book target"
    command = recipe.group(1)
    assert "jupyter-book build book/" in command
    for flag in ("-W", "-n", "--keep-going", "--all"):
        assert re.search(rf"(^|\s){re.escape(flag)}(\s|$)", command), flag


def test_publishing_workflow_builds_with_make_book_and_deploys_the_html():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    runs = [step.get("run", "") for step in steps]
    assert any(re.search(r"(^|\s)make book(\s|$)", run) for run in runs), "build with make book"
    assert not any("jupyter-book" in run for run in runs), "one build command: make book"
    assert not any("apt-get" in run for run in runs), "the book needs no system packages"
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "book/_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in steps)


def test_readme_says_where_the_book_is_and_how_to_build_it():
    readme = (ROOT / "README.md").read_text()
    assert "https://cis-eval.github.io/cis_eval/" in readme
    assert "make book" in readme and "book/_build/html/index.html" in readme


# --------------------------------------------------------------------------- execution


@pytest.mark.book
@pytest.mark.parametrize("page", NOTEBOOKS)
def test_page_executes_on_its_own(page, tmp_path, monkeypatch):
    # Kernels inherit the environment; `make` sets MPLBACKEND=Agg for scripts, which would
    # make plt.show() draw nothing in a notebook.
    monkeypatch.setenv("MPLBACKEND", INLINE_BACKEND)
    notebook = jupytext.read(source(page))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=notebook.metadata["kernelspec"]["name"],
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    code = [c for c in notebook.cells if c.cell_type == "code"]
    for number, cell in enumerate(code, start=1):
        stderr = [
            o.get("text", "")
            for o in cell.outputs
            if o.output_type == "stream" and o.name == "stderr"
        ]
        assert not stderr, f"code cell {number} wrote to stderr: {''.join(stderr)[:500]}"
        if "plt.show()" in cell.source:
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"code cell {number} calls plt.show() but shows no figure"
