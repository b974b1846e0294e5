"""course.py release / grade (classroom.py, with nbgrader) on lesson 02: the student copy runs up to its
stubs and each stub raises; grading scores the teacher's copy full, the untouched student copy zero,
one wrong answer exactly one exercise down, and gives a row with a reason to a notebook that raises,
one that runs past the timeout and a file that is not a notebook."""
import csv
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import classroom  # noqa: E402

LESSON = ROOT / "notebooks" / "02_ddim_inversion.ipynb"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    classroom.release(out, [LESSON])
    return out


def _cells(nb, key):
    return [i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get(key)]


def test_release_strips_solutions_and_hidden_checks_and_keeps_the_figures(released):
    student = nbformat.read(released / "student" / LESSON.name, as_version=4)
    teacher = nbformat.read(released / "teacher" / LESSON.name, as_version=4)
    assert teacher == nbformat.read(LESSON, as_version=4)
    answers, checks = _cells(student, "solution"), _cells(student, "grade")
    assert answers and checks and classroom.exercises(student) == classroom.exercises(teacher) == [("ex1", 1.0), ("ex2", 2.0)]
    for i in answers:
        assert "Your job" in student.cells[i].source and "BEGIN SOLUTION" not in student.cells[i].source
        assert "raise NotImplementedError" in student.cells[i].source
    for i in checks:
        assert "HIDDEN" not in student.cells[i].source and not student.cells[i].outputs
    figures = [c for c in student.cells if c.cell_type == "code" and any("image/png" in o.get("data", {}) for o in c.outputs)]
    assert figures, "the lesson's figures were not kept"
    with pytest.raises(SystemExit, match="never overwrites"):
        classroom.release(released, [LESSON])


def test_the_student_copy_runs_up_to_its_stubs_and_each_stub_raises(released, tmp_path):
    nb = nbformat.read(released / "student" / LESSON.name, as_version=4)
    NotebookClient(nb, timeout=600, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}).execute()
    first = min(_cells(nb, "solution"))
    errors = {i: o.ename for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs if o.output_type == "error"}
    assert all(i > first for i in errors), f"cells before the first stub failed: {errors}"
    assert {errors.get(i) for i in _cells(nb, "grade")} == {"NotImplementedError"}


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    teacher = nbformat.read(released / "teacher" / LESSON.name, as_version=4)
    for student, nb in (("alice", teacher), ("bob", nbformat.read(released / "student" / LESSON.name, as_version=4))):
        (subs / student).mkdir()
        nbformat.write(nb, subs / student / LESSON.name)
    wrong = nbformat.read(released / "teacher" / LESSON.name, as_version=4)
    answer = wrong.cells[[i for i in _cells(wrong, "solution") if "fixed_point_invert" in wrong.cells[i].source][0]]
    answer.source = answer.source.replace("for _ in range(iters):", "for _ in range(0):")  # ignores the iterations
    raising = nbformat.read(released / "teacher" / LESSON.name, as_version=4)
    raising.cells.insert(1, nbformat.v4.new_code_cell('raise RuntimeError("boom")'))
    looping = nbformat.read(released / "teacher" / LESSON.name, as_version=4)
    looping.cells.insert(1, nbformat.v4.new_code_cell("import time\nwhile True:\n    time.sleep(1)"))
    for student, nb in (("carol", wrong), ("dave", raising), ("eve", looping)):
        (subs / student).mkdir()
        nbformat.write(nb, subs / student / LESSON.name)
    (subs / "frank").mkdir()
    (subs / "frank" / LESSON.name).write_text("{ this is not a notebook")
    out = classroom.grade(subs, timeout=60)
    with out.open() as f:
        return {row["student"]: row for row in csv.DictReader(f)}, subs


def test_grades_full_zero_and_exactly_one_exercise_down(graded):
    rows, _ = graded
    assert (rows["alice"]["02:ex1"], rows["alice"]["02:ex2"], rows["alice"]["total"]) == ("1.0", "2.0", "1.0")
    assert (rows["bob"]["02:ex1"], rows["bob"]["02:ex2"], rows["bob"]["total"]) == ("0.0", "0.0", "0.0")
    assert (rows["carol"]["02:ex1"], rows["carol"]["02:ex2"]) == ("1.0", "0.0") and float(rows["carol"]["total"]) == pytest.approx(1 / 3, abs=1e-3)


def test_broken_submissions_get_a_row_and_a_reason_and_everyone_feedback(graded):
    rows, subs = graded
    assert "raised RuntimeError: boom" in rows["dave"]["notes"]
    assert "ran past 60 s and were stopped" in rows["eve"]["notes"]
    assert "not a valid notebook" in rows["frank"]["notes"] and rows["frank"]["total"] == "0.0"
    for student in rows:
        assert (subs / "feedback" / student / f"{LESSON.stem}.html").read_text().strip()


IMAGE_LESSONS = ("04", "06", "07", "08", "09")


@pytest.mark.parametrize("path", classroom.lessons(), ids=lambda p: p.stem)
def test_every_lesson_marks_its_exercises_for_the_grader(path):
    """Answer cells hold their solution between the markers, checks carry points and unique ids, no
    solution is left in view, and each image lesson has a graded check and a prediction question."""
    nb = nbformat.read(path, as_version=4)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids))
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution"):
            assert "### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source
        assert not c.source.startswith("**Solution")
        if c.cell_type == "code" and "raise NotImplementedError" in c.source:
            assert meta.get("solution"), "an unmarked stub: make it an answer cell"
    if path.stem[:2] in IMAGE_LESSONS:
        assert classroom.exercises(nb), "an image lesson needs a graded exercise"
        assert any(c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution") for c in nb.cells), \
            "an image lesson needs a prediction question"


def test_release_builds_every_lesson(tmp_path):
    written = classroom.release(tmp_path)
    assert len(written) == 2 * len(classroom.lessons())
    for path in classroom.lessons():
        student = nbformat.read(tmp_path / "student" / path.name, as_version=4)
        assert "BEGIN SOLUTION" not in "".join(c.source for c in student.cells)
