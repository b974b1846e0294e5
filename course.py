#!/usr/bin/env python3
"""Set up the course and run it, with nothing but Python on the machine.

    python3 course.py run [NOTEBOOK ...] [--record] [--model FAMILY[,FAMILY]] [--set NAME=VALUE ...]
        make .venv (torch CPU first), execute the notebooks -> build/executed, build/html;
        NOTEBOOK is a number (04), a stem (04_shapes_world) or a path; default: all of them.
        At the end it names the notebooks over the per-notebook budget (180 s) and says whether
        the whole course fits its budget (1200 s). --record writes the measured seconds into
        notebooks/timings.json, which the README's table and each notebook's header must agree
        with (tests/test_course.py checks).
        --model sd15|sd3|flux (or several, comma-separated) runs the image lessons at full scale on a
        GPU: every MODEL parameter of that family (MODEL, MODEL_FLOW, ...) is set to it, and the
        lesson takes the paper's settings from minidiff.settings; without NOTEBOOKs it runs the
        notebooks that have such a parameter. --set NAME=VALUE sets any parameter by name (VALUE is
        a Python literal). Either writes to build/custom, never over build/executed.
    python3 course.py test [PYTEST ARGS ...]
        make .venv if needed, run all tests (unit tests + the notebooks under nbval)
    python3 course.py site
        build the course site (Jupyter Book) from the executed notebooks into build/site: the lesson
        map, previous / next links, search, offline maths, the bibliography and the glossary
    python3 course.py release [DIR]
        write the student copies (solutions replaced by stubs that raise, hidden checks withheld) to
        DIR/student/NN_topic.ipynb and the teacher's copies to DIR/teacher/ (default: build/release)
    python3 course.py grade SUBMISSIONS_DIR
        autograde SUBMISSIONS_DIR/<student>/NN_topic.ipynb with nbgrader: grades.csv (a row per student,
        a column per exercise, total) and feedback/<student>/NN_topic.html
    python3 course.py lab [JUPYTERLAB ARGS ...]
        open JupyterLab on notebooks/, e.g. python3 course.py lab --allow-root --port 8890

The virtual environment is ``.venv`` unless ``MINIDIFF_VENV`` names another folder (CI keeps
one in its cache). It is rebuilt only when pyproject.toml changes. Notebooks executed headless
(``run``, and nbval under ``test``) get ``TQDM_DISABLE=1``: a progress bar stored in a notebook is
only a frozen ``0%|`` line. The HTML in build/html works offline: MathJax is copied next to it
(from the jupyter-server-mathjax package) and widgets are written out as their captured output.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("MINIDIFF_VENV", ROOT / ".venv"))
TORCH = "torch==2.13.0"  # the CPU wheel; installed before anything that could pull a CUDA build
NOTEBOOKS = ROOT / "notebooks"
TIMINGS = NOTEBOOKS / "timings.json"  # recorded seconds per notebook: the README and headers quote them
BUILD = ROOT / "build"
NOTEBOOK_BUDGET = 180  # seconds one notebook may take on a 2-core CPU
# ... and a lesson with a detailed-world section (64² scenes, 16×16 latents: four times the fast world's
# pixels per image, and the models that need them), whose reason each lesson's header gives
DETAILED_BUDGET = 300
DETAILED_LESSONS = ("08_flowedit_images", "09_impus_morphing")
COURSE_BUDGET = 1200   # seconds the whole course may take
HEADLESS_ENV = {"TQDM_DISABLE": "1"}  # tqdm >= 4.66 reads TQDM_* variables as its defaults
# ... but tqdm.notebook (what tqdm.auto gives in a kernel) passes disable=False itself (tqdm 4.70), so
# headless kernels also get an IPython start-up file that gives its bars TQDM_DISABLE's default.
HEADLESS_IPYTHONDIR = BUILD / "ipython-headless"
HEADLESS_STARTUP = '''\
# Written by course.py for kernels that execute notebooks headless (course.py run, nbval under
# course.py test): tqdm.notebook ignores TQDM_DISABLE (it passes disable=False to tqdm itself), and a
# progress bar stored in a notebook is only a frozen "0%|". An explicit disable= still wins.
def _course_headless_tqdm():
    import os

    if not os.environ.get("TQDM_DISABLE"):
        return
    try:
        from tqdm.notebook import tqdm_notebook
    except ImportError:
        return
    init = tqdm_notebook.__init__

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("disable", True)
        init(self, *args, **kwargs)

    tqdm_notebook.__init__ = __init__


_course_headless_tqdm()
del _course_headless_tqdm
'''

# MathJax 2 as shipped by jupyter-server-mathjax (the only combined config file it has); fonts: STIX-Web.
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_PASSIVE_WIDGETS = ("Box", "Output", "HTML", "Label", "Progress", "Layout", "Style", "Image")
_HTML_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}
{%- if resources.course_needs_requirejs -%}{{ super() }}{%- endif -%}
{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.course_local_mathjax %}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null}});
</script>
{%- endif %}
{{ super() }}
{%- endblock html_head_js_mathjax -%}
"""


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(command: list[str]) -> None:
    """Run pip, showing the lines that are progress ("Collecting torch", "Installing collected packages")
    and every error; "Requirement already satisfied" and the like stay quiet."""
    progress = ("Collecting ", "Downloading ", "Installing collected", "Successfully installed")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            if line.lstrip().startswith(progress):
                print("   " + line.strip(), flush=True)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)


def setup(extras: str = "dev") -> Path:
    """Create or refresh the virtual environment with ``extras`` installed; returns its python.

    The stamp records pyproject's hash and the extras installed, so switching between ``lab``
    (dev,lab) and ``run``/``test`` (dev) installs nothing new once both are there.
    """
    stamp = VENV / ".minidiff-stamp"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + str(ROOT).encode()).hexdigest()
    have, _, installed = (stamp.read_text() if stamp.exists() else "").partition("\n")
    extras_set = set(extras.split(","))
    if have == want and extras_set <= set(installed.split(",")):
        return venv_python()
    if have == want:
        extras_set |= set(filter(None, installed.split(",")))
    if not venv_python().exists():
        print(f"creating virtual environment {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    print(f"installing {TORCH} (the CPU wheel) first, 1 of 2 …", flush=True)
    _pip(pip + [TORCH])
    print(f"installing the course's packages ({','.join(sorted(extras_set))}), 2 of 2: a few minutes on a new machine …", flush=True)
    _pip(pip + ["-e", f"{ROOT}[{','.join(sorted(extras_set))}]"])
    print(f"virtual environment ready: {VENV}", flush=True)
    stamp.write_text(f"{want}\n{','.join(sorted(extras_set))}")
    return venv_python()


def headless_env() -> dict[str, str]:
    """The environment variables for kernels that execute notebooks headless (they inherit them):
    ``TQDM_DISABLE=1`` unless set already, and an ``IPYTHONDIR`` whose start-up file makes tqdm's
    notebook bars honour it."""
    startup = HEADLESS_IPYTHONDIR / "profile_default" / "startup" / "00-tqdm-disable.py"
    if not startup.exists() or startup.read_text() != HEADLESS_STARTUP:
        startup.parent.mkdir(parents=True, exist_ok=True)
        startup.write_text(HEADLESS_STARTUP)
    return {"TQDM_DISABLE": os.environ.get("TQDM_DISABLE") or HEADLESS_ENV["TQDM_DISABLE"],
            "IPYTHONDIR": str(HEADLESS_IPYTHONDIR)}


# ---------------------------------------------------------------- choosing notebooks

def course_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(names: list[str]) -> list[Path]:
    """Resolve ``04``, ``04_shapes_world``, ``04_shapes_world.ipynb`` or a path to notebooks, in the
    order given; no names means all of them. A name that matches nothing, or several, is an error."""
    every = course_notebooks()
    if not names:
        return every
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            found = [path.resolve()]
        else:
            stem = path.name.removesuffix(".ipynb")
            found = [p for p in every if p.stem == stem] or [p for p in every if p.stem.startswith(stem)]
        if len(found) != 1:
            listing = ", ".join(p.stem for p in (found or every))
            what = "matches several notebooks" if found else "matches no notebook"
            raise SystemExit(f"course.py run: {name!r} {what}; choose from: {listing}")
        if found[0] not in chosen:
            chosen.append(found[0])
    return chosen


# ---------------------------------------------------------------- HTML that works offline

def _mathjax_source() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(list(spec.submodule_search_locations)[0]) / "static"
    return static if (static / "MathJax.js").exists() else None


def install_mathjax(html_dir: Path) -> bool:
    """Copy MathJax (from jupyter-server-mathjax) to ``html_dir/mathjax`` unless it is there already.

    Returns False, after saying so, when the package is missing: the HTML then loads MathJax from a CDN."""
    source = _mathjax_source()
    if source is None:
        print("jupyter-server-mathjax is not installed: the HTML will load MathJax from a CDN", file=sys.stderr)
        return False
    from importlib.metadata import version

    target, stamp = html_dir / "mathjax", f"jupyter-server-mathjax {version('jupyter-server-mathjax')}\n"
    marker = target / ".installed-from"
    if marker.exists() and marker.read_text() == stamp:
        return True
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    marker.write_text(stamp)
    return True


def _widget_outputs(state: dict, model_id: str, seen: set) -> tuple[list, bool]:
    """The outputs captured by the Output widgets under ``model_id``, and whether it holds controls."""
    model = state.get(model_id)
    if model is None or model_id in seen:
        return [], False
    seen.add(model_id)
    name, inner = model.get("model_name", ""), model.get("state", {})
    if name == "OutputModel":
        return list(inner.get("outputs", [])), False
    outputs, controls = [], not any(word in name for word in _PASSIVE_WIDGETS)
    for child in inner.get("children", []):
        child_outputs, child_controls = _widget_outputs(state, str(child).removeprefix("IPY_MODEL_"), seen)
        outputs += child_outputs
        controls = controls or child_controls
    return outputs, controls


def static_widgets(nb):
    """A copy of ``nb`` whose widget views are replaced by what their Output widgets captured.

    A widget needs a JavaScript manager from a CDN (unpkg) to be drawn at all; written out this way the
    page shows, offline, the figure an ``interact`` drew for its initial values, with a note that the
    controls live in JupyterLab. Widgets that capture nothing (progress bars) are dropped."""
    import nbformat

    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW) if output.get("output_type") in ("display_data", "execute_result") else None
            if view is None:
                outputs.append(output)
                continue
            captured, controls = _widget_outputs(state, view.get("model_id", ""), set())
            if controls:
                note = ("<p><em>Interactive controls: run the notebook in JupyterLab (<code>python3 course.py lab</code>) "
                        "to use them; shown here with their initial values.</em></p>")
                outputs.append(nbformat.v4.new_output("display_data", data={"text/html": note, "text/plain": ""}))
            outputs += [nbformat.from_dict(o) for o in captured]
        cell.outputs = outputs
    return nb


def _needs_requirejs(nb) -> bool:
    return bool(nb.metadata.get("widgets")) or any(
        "application/javascript" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def export_html(nb, path: Path) -> Path:
    """Write ``nb`` as HTML at ``path`` that renders without a network: MathJax is installed next to it
    (``path.parent/mathjax``), widgets are written out statically, require.js is loaded only if an
    output still needs it."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    path.parent.mkdir(parents=True, exist_ok=True)
    local = install_mathjax(path.parent)
    nb = static_widgets(nb)
    kwargs = {"mathjax_url": MATHJAX_URL} if local else {}
    exporter = HTMLExporter(template_name="lab", template_file="course_offline.html.j2",
                            extra_loaders=[DictLoader({"course_offline.html.j2": _HTML_TEMPLATE})], **kwargs)
    resources = {"course_needs_requirejs": _needs_requirejs(nb), "course_local_mathjax": local,
                 "metadata": {"name": path.stem}}
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    path.write_text(html, encoding="utf-8")
    return path


# ---------------------------------------------------------------- running

# ---------------------------------------------------------------- parameters

def parameters_cell(nb):
    """The code cell tagged ``parameters`` (papermill's convention); a ValueError if there is none."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell
    raise ValueError("this notebook has no cell tagged 'parameters'")


def _assignments(source: str) -> dict:
    """{name: its ``ast.Assign`` node} of each top-level ``NAME = ...`` in ``source``."""
    import ast

    return {node.targets[0].id: node for node in ast.parse(source).body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}


def parameter_names(nb) -> dict[str, str]:
    """{name: its source expression} of each top-level ``NAME = ...`` in the parameters cell."""
    import ast

    source = parameters_cell(nb).source
    return {name: ast.get_source_segment(source, node.value) for name, node in _assignments(source).items()}


def inject_parameters(nb, values: dict) -> None:
    """Set parameters by name: each ``NAME = ...`` line of the parameters cell becomes ``NAME = repr(value)``.

    The assignment is rewritten in place rather than overridden by a later cell (papermill's way), so
    that what the cell derives from it (``STEPS = 20 if S["shapes_world"] else S["steps"]``) follows.
    A name the cell does not assign is a ValueError listing those it does."""
    cell = parameters_cell(nb)
    lines = cell.source.splitlines()
    nodes = _assignments(cell.source)
    unknown = [name for name in values if name not in nodes]
    if unknown:
        raise ValueError(f"no parameter {', '.join(unknown)} in this notebook; its parameters: {', '.join(nodes)}")
    for name, node in sorted(((k, nodes[k]) for k in values), key=lambda kv: -kv[1].lineno):
        lines[node.lineno - 1:node.end_lineno] = [f"{name} = {values[name]!r}  # set by course.py"]
    cell.source = "\n".join(lines)


def model_parameters(nb) -> dict[str, str]:
    """{name: family} of the parameters named MODEL or MODEL_* whose default is a model name."""
    import ast

    from minidiff.settings import settings_for

    out = {}
    for name, expression in parameter_names(nb).items():
        if name == "MODEL" or name.startswith("MODEL_"):
            try:
                out[name] = settings_for(ast.literal_eval(expression))["family"]
            except (ValueError, SyntaxError):
                continue
    return out


def full_scale_parameters(paths: list[Path], families: list[str], named: bool) -> dict[str, dict]:
    """{notebook stem: {parameter: family}} for ``--model``: each MODEL parameter of a chosen family
    is set to the family's name. Notebooks with none are left out, or, when ``named``, an error."""
    import nbformat

    out = {}
    for path in paths:
        chosen = {k: f for k, f in model_parameters(nbformat.read(path, as_version=4)).items() if f in families}
        if chosen:
            out[path.stem] = chosen
        elif named:
            raise SystemExit(f"course.py run: {path.stem} has no MODEL parameter of family {', '.join(families)}")
    return out


def execute_notebooks(paths: list[Path] | None = None, out: Path = BUILD, timeout: int = 900,
                      parameters: dict[str, dict] | None = None) -> dict[str, float]:
    """Execute notebooks headless (nbclient), write the executed copies and HTML under ``out``.

    ``parameters`` maps a notebook's stem to the parameters to set in it (:func:`inject_parameters`).

    Returns the wall-clock seconds of each notebook that ran without error, also written to
    ``out/timings.json``. A notebook that fails is still written (with its error), the others still
    run, and a ``CellExecutionError`` naming the failed ones is raised at the end.
    """
    from nbclient.exceptions import CellExecutionError

    paths = course_notebooks() if paths is None else [Path(p) for p in paths]
    saved = {k: os.environ.get(k) for k in headless_env()}
    os.environ.update(headless_env())  # the kernels inherit this process's environment
    try:
        timings, failed = _execute(paths, out, timeout, parameters or {})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if failed:
        error = CellExecutionError(f"notebooks that failed: {', '.join(failed)} (see {out / 'executed'}, {out / 'html'})", "", "")
        error.timings = timings  # what did run, measured now
        raise error
    return timings


def _execute(paths: list[Path], out: Path, timeout: int, parameters: dict[str, dict]) -> tuple[dict[str, float], list[str]]:
    import nbformat
    from nbclient.exceptions import CellExecutionError

    (out / "executed").mkdir(parents=True, exist_ok=True)
    (out / "html").mkdir(parents=True, exist_ok=True)
    timings, failed = {}, []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nb.metadata.pop("widgets", None)  # the widget state stored must be this run's
        if parameters.get(path.stem):
            inject_parameters(nb, parameters[path.stem])
            print(f"{path.stem}: " + ", ".join(f"{k} = {v!r}" for k, v in parameters[path.stem].items()), flush=True)
        start = time.perf_counter()
        try:
            run_notebook(nb, path.parent, timeout)
        except CellExecutionError as error:
            failed.append(path.stem)
            print(f"{path.stem:<24} FAILED after {time.perf_counter() - start:.1f} s\n{error}", flush=True)
        else:
            timings[path.stem] = round(time.perf_counter() - start, 1)
            print(f"{path.stem:<24} {timings[path.stem]:7.1f} s", flush=True)
        nbformat.write(nb, out / "executed" / path.name)
        export_html(nb, out / "html" / f"{path.stem}.html")
    # one measurement per notebook, the latest: a run of some notebooks keeps the others' figures
    known = json.loads((out / "timings.json").read_text()) if (out / "timings.json").exists() else {}
    (out / "timings.json").write_text(json.dumps({k: v for k, v in {**known, **timings}.items() if k not in failed}, indent=1))
    return timings, failed


def run_notebook(nb, folder: Path, timeout: int = 900) -> None:
    """Execute ``nb`` in place with a kernel started in ``folder`` (nbclient); raises CellExecutionError."""
    from nbclient import NotebookClient
    from traitlets.config import Config

    # Kernels talk over local IPC sockets, not TCP: no port is opened, and ipykernel 7 has no "running
    # over TCP without encryption" warning to print. The socket path is absolute because the kernel runs
    # in the notebook's folder and this process elsewhere.
    with tempfile.TemporaryDirectory(prefix="course-kernels-") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
        NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
                       resources={"metadata": {"path": str(folder)}}).execute()


def stated_seconds(seconds: float) -> int:
    """How the README and a notebook header quote a recorded time: to the nearest 10 s, at least 10 s."""
    return max(10, int(seconds / 10 + 0.5) * 10)


def budget_report(timings: dict[str, float], recorded: dict[str, float] | None = None) -> list[str]:
    """Lines naming the notebooks over ``NOTEBOOK_BUDGET`` (``DETAILED_BUDGET`` for ``DETAILED_LESSONS``) and saying whether the course fits
    ``COURSE_BUDGET``; notebooks not in ``timings`` count with their ``recorded`` seconds."""
    lines = []
    budget = lambda stem: DETAILED_BUDGET if stem in DETAILED_LESSONS else NOTEBOOK_BUDGET  # noqa: E731
    over = {k: v for k, v in timings.items() if v > budget(k)}
    for stem, seconds in over.items():
        lines.append(f"OVER BUDGET: {stem} took {seconds:.0f} s (budget {budget(stem)} s for this notebook)")
    if not over:
        lines.append(f"every notebook run is within the {NOTEBOOK_BUDGET} s budget ({DETAILED_BUDGET} s for a detailed-world lesson: "
                     f"{', '.join(k[:2] for k in DETAILED_LESSONS)})")
    others = {k: v for k, v in (recorded or {}).items() if k not in timings}
    total = sum(timings.values()) + sum(others.values())
    how = f"measured now: {', '.join(k[:2] for k in timings) or 'none'}" + (
        f"; recorded in {TIMINGS.relative_to(ROOT)}, not run now: {', '.join(k[:2] for k in others)}" if others else "")
    verdict = "OVER BUDGET" if total > COURSE_BUDGET else "within budget"
    lines.append(f"whole course: {total:.0f} s ({how}), {verdict} ({COURSE_BUDGET} s = {COURSE_BUDGET // 60} min)")
    return lines


def read_timings() -> dict[str, float]:
    return json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}


def record_timings(timings: dict[str, float]) -> None:
    """Merge measured seconds into notebooks/timings.json (other notebooks keep their figures)."""
    known = {path.stem for path in course_notebooks()}
    timings = {k: v for k, v in timings.items() if k in known}  # notebooks of the course only
    merged = {k: v for k, v in {**read_timings(), **timings}.items() if k in known}
    TIMINGS.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
    print(f"recorded {', '.join(timings) or 'nothing'} in {TIMINGS.relative_to(ROOT)}; the README's table and the notebook"
          " headers must now say:")
    for stem, seconds in sorted(merged.items()):
        print(f"  {stem:<24} ≈ {stated_seconds(seconds)} s")


def run_course(paths: list[str], record: bool = False, families: list[str] | None = None,
               settings: dict | None = None, named: bool = True) -> int:
    """``course.py run`` inside the virtual environment: execute, report the budget, maybe record.

    ``families`` (``--model``) and ``settings`` (``--set``) set parameters; such runs go to build/custom."""
    from nbclient.exceptions import CellExecutionError

    paths = [Path(p) for p in paths]
    parameters, out = {}, BUILD
    if families or settings:
        out = BUILD / "custom"
        if families:
            parameters = full_scale_parameters(paths, families, named)
            paths = [p for p in paths if p.stem in parameters]
        for path in paths:
            parameters.setdefault(path.stem, {}).update(settings or {})
    try:
        timings, code = execute_notebooks(paths, out, parameters=parameters), 0
    except CellExecutionError as error:
        print(error, file=sys.stderr)
        timings = getattr(error, "timings", {})
        code = 1
    if out == BUILD:  # a run with other parameters is not the course: its seconds say nothing of the budget
        print("\n".join(budget_report(timings, read_timings())), flush=True)
    if record and timings:
        record_timings(timings)
    return code


FAMILIES = ("sd15", "sd3", "flux")  # minidiff.settings.FULL_SCALE's keys


def _parse_setting(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` → (NAME, the Python literal VALUE; a bare word stays a string)."""
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise SystemExit(f"course.py run: --set {text!r}: write NAME=VALUE, e.g. --set N_EDITS=6")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if command == "run":
        parser = argparse.ArgumentParser(prog="course.py run", description="Execute notebooks headless into build/.")
        parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="04, 04_shapes_world or a path (default: all)")
        parser.add_argument("--record", action="store_true", help=f"write the measured seconds into {TIMINGS.relative_to(ROOT)}")
        parser.add_argument("--model", type=lambda s: s.split(","), default=[], metavar="FAMILY[,FAMILY]",
                            help="run the image lessons at full scale: sd15, sd3, flux (a GPU and the cached weights)")
        parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                            help="set a parameter of the notebooks by name (VALUE: a Python literal)")
        args = parser.parse_args(rest)
        settings = dict(_parse_setting(text) for text in args.settings)
        unknown = [f for f in args.model if f not in FAMILIES]
        if unknown:
            parser.error(f"--model {','.join(unknown)}: choose from {', '.join(FAMILIES)}")
        if args.record and (args.model or settings):
            parser.error("--record stores the tiny course's timings; it cannot be combined with --model or --set")
        paths = [str(p) for p in select_notebooks(args.notebooks)]
        python = setup()
        request = json.dumps({"paths": paths, "record": args.record, "families": args.model, "settings": settings,
                              "named": bool(args.notebooks)})
        code = "import course, json, sys; sys.exit(course.run_course(**json.loads(sys.argv[1])))"
        return subprocess.run([str(python), "-c", code, request], cwd=ROOT).returncode
    if command == "test":
        python = setup()
        env = {**os.environ, **headless_env()}  # nbval's kernels inherit pytest's environment
        # -rs: every skipped test is listed with its reason (the browser tests without Chromium)
        return subprocess.run([str(python), "-m", "pytest", "-rs", *rest], cwd=ROOT, env=env).returncode
    if command == "site":
        python = setup()
        return subprocess.run([str(python), str(ROOT / "site_builder.py")], cwd=ROOT).returncode
    if command in ("release", "grade"):
        python = setup()
        env = {**os.environ, **headless_env()}
        return subprocess.run([str(python), str(ROOT / "classroom.py"), command, *rest], cwd=ROOT, env=env).returncode
    if command == "lab":
        python = setup("dev,lab")
        return subprocess.run([str(python), "-m", "jupyter", "lab", str(NOTEBOOKS), *rest], cwd=ROOT).returncode
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
