#!/usr/bin/env python3
"""Set up the course and run it, with nothing but Python on the machine.

    python3 course.py run     # make .venv (torch CPU first), execute every notebook -> build/
    python3 course.py test    # make .venv if needed, run all tests (unit tests + nbval)
    python3 course.py lab     # open JupyterLab on notebooks/

The virtual environment is ``.venv`` unless ``MINIDIFF_VENV`` names another folder (CI keeps
one in its cache). It is rebuilt only when pyproject.toml changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("MINIDIFF_VENV", ROOT / ".venv"))
TORCH = "torch==2.13.0"  # the CPU wheel; installed before anything that could pull a CUDA build
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup(extras: str = "dev") -> Path:
    """Create or refresh the virtual environment; returns its python."""
    stamp = VENV / ".minidiff-stamp"
    want = hashlib.sha256(((ROOT / "pyproject.toml").read_bytes() + str(ROOT).encode() + extras.encode())).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return venv_python()
    if not venv_python().exists():
        print(f"creating virtual environment {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + [TORCH], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[{extras}]"], check=True)
    stamp.write_text(want)
    return venv_python()


def execute_notebooks(paths: list[Path] | None = None, out: Path = BUILD, timeout: int = 900) -> dict[str, float]:
    """Execute notebooks headless (nbclient), write the executed copies and HTML under ``out``.

    Returns the wall-clock seconds of each notebook, also written to ``out/timings.json``.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    paths = paths or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    (out / "executed").mkdir(parents=True, exist_ok=True)
    (out / "html").mkdir(parents=True, exist_ok=True)
    timings = {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        timings[path.stem] = round(time.perf_counter() - start, 1)
        nbformat.write(nb, out / "executed" / path.name)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out / "html" / f"{path.stem}.html").write_text(html)
        print(f"{path.stem:<24} {timings[path.stem]:7.1f} s", flush=True)
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    return timings


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if command == "run":
        python = setup()
        code = "import course, sys; t = course.execute_notebooks(); print(f'whole course {sum(t.values()):.0f} s')"
        return subprocess.run([str(python), "-c", code], cwd=ROOT).returncode
    if command == "test":
        python = setup()
        return subprocess.run([str(python), "-m", "pytest", *sys.argv[2:]], cwd=ROOT).returncode
    if command == "lab":
        python = setup("dev,lab")
        return subprocess.run([str(python), "-m", "jupyter", "lab", str(NOTEBOOKS)], cwd=ROOT).returncode
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
