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


def toc_chapters(book: Path = BOOK) -> list[str]:
    """The chapters: the pages of the numbered parts of _toc.yml (not the reference part)."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    chapters: list[str] = []

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                chapters.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        if part.get("numbered"):
            walk(part.get("chapters", []))
    return chapters


PAGES = toc_pages()
CHAPTERS = toc_chapters()
NOTEBOOKS = [p for p in PAGES if source(p).is_file() and is_notebook(p)]

# The first code cell of every notebook page. A downloaded notebook run outside the
# repository installs cis_eval when it is missing; inside the repository (and in the
# build) cis_eval is importable and the cell installs nothing. It also gives the page a
# `glue` that works without myst-nb. Pages that read the shipped data regenerate an
# identical copy from its recorded seed when the files are not beside the notebook.
SETUP_CELL = """\
# Set-up for a downloaded copy of this notebook. Inside the book's
# repository it does nothing: cis_eval is importable, and pages that read
# data find the shipped files.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("cis_eval") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install",
         "cis_eval @ git+https://github.com/cis-eval/cis_eval"],
        check=True,
    )
try:
    from myst_nb import glue as nb_glue  # binds the text's numbers to outputs
except ImportError:  # a plain Jupyter session: values are shown instead
    nb_glue = None


def glue(name, variable, display=True):
    # Binds `variable` to `name` for the text; numpy numbers become Python's.
    if getattr(variable, "ndim", None) == 0 and hasattr(variable, "item"):
        variable = variable.item()
    if nb_glue is not None:
        nb_glue(name, variable, display=display)
    elif display:
        from IPython.display import display as show

        show(variable)"""


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
    assert cells[0].source.strip() == SETUP_CELL, "first code cell: the set-up cell"
    assert "remove-cell" in cells[0].metadata.get("tags", []), "the set-up cell is hidden"
    assert cells[1].source.strip() == "import cis_eval as ce", "second code cell"
    for cell in cells:
        assert "from cis_eval" not in cell.source, "pages use the public API as `ce.`"
        for line in cell.source.splitlines():
            # Longer lines scroll sideways in the book's code boxes.
            assert len(line) <= CODE_WIDTH, f"code line over {CODE_WIDTH} characters: {line}"


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_teaches_with_exercises_solutions_takeaways_and_reading(page):
    text = source(page).read_text()
    assert re.search(r"^:::\{admonition\} Key takeaways\s*$", text, re.MULTILINE), (
        "a 'Key takeaways' box (:::{admonition} Key takeaways)"
    )
    assert re.search(r"^## Further reading\s*$", text, re.MULTILINE), "a further-reading list"
    heading = re.search(r"^## Exercises\s*$", text, re.MULTILINE)
    assert heading, "an '## Exercises' section"
    after = text[heading.end() :]
    exercises = re.findall(r"^:::\{admonition\} Exercise (\d+)\s*$", after, re.MULTILINE)
    assert exercises, "at least one exercise (:::{admonition} Exercise N)"
    assert exercises == [str(i) for i in range(1, len(exercises) + 1)], "numbered 1, 2, ..."
    cells = [c for c in jupytext.read(source(page)).cells if c.cell_type == "code"]
    solutions = {}
    for cell in cells:
        found = re.match(r"# Solution to exercise (\d+)", cell.source)
        if found:
            hidden = {"hide-cell", "hide-input", "hide-output"} & set(_tags(cell))
            assert hidden, f"solution {found.group(1)} must be folded (hide-cell)"
            assert "remove-cell" not in _tags(cell), "solutions are shown on request"
            solutions[found.group(1)] = cell
    assert sorted(solutions) == sorted(exercises), "every exercise has an executed solution"


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_figures_are_numbered_captioned_and_glued(page):
    text = source(page).read_text()
    cells = [c.source for c in jupytext.read(source(page)).cells if c.cell_type == "code"]
    code = "\n".join(cells)
    assert "plt.show()" not in code, "figures are glued and shown as numbered figures"
    glued = set(re.findall(r"""glue\(\s*"(fig-[^"]+)",\s*fig\b""", code))
    figures = re.findall(
        r"^```\{glue:figure\} (\S+)\n((?::[^\n]*\n)*)\n(.+?)\n```", text, re.MULTILINE | re.DOTALL
    )
    shown = {name for name, _, _ in figures}
    assert glued == shown, f"glued figures without a figure block: {sorted(glued ^ shown)}"
    for name, options, caption in figures:
        assert f":name: {name}" in options, f"{name} needs :name: for cross-references"
        assert re.search(r"synthetic data|an illustration|assumptions", caption, re.IGNORECASE), (
            f"{name}: say in the caption that the figure is synthetic (or an illustration)"
        )


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_every_glued_number_in_the_text_is_computed_on_the_page(page):
    text = source(page).read_text()
    used = set(re.findall(r"\{glue:(?:text|figure|any|md)\}`?\s*([\w-]+)", text))
    code = "\n".join(c.source for c in jupytext.read(source(page)).cells if c.cell_type == "code")
    defined = set(re.findall(r"""glue\(\s*f?"([^"]+)\"""", code))
    # f-string keys (glue(f"ch6_wy_{i}", ...)) stand for a family of names.
    families = [re.sub(r"\{[^}]+\}", ".+", k) for k in defined if "{" in k]
    missing = {
        u for u in used if u not in defined and not any(re.fullmatch(f, u) for f in families)
    }
    assert not missing, f"glued in the text but never computed: {sorted(missing)}"


# Decimal numbers the prose may type by hand: constants of the methods (1.96, 1.65, WWC
# thresholds), inputs a page states before computing with them, and the published shares
# of the worked calculation. Any other decimal in a chapter's text must be glued from the
# computation ({glue:text}), so the text cannot drift from the outputs.
TYPED_DECIMALS = {
    "0.05", "0.10", "0.15", "0.20", "0.25", "0.3", "0.50", "0.84", "0.9",
    "1.65", "1.96", "2.5", "2.8", "67.74", "69.76", "71.76",
}  # fmt: skip


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_prose_types_no_computed_decimals(page):
    text = source(page).read_text()
    text = text.split("---", 2)[2] if text.startswith("---") else text  # front matter
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code cells, directives
    text = re.sub(r"\$\$.*?\$\$", "", text, flags=re.DOTALL)  # display math
    text = re.sub(r"\$[^$\n]*\$", "", text)  # inline math
    text = re.sub(r"\{[\w:-]+\}`[^`]*`|`[^`]*`", "", text)  # roles, inline code
    typed = set(re.findall(r"(?<![\w.])\d+\.\d+", text)) - TYPED_DECIMALS
    assert not typed, f"decimals typed in the prose (glue them instead): {sorted(typed)}"


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


def test_execution_cache_is_emptied_when_the_package_changes(tmp_path):
    # jupyter-cache keys a page by its code; the extension must drop cached outputs when
    # cis_eval or the data change (here: a different recorded fingerprint).
    from types import SimpleNamespace

    ext = _extension()
    config = SimpleNamespace(nb_execution_mode="cache", nb_execution_cache_path="")
    app = SimpleNamespace(config=config, srcdir=str(BOOK), outdir=str(tmp_path / "html"))
    cache = tmp_path / ".jupyter_cache"
    record = tmp_path / ".jupyter_cache.inputs"

    def cached_page() -> None:
        cache.mkdir(exist_ok=True)
        (cache / "page").write_text("outputs")

    cached_page()
    ext._refresh_execution_cache(app)  # no record yet: the cache is not trusted
    assert not cache.exists() and record.is_file()
    cached_page()
    ext._refresh_execution_cache(app)  # same package: the cache is kept
    assert (cache / "page").is_file()
    record.write_text("an older package\n")
    ext._refresh_execution_cache(app)
    assert not cache.exists(), "outputs of an older cis_eval were kept"
    cached_page()
    config.nb_execution_mode = "force"
    ext._refresh_execution_cache(app)  # without the cache the extension stays out
    assert (cache / "page").is_file()


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
        if re.search(r"""glue\(\s*"fig-""", cell.source):
            # A glued figure is recorded as application/papermill.record/image/png.
            images = [
                o for o in cell.outputs if any(k.endswith("image/png") for k in o.get("data", {}))
            ]
            assert images, f"code cell {number} glues a figure but draws none"
