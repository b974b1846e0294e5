"""The HTML that course.py builds renders offline: MathJax comes from next to the page, widgets are
written out as what they captured, and nothing the page needs is fetched from a CDN. The browser
tests run a real headless Chromium with every host name unresolvable (.ci/run installs chromium)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course  # noqa: E402
from conftest import dump_dom as _dump_dom, needs_chromium  # noqa: E402

WIDGET_STATE, WIDGET_VIEW = course.WIDGET_STATE, course.WIDGET_VIEW

def _maths_notebook():
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Maths\n\nInline $x^2$ and displayed\n\n$$\\int_0^1 \\varepsilon_\\theta(x_t, t)\\,dt$$"),
        nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
            nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]),
    ])


def _widget_notebook():
    """An ``interact`` (slider + Output holding a figure) and a tqdm bar, as nbclient stores them."""
    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0", "state": state}

    captured = {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<b>captured figure</b>", "text/plain": "<Figure>"}}
    state = {
        "box": model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_out"]),
        "slider": model("FloatSliderModel", value=0.5),
        "out": {"model_name": "OutputModel", "model_module": "@jupyter-widgets/output", "model_module_version": "1.0.0",
                "state": {"outputs": [captured]}},
        "bar": model("HBoxModel", children=["IPY_MODEL_label", "IPY_MODEL_progress"]),
        "label": model("HTMLModel", value="training"),
        "progress": model("FloatProgressModel", value=0.0),
    }
    def view(model_id, text):
        return nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": model_id},
                                                            "text/plain": text})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("widgets.interact(...)", outputs=[
        view("bar", "training:   0%|          | 0/50 [00:00<?, ?it/s]"),
        view("box", "interactive(children=(FloatSlider(value=0.5), Output()))"),
        nbformat.v4.new_output("stream", name="stdout", text="done\n")])])
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def _remote_scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]+src=\"(https?://[^\"]+)\"", html) + re.findall(r"<link[^>]+href=\"(https?://[^\"]+)\"", html)


def test_the_page_loads_mathjax_from_its_own_folder_and_nothing_from_a_cdn(tmp_path):
    page = course.export_html(_maths_notebook(), tmp_path / "maths.html")
    html = page.read_text()
    assert f'src="{course.MATHJAX_URL}"' in html
    config = course.MATHJAX_URL.split("?config=")[1].split(",")[0]
    assert (tmp_path / "mathjax/MathJax.js").is_file() and (tmp_path / f"mathjax/config/{config}.js").is_file()
    assert not _remote_scripts(html), _remote_scripts(html)
    assert "require.min.js" not in html and "unpkg.com" not in html


def test_mathjax_is_copied_once(tmp_path):
    course.export_html(_maths_notebook(), tmp_path / "a.html")
    marker = tmp_path / "mathjax/.installed-from"
    before = marker.stat().st_mtime_ns
    course.export_html(_maths_notebook(), tmp_path / "b.html")
    assert marker.stat().st_mtime_ns == before


def test_widgets_are_written_out_as_what_they_captured(tmp_path):
    nb = _widget_notebook()
    html = course.export_html(nb, tmp_path / "widgets.html").read_text()
    assert "<b>captured figure</b>" in html and "python3 course.py lab" in html and "done" in html
    assert "0%|" not in html and "interactive(children" not in html
    assert WIDGET_STATE not in html and "unpkg.com" not in html and "require.min.js" not in html
    assert WIDGET_STATE in nb.metadata["widgets"]  # the notebook itself is left as it was


@needs_chromium
def test_maths_renders_offline_in_a_browser(tmp_path):
    page = course.export_html(_maths_notebook(), tmp_path / "html" / "maths.html")
    dom = _dump_dom(page, tmp_path / "profile")
    assert 'id="MathJax-Element-1-Frame"' in dom and 'class="MathJax_Display"' in dom  # typeset by HTML-CSS
    assert "STIXMathJax" in dom  # with MathJax's own web fonts, from the local copy
    text = re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)  # MathJax keeps the TeX in <script type="math/tex">
    assert "$x^2$" not in text and "$$" not in text
    assert "Math Processing Error" not in dom and "MathJax_FontWarning" not in dom


@needs_chromium
def test_a_widget_page_renders_offline_in_a_browser(tmp_path):
    page = course.export_html(_widget_notebook(), tmp_path / "widgets.html")
    dom = _dump_dom(page, tmp_path / "profile")
    assert "<b>captured figure</b>" in dom and "0%|" not in dom


# TeX outside $…$ (or code) shows as literal text: x_{t+1}, \varepsilon, z*_t (Markdown reads the * as italics).
LOOSE_TEX = re.compile(r"[_^]\{|\\[a-zA-Z]{2,}|\w\*_")


def _prose(markdown: str) -> str:
    """Markdown with its maths, code and HTML removed: what renders as plain text."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.DOTALL)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.DOTALL)
    text = re.sub(r"\$[^$]+\$", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    return re.sub(r"<[^>]+>", " ", text)


def test_no_notebook_leaves_maths_unrendered():
    problems = []
    for path in course.course_notebooks():
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown":
                problems += [f"{path.stem} cell {i}: {m.group(0)!r} in {_prose(cell.source)[max(0, m.start() - 30):m.end() + 30]!r}"
                             for m in LOOSE_TEX.finditer(_prose(cell.source))]
    assert not problems, "maths outside $…$ renders as literal text:\n" + "\n".join(problems)


def test_the_loose_tex_check_finds_what_it_should():
    assert LOOSE_TEX.search(_prose("the mismatch ε(x_{t+1}, t+1)"))
    assert LOOSE_TEX.search(_prose("keep every z*_t"))
    assert not LOOSE_TEX.search(_prose("keep every $z^*_t$ and `x_{t}` and $$\\varepsilon$$"))
