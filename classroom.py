"""The classroom: student copies of the lessons and an autograder, both made by nbgrader.

nbgrader (Jupyter's own grader) is used rather than otter-grader because its conventions live in
cell metadata: a lesson stays one ordinary notebook that CI executes with its solutions, and the
same file is the teacher's copy. An exercise is an *answer cell* (``nbgrader.solution``) whose
solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, followed by a *check cell*
(``nbgrader.grade`` with ``points``) whose asserts grade it; asserts between ``### BEGIN HIDDEN
TESTS`` and ``### END HIDDEN TESTS`` are withheld from students. A prediction question is a markdown
answer cell worth 0 points: its answer is in the teacher's copy only.

    python3 course.py release [DIR]          # DIR/student/NN_topic.ipynb and DIR/teacher/NN_topic.ipynb
    python3 course.py grade SUBMISSIONS_DIR  # SUBMISSIONS_DIR/<student>/NN_topic.ipynb → grades.csv + feedback/

Every submission is graded in a course folder of its own (a notebook that deletes files deletes only
its copy), by ``nbgrader autograde`` in a subprocess with a per-cell timeout and a wall-clock limit,
so a notebook that crashes, loops or is not a notebook gets a row and a reason, never a hung grader.
"""
from __future__ import annotations

import csv
import html
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
STUB = 'raise NotImplementedError("Your job: write this part, as the exercise above asks.")'
CELL_TIMEOUT = 600  # seconds per cell: the lessons' slowest cells take a few minutes on 2 cores
CONFIG = """c = get_config()
c.ClearSolutions.code_stub = {{"python": {stub!r}}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearOutput.enabled = False  # keep the lesson's figures; answer and check cells are cleared after
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
"""


def lessons() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _nbgrader(root: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` by name: the interpreter's own bin folder must be on PATH even when the
    # virtual environment is not activated (CI and `course.py` call its python directly).
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=root, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _course(root: Path, lesson: Path, timeout: int) -> None:
    """A course folder holding ``lesson`` as its source and in its gradebook."""
    (root / "nbgrader_config.py").write_text(CONFIG.format(stub=STUB, timeout=timeout))
    source = root / "source" / lesson.stem
    source.mkdir(parents=True)
    shutil.copy(lesson, source / lesson.name)
    done = _nbgrader(root, "generate_assignment", lesson.stem)
    if done.returncode:
        raise RuntimeError(f"nbgrader generate_assignment {lesson.stem} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def exercises(nb) -> list[tuple[str, float]]:
    """The graded checks of a lesson, in order: (grade_id, points)."""
    return [(c.metadata["nbgrader"]["grade_id"], float(c.metadata["nbgrader"].get("points", 0)))
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("points", 0)]


def release(out: Path, paths: list[Path] | None = None) -> list[Path]:
    """Write ``out/student/NN.ipynb`` (solutions replaced by stubs that raise, hidden checks removed,
    the outputs of answer and check cells cleared, every other output kept) and ``out/teacher/NN.ipynb``
    (the lesson as it is). Refuses to overwrite a copy that exists."""
    paths = paths or lessons()
    targets = [out / side / p.name for p in paths for side in ("student", "teacher")]
    if existing := [str(t) for t in targets if t.exists()]:
        raise SystemExit(f"course.py release: {', '.join(existing[:3])}{' …' if len(existing) > 3 else ''} exist; "
                         "release writes new copies and never overwrites: pass another DIR or remove them.")
    for side in ("student", "teacher"):
        (out / side).mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        with tempfile.TemporaryDirectory() as tmp:
            _course(Path(tmp), path, CELL_TIMEOUT)
            student = nbformat.read(Path(tmp) / "release" / path.stem / path.name, as_version=4)
        for cell in student.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade")):
                cell.outputs, cell.execution_count = [], None
        nbformat.write(student, out / "student" / path.name)
        shutil.copy(path, out / "teacher" / path.name)
        written += [out / "student" / path.name, out / "teacher" / path.name]
    return written


def _timeouts(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and any(o.get("ename") == "CellTimeoutError" for o in c.get("outputs", []))]


def _first_error(nb) -> str:
    """The first error outside the check cells (whose failures are the grade itself), as a reason."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") != "CellTimeoutError":
                return f"cell {i} raised {out['ename']}: {str(out.get('evalue', ''))[:120]}"
    return ""


def grade_one(submission: Path, student: str, lesson: Path, timeout: int = CELL_TIMEOUT) -> tuple[dict, str, str]:
    """Autograde one submission in a course folder of its own: ({grade_id: score}, reason, feedback HTML)."""
    try:
        nbformat.validate(nbformat.read(submission, as_version=4))
    except Exception as err:  # not JSON, or not a notebook
        return {}, f"not a valid notebook: {type(err).__name__}: {str(err)[:200]}", ""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _course(root, lesson, timeout)
        submitted = root / "submitted" / student / lesson.stem
        submitted.mkdir(parents=True)
        shutil.copy(submission, submitted / lesson.name)
        cells = len(nbformat.read(lesson, as_version=4).cells)
        try:
            done = _nbgrader(root, "autograde", lesson.stem, "--student", student, timeout=timeout * 2 + 30 * cells)
        except subprocess.TimeoutExpired:
            return {}, f"grading stopped after {timeout * 2 + 30 * cells} s (the notebook did not finish)", ""
        graded = root / "autograded" / student / lesson.stem / lesson.name
        if done.returncode or not graded.exists():
            return {}, "nbgrader could not grade it: " + (done.stdout + done.stderr).strip().splitlines()[-1][:300], ""
        from nbgrader.api import Gradebook

        try:
            with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
                notebook = gb.find_submission_notebook(lesson.stem, lesson.stem, student)
                scores = {g.name: float(g.score) for g in notebook.grades}
        except Exception as err:  # the notebook deleted or broke the grading files
            return {}, f"the grading files were damaged while it ran: {type(err).__name__}", ""
        ran = nbformat.read(graded, as_version=4)
        stopped, raised = _timeouts(ran), _first_error(ran)
        reason = "; ".join(filter(None, [f"cells {', '.join(map(str, stopped))} ran past {timeout} s and were stopped" if stopped else "",
                                         raised]))
        _nbgrader(root, "generate_feedback", lesson.stem, "--student", student)
        feedback = next((root / "feedback" / student / lesson.stem).glob("*.html"), None)
        return scores, reason, feedback.read_text() if feedback else ""


def grade(submissions: Path, timeout: int = CELL_TIMEOUT) -> Path:
    """Grade ``submissions/<student>/NN_topic.ipynb`` (any lessons per student): one row per student in
    ``submissions/grades.csv`` with a column per exercise (``NN:grade_id``) and ``total``, the share of
    the points of the lessons that student submitted; a feedback page per submission in
    ``submissions/feedback/<student>/NN_topic.html``; a ``notes`` column gives every reason a
    submission lost points without being graded."""
    by_stem = {p.stem: p for p in lessons()}
    students = sorted(d for d in submissions.iterdir() if d.is_dir() and d.name != "feedback")
    if not students:
        raise SystemExit(f"course.py grade: {submissions} has no <student>/NN_topic.ipynb folders to grade.")
    rows, columns = [], []
    for folder in students:
        row, notes, earned, possible = {"student": folder.name}, [], 0.0, 0.0
        for sub in sorted(folder.glob("*.ipynb")):
            lesson = by_stem.get(sub.stem)
            if lesson is None:
                notes.append(f"{sub.name}: not a lesson of this course")
                continue
            checks = exercises(nbformat.read(lesson, as_version=4))
            scores, reason, feedback = grade_one(sub, folder.name, lesson, timeout)
            for grade_id, points in checks:
                column = f"{sub.stem[:2]}:{grade_id}"
                columns += [column] if column not in columns else []
                row[column] = scores.get(grade_id, 0.0)
                earned, possible = earned + row[column], possible + points
            if reason:
                notes.append(f"{sub.stem}: {reason}")
            page = submissions / "feedback" / folder.name / f"{sub.stem}.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(feedback or f"<html><body><h1>{html.escape(sub.stem)}</h1><p>Not graded: "
                                        f"{html.escape(reason)}</p></body></html>")
        row["total"] = round(earned / possible, 4) if possible else 0.0
        row["notes"] = "; ".join(notes)
        rows.append(row)
    out = submissions / "grades.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["student", *columns, "total", "notes"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return out


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "release":
        out = Path(rest[0]) if rest else ROOT / "build" / "release"
        for path in release(out):
            print(path)
        return 0
    if command == "grade":
        if not rest:
            raise SystemExit("course.py grade: pass SUBMISSIONS_DIR (its <student>/NN_topic.ipynb are graded).")
        print(grade(Path(rest[0])))
        return 0
    raise SystemExit(f"classroom: unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
