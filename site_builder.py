"""The course site: every executed lesson, the bibliography and the glossary, as a Jupyter Book.

    python3 course.py site        # → build/site/index.html

Jupyter Book 1.x (Sphinx with MyST-NB) is used because it renders stored notebook outputs without
executing them, and gives what a course site needs out of the box, offline: previous / next links, a
table of contents per page, full-text search (Sphinx's own index, no server) and equations. The book
is written to ``build/site-src`` from the committed notebooks (stored executed by ``course.py run``),
their widgets replaced by the figures they captured, with MathJax copied next to the pages so that no
page fetches anything from the network.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

import course  # beside this file: its HTML helpers (static widgets, the MathJax copy, stated run times)

ROOT = Path(__file__).resolve().parent
#: minidiff's modules with a page each in the API reference (the private helpers left out)
API_MODULES = ("denoiser", "ddim", "flow", "nulltext", "inversions", "p2p", "freeinv", "flowedit", "flow_baselines",
               "impus", "path_metrics", "alpha_search", "perceptual", "metrics", "stats", "generate", "pipelines",
               "settings", "footprint", "plotting")
NOTEBOOKS, DOCS = ROOT / "notebooks", ROOT / "docs"
SOURCE, OUT = ROOT / "build" / "site-src", ROOT / "build" / "site"
# MathJax sits beside the pages, not in _static (Jupyter Book would load every .js there); Sphinx
# reads a relative mathjax_path from _static, hence the "../"
MATHJAX_PATH = "../mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"

CONFIG = """title: Inverting and editing images with diffusion and flow models
author: the minidiff course
only_build_toc_files: true
execute:
  execute_notebooks: "off"
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
  home_page_in_navbar: true
launch_buttons:
  notebook_interface: ""
  thebe: false
parse:
  myst_enable_extensions: [dollarmath, amsmath]
sphinx:
  extra_extensions: [sphinx.ext.autodoc, sphinx.ext.napoleon]
  config:
    autodoc_member_order: bysource
    autodoc_typehints: description
    html_static_path: [_static]
    mathjax_path: "{mathjax}"
    # MathJax 2 (the copy that ships with jupyter-server-mathjax): the book marks notebook cells
    # tex2jax_ignore and re-enables the maths by class, as MathJax 3's processHtmlClass does
    mathjax2_config:
      tex2jax:
        processClass: "math|output_area|tex2jax_process|mathjax_process"
    html_theme_options:
      use_download_button: false
      use_fullscreen_button: false
    suppress_warnings: [mystnb.unknown_mime_type, myst.header]
"""


def lesson_rows() -> list[dict]:
    """For each lesson: stem, title, what it shows (the README's notebook table), prerequisites,
    study time and run time (its header's lines)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shows = {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `(\d\d_\w+)` \| (.*?) \|", readme, re.M)}
    timings = json.loads((NOTEBOOKS / "timings.json").read_text())
    rows = []
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        header = nbformat.read(path, as_version=4).cells[0].source
        study = re.search(r"\*\*Study time:\*\* ≈ (\d+) min", header)
        prerequisites = re.search(r"\*\*Prerequisites:\*\* (.*?)\.?$", header, re.M)
        rows.append({"stem": path.stem, "title": header.splitlines()[0].lstrip("# ").strip(), "shows": shows.get(path.stem, ""),
                     "prerequisites": prerequisites.group(1) if prerequisites else "—",
                     "study": f"≈ {study.group(1)} min" if study else "—", "run": f"≈ {course.stated_seconds(timings.get(path.stem, 0))} s"})  # as the README states it
    return rows


def index_page(rows: list[dict]) -> str:
    lines = ["# Inverting and editing images with diffusion and flow models", "",
             "An executable course: from 2D Gaussian-mixture flows to Stable Diffusion, SD3 and Flux, through DDIM "
             "inversion, null-text inversion with Prompt-to-Prompt, FreeInv, FlowEdit and IMPUS. Every lesson is a "
             "notebook run on a 2-core CPU with the course's tiny models; the run times are measured ones, the study "
             "times include the exercises.", "",
             "| lesson | what it shows | prerequisites | study time | run time |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| [{r['title']}]({r['stem']}.ipynb) | {r['shows'].replace('|', '/')} | {r['prerequisites']} | {r['study']} | {r['run']} |")
    lines += ["", "References: the [bibliography](bibliography.md) (every paper, its arXiv id and official code) and the "
              "[glossary](glossary.md) (one name per idea)."]
    return "\n".join(lines) + "\n"


def write_source(source: Path = SOURCE) -> Path:
    """The book's source folder: config, table of contents, index, lessons (widgets made static), docs, MathJax."""
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    rows = lesson_rows()
    (source / "_config.yml").write_text(CONFIG.format(mathjax=MATHJAX_PATH))
    toc = ["format: jb-book", "root: index", "parts:", "  - caption: Lessons", "    chapters:"]
    toc += [f"      - file: {r['stem']}" for r in rows]
    toc += ["  - caption: References", "    chapters:", "      - file: bibliography", "      - file: glossary",
            "      - file: api/index", "        sections:"] + [f"          - file: api/{m}" for m in API_MODULES]
    (source / "_toc.yml").write_text("\n".join(toc) + "\n")
    (source / "index.md").write_text(index_page(rows), encoding="utf-8")
    for r in rows:
        nb = course.static_widgets(nbformat.read(NOTEBOOKS / f"{r['stem']}.ipynb", as_version=4))
        nbformat.write(nb, source / f"{r['stem']}.ipynb")
    (source / "api").mkdir()
    (source / "api" / "index.md").write_text(
        "# API reference\n\nminidiff's modules, from their docstrings: tensor shapes, the papers' equations and "
        "algorithms. Every method follows one calling convention, `(denoiser, x, cond, …, steps=50, guidance=…, null=None)`.\n")
    for module in API_MODULES:
        (source / "api" / f"{module}.md").write_text(
            f"# minidiff.{module}\n\n```{{eval-rst}}\n.. automodule:: minidiff.{module}\n   :members:\n```\n")
    for name in ("bibliography.md", "glossary.md"):
        shutil.copy(DOCS / name, source / name)
    (source / "_static").mkdir()
    return source


def build(out: Path = OUT) -> Path:
    """Build the site into ``out`` (its ``index.html`` is the lesson map)."""
    source = write_source()
    work = source.parent / "site-build"
    shutil.rmtree(work, ignore_errors=True)
    done = subprocess.run([sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(source), "--path-output", str(work), "--keep-going"],
                          capture_output=True, text=True)
    html = work / "_build" / "html"
    if done.returncode or not (html / "index.html").exists():
        raise SystemExit(f"jupyter-book build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(html, out)
    if not course.install_mathjax(out):
        raise SystemExit("course.py site needs jupyter-server-mathjax (a dev dependency) for offline equations.")
    return out / "index.html"


if __name__ == "__main__":
    print(build())
