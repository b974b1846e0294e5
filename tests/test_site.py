"""course.py site (site_builder.py, Jupyter Book): the lesson map, links that resolve, search, maths
rendered and nothing fetched from the network, checked in a real headless Chromium with every host
name unresolvable; the index and a lesson screenshot to something that is not blank."""
from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import site_builder  # noqa: E402
from conftest import dump_dom, needs_chromium, screenshot  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return site_builder.build(tmp_path_factory.mktemp("site") / "site").parent


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []  # (tag, attributes, the href or src)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if attrs.get(name):
                self.refs.append((tag, attrs, attrs[name]))


def _refs(page: Path):
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.refs


def _text(dom: str) -> str:
    """The visible text of a DOM: scripts, styles and tags removed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", dom)


def test_the_index_is_the_lesson_map(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    for row in site_builder.lesson_rows():
        assert f'href="{row["stem"]}.html"' in index, row["stem"]
        assert row["study"] in index and row["run"] in index
    assert "bibliography.html" in index and "glossary.html" in index


def test_every_internal_link_resolves_and_nothing_comes_from_the_network(site):
    broken, remote = [], []
    pages = [p for p in site.rglob("*.html") if not p.relative_to(site).parts[0].startswith("_")]
    for page in sorted(pages):
        for tag, attrs, value in _refs(page):
            parts = urlsplit(value)
            if parts.scheme in ("http", "https"):  # a link to a paper is fine; a resource the page loads is not
                if tag in ("script", "img", "iframe", "source") or (tag == "link" and attrs.get("rel") != "canonical"):
                    remote.append(f"{page.name}: <{tag} {value}>")
                continue
            if parts.scheme or value.startswith(("#", "mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if parts.path and not target.exists():
                broken.append(f"{page.name}: {value}")
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken[:20])
    assert not remote, "resources fetched from the network:\n" + "\n".join(remote[:20])


def test_the_api_reference_has_a_page_per_module(site):
    for module in site_builder.API_MODULES:
        page = (site / "api" / f"{module}.html").read_text(encoding="utf-8")
        assert f"minidiff.{module}" in page
    ddim = (site / "api" / "ddim.html").read_text(encoding="utf-8")
    assert "ddim_invert" in ddim and "(B, …)" in ddim  # the functions, with their tensor shapes (Sphinx typesets "...")


def test_lessons_have_previous_next_links_and_a_table_of_contents(site):
    page = (site / "05_nulltext_2d.html").read_text(encoding="utf-8")
    assert 'class="left-prev"' in page and 'href="04_shapes_world.html"' in page
    assert 'class="right-next"' in page and 'href="06_nulltext_p2p.html"' in page
    assert "bd-toc" in page  # the per-page table of contents


def test_results_tables_are_styled_tables_on_every_lesson(site):
    for row in site_builder.lesson_rows():
        page = (site / f"{row['stem']}.html").read_text(encoding="utf-8")
        assert 'class="md-table"' in page, f"{row['stem']}: its results are not an HTML table"


@needs_chromium
def test_maths_renders_offline(site, tmp_path):
    dom = dump_dom(site / "02_ddim_inversion.html", tmp_path / "profile")
    assert 'id="MathJax-Element-1-Frame"' in dom, "MathJax did not typeset the page"
    text = _text(dom)
    assert "\\(" not in text and "$$" not in text, "raw TeX is left on the page"


@needs_chromium
def test_search_finds_null_text_on_its_lessons(site, tmp_path):
    dom = dump_dom((site / "search.html").as_uri() + "?q=null-text", tmp_path / "profile")
    results = dom.split('id="search-results"', 1)[-1]
    assert "05_nulltext_2d.html" in results and "06_nulltext_p2p.html" in results


@needs_chromium
@pytest.mark.parametrize("page", ["index.html", "07_freeinv.html"])
def test_pages_render_to_something_that_is_not_blank(site, tmp_path, page):
    from PIL import Image

    png = screenshot(site / page, tmp_path / "profile", tmp_path / "shot.png")
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert (pixels < 200).mean() > 0.01 and pixels.std() > 10, "the page rendered (nearly) blank"
