"""The built book, checked as a reader sees it.

One build per test session: the book already built by `make book` is reused when its
stamp (book/_build/cis_build.json, written only after a build without warnings) records
the same fingerprint of the book's inputs as now; otherwise the book is built into a
temporary folder with the same command as `make book`.

Static checks (links, offline assets, notebook downloads, the status page) read the HTML.
Headless Chromium, with every host name made unresolvable so nothing can come from the
network, renders the landing page and a chapter: the test reads the DOM after MathJax ran
and checks the screenshots are not blank. Without Chromium those tests are skipped with a
reason; the static checks still run.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import matplotlib.image as mpimg
import nbformat
import pytest
import yaml


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The table of contents is read the same way as in test_book.py (never a hand list).
_BOOK_TESTS = _load(Path(__file__).with_name("test_book.py"), "book_pages")
BOOK, PAGES, NOTEBOOKS = _BOOK_TESTS.BOOK, _BOOK_TESTS.PAGES, _BOOK_TESTS.NOTEBOOKS
is_notebook, source = _BOOK_TESTS.is_notebook, _BOOK_TESTS.source

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXTERNAL = ("http:", "https:", "mailto:", "javascript:", "data:", "tel:")
BUILD_TIMEOUT = 1800  # seconds; a stuck build must not hang the suite (not a speed test)


def _extension():
    pytest.importorskip("myst_nb", reason="the book extras are not installed")
    return _load(BOOK / "_ext" / "cis_book.py", "cis_book_ext")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The HTML folder of a clean, current build of the book."""
    ext = _extension()
    stamp = BOOK / "_build" / ext.STAMP_NAME
    html_dir = BOOK / "_build" / "html"
    if stamp.is_file() and (html_dir / "index.html").is_file():
        recorded = json.loads(stamp.read_text()).get("inputs_sha256")
        if recorded == ext.input_fingerprint(BOOK):
            return html_dir
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    if not jupyter_book.is_file():
        pytest.skip("jupyter-book is not installed (pip install -e '.[book]'); no book to check")
    out = tmp_path_factory.mktemp("book_build")
    command = [str(jupyter_book), "build", str(BOOK), "--all", "-W", "-n", "--keep-going"]
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*command, "--path-output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            "the book did not build cleanly (as `make book` would):\n"
            + (proc.stdout + proc.stderr)[-4000:]
        )
    assert (out / "_build" / ext.STAMP_NAME).is_file(), "a clean build writes its stamp"
    return out / "_build" / "html"


class _Page(HTMLParser):
    """Collects link targets, element ids, tags and visible text of one HTML page."""

    SKIP_TEXT: ClassVar[frozenset[str]] = frozenset(
        {"script", "style", "pre", "code", "mjx-assistive-mml", "svg", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "a" and "name" in attributes:
            self.ids.add(attributes["name"])
        for key in ("href", "src"):
            if key in attributes:
                self.refs.append((tag, key, attributes[key]))
        if tag in self.SKIP_TEXT:
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP_TEXT and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)

    @property
    def visible_text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text))


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _title(page: str) -> str:
    heading = re.search(r"^# (.+)$", source(page).read_text(), re.MULTILINE)
    assert heading, f"book/{page}.md has no title"
    return heading.group(1).strip()


# --------------------------------------------------------------------------- static checks


def test_every_internal_link_and_source_resolves(built_book):
    # Pages, not the theme's Jinja templates that Sphinx copies into _static/.
    pages = {
        p: _parse(p.read_text(encoding="utf-8"))
        for p in built_book.rglob("*.html")
        if "_static" not in p.relative_to(built_book).parts
    }
    broken = []
    for path, page in pages.items():
        for tag, attribute, value in page.refs:
            if not value or value.startswith(EXTERNAL) or value.startswith("//"):
                continue
            parts = urlsplit(value)
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if parts.path and not target.exists():
                broken.append(f"{path.name}: <{tag} {attribute}={value!r}> -> missing file")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{path.name}: <{tag} {attribute}={value!r}> -> missing anchor")
    assert not broken, "\n".join(broken[:40])


def test_the_book_loads_nothing_from_the_network(built_book):
    offenders = []
    for path in built_book.rglob("*.html"):
        if "_static" in path.relative_to(built_book).parts:
            continue  # the theme's Jinja templates, not pages
        for tag, attributes in _parse(path.read_text(encoding="utf-8")).tags:
            rel = attributes.get("rel", "")
            loads = (
                tag in {"script", "img", "iframe", "source", "audio", "video", "embed"}
                and attributes.get("src")
            ) or (
                tag == "link"
                and rel in {"stylesheet", "preload", "icon", "modulepreload"}
                and attributes.get("href")
            )
            if loads and re.match(r"^(https?:)?//", loads):
                offenders.append(f"{path.name}: <{tag}> loads {loads}")
    for path in built_book.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)", path.read_text()):
            offenders.append(f"{path.relative_to(built_book)}: url({url})")
        for url in re.findall(r"@import\s+['\"]((?:https?:)?//[^'\"]+)", path.read_text()):
            offenders.append(f"{path.relative_to(built_book)}: @import {url}")
    assert not offenders, "\n".join(offenders[:40])
    mathjax = [
        attributes["src"]
        for tag, attributes in _parse((built_book / f"{_math_chapter()}.html").read_text()).tags
        if tag == "script" and "mathjax" in attributes.get("src", "").lower()
    ]
    assert mathjax and all(src.startswith("_static/mathjax/") for src in mathjax), mathjax


def test_every_chapter_offers_its_notebook_for_download(built_book):
    assert NOTEBOOKS, "no notebook pages in the table of contents"
    for page in PAGES:
        link = f"_sources/{page}.ipynb"
        offered = link in (built_book / f"{page}.html").read_text(encoding="utf-8")
        if not is_notebook(page):
            assert not offered, page
            continue
        assert offered, f"{page}.html does not link {link}"
        notebook = nbformat.read(built_book / link, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata["kernelspec"]["name"] == "python3"
        code = [c.source for c in notebook.cells if c.cell_type == "code"]
        # The first cell makes the download run on its own; then the page's own code.
        assert code[0].strip() == _BOOK_TESTS.SETUP_CELL
        assert code[1] == "import cis_eval as ce"


def test_status_page_reports_every_executed_page(built_book):
    text = (built_book / "status.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="[^"]*cis-exec-table.*?</table>', text, re.DOTALL)
    assert table, "the status page has no execution table"
    rows = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.DOTALL)
    ]
    body = [r for r in rows if r]
    assert [r[0] for r in body[:-1]] == [_title(p) for p in NOTEBOOKS]
    assert body[-1][0] == "All pages"
    for row in body:
        assert row[3] == "ok", row
        assert float(row[2]) >= 0
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text), "the status page shows a date"
    assert "cis_eval" in text and "Package versions" in text


# --------------------------------------------------------------------------- Chromium


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("Chromium not installed (apt-get install -y chromium); browser checks skipped")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # No host name resolves: anything the page tried to fetch from the network fails.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=10000",  # let MathJax finish before the DOM is read
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _render(page_path: Path, tmp_path: Path) -> tuple[_Page, str, Path]:
    """DOM after scripts ran, its raw text, and a 1280x2000 screenshot of the page."""
    url = page_path.resolve().as_uri()
    dom = _chromium(url, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0 and "<html" in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / f"{page_path.stem}.png"
    result = _chromium(
        url, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000"
    )
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    return _parse(dom.stdout), dom.stdout, shot


def _assert_not_blank(shot: Path) -> None:
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280), pixels.shape
    ink = (pixels < 0.85).any(axis=-1).mean()  # share of pixels that are not near-white
    assert ink > 0.02, f"{shot.name} looks blank ({ink:.1%} ink)"


def _math_chapter() -> str:
    """The first chapter with display formulas and figures (read from the sources)."""
    for page in NOTEBOOKS:
        text = source(page).read_text()
        if "$$" in text and "{glue:figure}" in text:
            return page
    pytest.fail("no chapter with display math and figures")


def _figure_names(page: str) -> list[str]:
    return re.findall(r"^```\{glue:figure\} (\S+)$", source(page).read_text(), re.MULTILINE)


FIGURE_NUMBER = re.compile(r"^Fig\. \d+(\.\d+)*$")


def test_figures_are_numbered_and_cross_references_resolve(built_book):
    """Every glued figure is a numbered <figure> with its id; every {numref}/{eq}/{ref}
    in a chapter's source is a link whose target page and anchor exist."""
    checked_refs = 0
    for page in NOTEBOOKS:
        html_path = built_book / f"{page}.html"
        text = html_path.read_text(encoding="utf-8")
        parsed = _parse(text)
        for name in _figure_names(page):
            assert name in parsed.ids, f"{page}: figure {name} has no anchor"
            figure = re.search(rf'<figure[^>]*id="{re.escape(name)}".*?</figure>', text, re.DOTALL)
            assert figure, f"{page}: {name} is not rendered as a <figure>"
            number = re.search(r'class="caption-number">([^<]+)<', figure.group(0))
            assert number, f"{page}: {name} has no figure number"
            assert FIGURE_NUMBER.match(number.group(1).strip()), number.group(1)
        roles = re.findall(r"\{(numref|eq|ref)\}`([^`]+)`", source(page).read_text())
        links = [
            value
            for tag, attribute, value in parsed.refs
            if tag == "a" and attribute == "href" and "#" in value
        ]
        for role, target in roles:
            label = re.sub(r".*<([^>]+)>$", r"\1", target).strip()
            anchor = f"equation-{label}" if role == "eq" else label
            hits = [v for v in links if unquote(urlsplit(v).fragment) == anchor]
            assert hits, f"{page}: {{{role}}}`{target}` is not a link to #{anchor}"
            for value in hits:
                parts = urlsplit(value)
                target_path = (html_path.parent / unquote(parts.path)) if parts.path else html_path
                assert target_path.is_file(), f"{page}: {value} -> missing page"
                assert anchor in _parse(target_path.read_text(encoding="utf-8")).ids, value
            checked_refs += 1
    assert checked_refs > 0, "no cross-references found in the chapters"


def test_landing_page_renders(built_book, tmp_path):
    page, _, shot = _render(built_book / "index.html", tmp_path)
    text = page.visible_text
    title = yaml.safe_load((BOOK / "_config.yml").read_text())["title"]
    assert title in text
    for chapter in NOTEBOOKS:
        if chapter != "status":
            assert _title(chapter) in text, f"the landing page does not show {chapter}"
    _assert_not_blank(shot)
    print(f"screenshot: {shot}")


def test_chapter_renders_formulas_and_figures(built_book, tmp_path):
    chapter = _math_chapter()
    static = (built_book / f"{chapter}.html").read_text(encoding="utf-8")
    formulas = len(re.findall(r'class="math notranslate nohighlight"', static))
    assert formulas > 0
    page, dom, shot = _render(built_book / f"{chapter}.html", tmp_path)
    text = page.visible_text
    assert _title(chapter) in text
    # MathJax typeset every formula (offline: no host name resolves) ...
    rendered = len(re.findall(r"<mjx-container\b", dom))
    assert rendered >= formulas, f"{rendered} typeset formulas, {formulas} in the page"
    # ... and no TeX source is left in the visible text.
    for pattern in (r"\\\(", r"\\\[", r"\$\$", r"\$[^$\s][^$]*\$", r"\\frac", r"\\sum"):
        assert not re.search(pattern, text), f"raw TeX left in the page: {pattern}"
    # Figures: one image per glued figure in the source, each a PNG on disk, and each
    # captioned with its number ("Fig. 3.1") as the reader sees it.
    names = _figure_names(chapter)
    images = [
        a["src"] for tag, a in page.tags if tag == "img" and a.get("src", "").endswith(".png")
    ]
    assert len(images) >= len(names) > 0
    for src in images:
        assert (built_book / unquote(src)).read_bytes()[:4] == b"\x89PNG", src
    numbers = re.findall(r"\bFig\. \d+(?:\.\d+)*", text)
    assert len(set(numbers)) >= len(names), f"figure numbers shown: {numbers}"
    _assert_not_blank(shot)
    print(f"screenshot: {shot}")
