"""course.py: choosing notebooks, forwarding arguments, headless settings, the run-time budget, one
source of truth for the run times quoted in the README and the notebook headers; fast training --help."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course  # noqa: E402

NOTEBOOKS = course.course_notebooks()
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|min)\b", re.IGNORECASE)


# ---------------------------------------------------------------- choosing notebooks, forwarding arguments

def test_notebooks_are_chosen_by_number_stem_or_path():
    by_number = course.select_notebooks(["06", "04"])
    assert [p.stem for p in by_number] == ["06_nulltext_p2p", "04_shapes_world"]
    assert course.select_notebooks(["04_shapes_world", "04_shapes_world.ipynb"]) == by_number[1:]
    assert course.select_notebooks([str(NOTEBOOKS[0])]) == NOTEBOOKS[:1]
    assert course.select_notebooks([os.path.relpath(NOTEBOOKS[0])]) == NOTEBOOKS[:1]
    assert course.select_notebooks([]) == NOTEBOOKS


@pytest.mark.parametrize("name, message", [("99", "matches no notebook"), ("0", "matches several notebooks")])
def test_a_name_that_matches_no_single_notebook_is_refused(name, message):
    with pytest.raises(SystemExit, match=f"{message}.*04_shapes_world"):
        course.select_notebooks([name])


def test_run_refuses_an_unknown_notebook_before_any_setup(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MINIDIFF_VENV": str(tmp_path / "no-venv")}
    done = subprocess.run([sys.executable, str(ROOT / "course.py"), "run", "99"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0 and "'99' matches no notebook" in done.stderr
    assert not (tmp_path / "no-venv").exists()


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 0)


@pytest.fixture
def recorded(monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(course, "setup", lambda extras="dev": Path("/venv/bin/python"))
    monkeypatch.setattr(course.subprocess, "run", recorder)
    return recorder


def test_lab_forwards_extra_arguments_to_jupyterlab(recorded):
    assert course.main(["lab", "--allow-root", "--port", "8890"]) == 0
    (cmd, _), = recorded.calls
    assert cmd[1:4] == ["-m", "jupyter", "lab"] and cmd[-3:] == ["--allow-root", "--port", "8890"]


def test_run_passes_the_chosen_notebooks_and_record(recorded):
    assert course.main(["run", "04", "06", "--record"]) == 0
    (cmd, _), = recorded.calls
    request = json.loads(cmd[3])
    assert request["record"] and [Path(p).stem for p in request["paths"]] == ["04_shapes_world", "06_nulltext_p2p"]


def test_run_passes_full_scale_families_and_settings(recorded):
    assert course.main(["run", "06", "--model", "sd15", "--set", "N_EDITS=6", "--set", "MODEL_NOTE=plain"]) == 0
    (cmd, _), = recorded.calls
    request = json.loads(cmd[3])
    assert request["families"] == ["sd15"] and request["settings"] == {"N_EDITS": 6, "MODEL_NOTE": "plain"}
    with pytest.raises(SystemExit):
        course.main(["run", "--model", "sdxl"])
    with pytest.raises(SystemExit):
        course.main(["run", "06", "--model", "sd15", "--record"])  # timings are the tiny course's


def test_tests_run_with_tqdm_disabled_for_the_nbval_kernels(recorded, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert course.main(["test", "-k", "x"]) == 0
    (cmd, kwargs), = recorded.calls
    assert cmd[-2:] == ["-k", "x"] and kwargs["env"]["TQDM_DISABLE"] == "1"


def test_help_names_the_new_options():
    assert "lab --allow-root --port 8890" in course.__doc__ and "--record" in course.__doc__
    done = subprocess.run([sys.executable, str(ROOT / "course.py"), "run", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--record" in done.stdout and "NOTEBOOK" in done.stdout


# ---------------------------------------------------------------- headless execution

def test_executed_kernels_get_tqdm_disabled_and_leave_no_frozen_bar(tmp_path, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A test\n\n$x^2$"),
        nbformat.v4.new_code_cell("import os\nprint('TQDM_DISABLE =', os.environ.get('TQDM_DISABLE'))"),
        nbformat.v4.new_code_cell("from tqdm.auto import tqdm\ntotal = sum(tqdm(range(3)))\ntotal"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "90_probe.ipynb"
    nbformat.write(nb, path)
    timings = course.execute_notebooks([path], out=tmp_path / "build")
    assert "TQDM_DISABLE" not in os.environ  # the setting does not leak into this process
    assert set(timings) == {"90_probe"} and json.loads((tmp_path / "build/timings.json").read_text()) == timings
    executed = nbformat.read(tmp_path / "build/executed/90_probe.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    text = json.dumps(outputs)
    assert "TQDM_DISABLE = 1" in text and "0%|" not in text and "widget-view" not in text
    html = (tmp_path / "build/html/90_probe.html").read_text()
    assert "mathjax/MathJax.js" in html and (tmp_path / "build/html/mathjax/MathJax.js").exists()


# ---------------------------------------------------------------- the budget, and one source of truth for run times

def test_the_budget_report_names_slow_notebooks_and_the_course_total():
    lines = course.budget_report({"01_a": 200.0, "02_b": 100.0})
    assert any("OVER BUDGET: 01_a took 200 s" in ln for ln in lines)
    detailed = course.DETAILED_LESSONS[0]  # a detailed-world lesson has 300 s
    assert course.budget_report({detailed: 250.0})[0].startswith("every notebook run is within")
    assert any(f"OVER BUDGET: {detailed} took 310 s (budget 300 s" in ln for ln in course.budget_report({detailed: 310.0}))
    assert not any("02_b" in ln for ln in lines)
    assert "whole course: 300 s" in lines[-1] and "within budget" in lines[-1]
    lines = course.budget_report({"02_b": 100.0}, recorded={"01_a": 1150.0, "02_b": 50.0})
    assert "every notebook run is within the 180 s budget" in lines[0]
    assert "whole course: 1250 s (measured now: 02; recorded in" in lines[-1] and "not run now: 01" in lines[-1]
    assert "OVER BUDGET" in lines[-1]


def test_a_partial_run_keeps_the_other_notebooks_measurements(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "91_probe.ipynb")
    (tmp_path / "build").mkdir()
    (tmp_path / "build/timings.json").write_text(json.dumps({"04_other": 70.0}))
    timings = course.execute_notebooks([tmp_path / "91_probe.ipynb"], out=tmp_path / "build")
    stored = json.loads((tmp_path / "build/timings.json").read_text())
    assert set(timings) == {"91_probe"} and stored == {"04_other": 70.0, **timings}


def test_record_merges_measured_seconds_into_timings_json(tmp_path, monkeypatch, capsys):
    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({NOTEBOOKS[0].stem: 25, "99_gone": 3}))
    monkeypatch.setattr(course, "TIMINGS", timings)
    monkeypatch.setattr(course, "ROOT", tmp_path)
    course.record_timings({NOTEBOOKS[1].stem: 33.4})
    assert json.loads(timings.read_text()) == {NOTEBOOKS[0].stem: 25, NOTEBOOKS[1].stem: 33.4}
    assert f"{NOTEBOOKS[1].stem:<24} ≈ 30 s" in capsys.readouterr().out


@pytest.mark.parametrize("recorded, stated", [(3, 10), (14.9, 10), (15, 20), (25, 30), (170.2, 170), (176, 180)])
def test_stated_times_round_to_ten_seconds(recorded, stated):
    assert course.stated_seconds(recorded) == stated


def _duration(text: str) -> tuple[float, bool] | None:
    """The first duration in ``text`` ("≈ 60 s", "about 40 s", "~ 2 min") in seconds, and whether it
    was given in minutes."""
    match = _DURATION.search(text.replace("\u202f", " ").replace("\xa0", " "))
    if match is None:
        return None
    minutes = match.group(2).lower().startswith("m")
    return float(match.group(1)) * (60 if minutes else 1), minutes


def _agrees(stated: float, recorded: float, minutes: bool = False) -> bool:
    """A time quoted in seconds agrees if it is within 5 s (or 5 %, whichever is more) of the recorded
    seconds, or is what ``course.stated_seconds`` makes of them (nearest 10 s, at least 10 s); one
    quoted in minutes agrees if it is the recorded time rounded to the nearest minute."""
    if minutes:
        return round(recorded / 60) * 60 == stated
    return abs(stated - recorded) <= max(5.0, 0.05 * recorded) or stated == course.stated_seconds(recorded)


@pytest.mark.parametrize("text, recorded, ok", [
    ("≈ 25 s", 25, True), ("≈ 30 s", 25, True), ("about 20 s on", 25, True), ("≈ 10 s", 3, True),
    ("≈ 40 s", 25, False), ("≈ 170 s", 176.4, True), ("≈ 160 s", 176.4, False), ("~180 seconds", 174, True), ("~180 seconds", 171, False),
    ("≈ 120 s", 100, False), ("≈ 2 min", 100, True), ("≈ 2 min", 140, True), ("≈ 1 min", 100, False)])
def test_the_agreement_rule(text, recorded, ok):
    assert _quotes(text, recorded) == ok


def _quotes(text: str, recorded: float) -> bool:
    """Whether ``text`` quotes a duration that agrees with the ``recorded`` seconds."""
    found = _duration(text)
    return found is not None and _agrees(found[0], recorded, minutes=found[1])


def _readme_times() -> dict[str, str]:
    """The "time" column of the README's notebook table, by notebook stem."""
    rows, column = {}, None
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if not cells:
            column = None
            continue
        header = [c.lower() for c in cells]
        if header[0] == "notebook" and any(h.startswith("time") for h in header):
            column = next(i for i, h in enumerate(header) if h.startswith("time"))
            continue
        if column is not None and len(cells) > column:
            stem = cells[0].strip("`* ").removesuffix(".ipynb")
            if re.match(r"\d\d_", stem):
                rows[stem] = cells[column]
    return rows


def _header_time(path: Path) -> str | None:
    """The line of the notebook's first markdown cell that gives its run time."""
    nb = nbformat.read(path, as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    lines = first.source.splitlines() if first else []
    return next((ln for ln in lines if re.search(r"run[ -]?time", ln, re.IGNORECASE)), None)


def _after_run_time(line: str) -> str:
    return re.split(r"run[ -]?time", line, maxsplit=1, flags=re.IGNORECASE)[-1]


def test_timings_json_covers_exactly_the_notebooks():
    recorded = json.loads(course.TIMINGS.read_text())
    assert set(recorded) == {p.stem for p in NOTEBOOKS}
    assert all(isinstance(v, (int, float)) and v > 0 for v in recorded.values())


def test_readme_table_and_notebook_headers_quote_the_recorded_run_times():
    recorded = json.loads(course.TIMINGS.read_text())
    readme = _readme_times()
    problems = []
    for path in NOTEBOOKS:
        stem, seconds = path.stem, recorded.get(path.stem)
        if seconds is None:
            problems.append(f"{stem}: not in notebooks/timings.json (python3 course.py run {stem[:2]} --record)")
            continue
        want = f"≈ {course.stated_seconds(seconds)} s"
        cell = readme.get(stem)
        if cell is None:
            problems.append(f"README: no row for `{stem}` in the notebook table (time column: {want})")
        elif not _quotes(cell, seconds):
            problems.append(f"README: `{stem}` says {cell!r}; recorded {seconds} s, so write {want!r}")
        line = _header_time(path)
        if line is None:
            problems.append(f"{stem}: its first markdown cell has no 'run time' line (write: **Expected run time:** {want} ...)")
        elif not _quotes(_after_run_time(line), seconds):
            problems.append(f"{stem}: header says {line.strip()!r}; recorded {seconds} s, so write {want!r}")
    assert not problems, "run times disagree with notebooks/timings.json:\n" + "\n".join(problems)


# ---------------------------------------------------------------- training command lines answer --help at once

@pytest.mark.parametrize("module, defaults", [
    ("toy.train", ["default: 5500 for vae, 6000 for tiny-sd, 6000 for tiny-flow, 6000 for tiny-flux", "default: 32 for vae",
                   "default: 0.001 for vae", "default: 250", "default: all cores", "default: toy/weights/<recipe>"]),
    ("toy.train2d", ["default: 0", "default: the shipped location"]),
])
def test_training_help_is_fast_and_shows_every_default(module, defaults):
    """--help answers before torch is imported (-X importtime lists every module imported)."""
    env = {**os.environ, "COLUMNS": "250"}  # no wrapping inside the defaults
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported, f"python -m {module} --help imports torch before parsing"
    text = " ".join(done.stdout.split())
    for default in defaults:
        assert default in text, default
    options = re.findall(r"^  (--[a-z-]+)", done.stdout, re.MULTILINE)
    described = re.split(r"\n  (?=--)", done.stdout.split("options:", 1)[1])
    for option, block in zip(options, described[1:]):
        assert "default" in block, f"{option} shows no default"


def test_training_defaults_in_help_are_the_recipes_defaults():
    from toy import train

    for recipe, (steps, batch, lr) in train.DEFAULTS.items():
        assert f"{steps} for {recipe}" in train._per_recipe(0) and f"{batch} for {recipe}" in train._per_recipe(1)


# ---------------------------------------------------------------- committed outputs are clean

def test_committed_notebooks_store_no_frozen_progress_bars_or_warnings():
    """A progress bar stored in a notebook is a frozen "0%|" line, and a stderr stream is a warning
    the learner did not ask for: notebooks are committed as `course.py run` executes them (headless)."""
    problems = []
    for path in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                texts = [output.get("text", "")] + [str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
                if output.get("name") == "stderr":
                    problems.append(f"{path.stem} cell {i}: stderr output {output.get('text', '')[:80]!r}")
                elif any(re.search(r"\d+%\|", t) for t in texts):
                    problems.append(f"{path.stem} cell {i}: a stored progress bar")
    assert not problems, "\n".join(problems)
