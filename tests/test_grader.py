"""The grader (teacher/grade.py): right grades on messy submissions, verdicts made outside the student's kernel,
each submission sandboxed with bubblewrap, points, a gradebook and feedback files, one student re-graded in place.

Two notebooks: a small synthetic master that follows the check interface (values_N in the kernel, verdict_N
outside; fast: the mechanisms, in real sandboxed kernels), and the real notebook (one class graded end to end).
"""

import copy
import csv
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from notebook_module import NOTEBOOK, ROOT

sys.path.insert(0, str(ROOT / "teacher"))
import grade  # noqa: E402
import judge  # noqa: E402
import student_edition as se  # noqa: E402

FOLDED = {"cellView": "form", "jupyter": {"source_hidden": True}}
SANDBOX = shutil.which("bwrap") is not None

# ---------------------------------------------------------------------------------------------- a synthetic master

HELPER = '''# @title Helper shared by the exercise checks (run it; no need to read it)
EXERCISE_RESULTS = {}  # exercise number -> True (right), False (wrong) or None (not attempted yet)


def learner_run(function, **inputs):
    """One run of the learner's function, as data: its result, its error, or not attempted."""
    try:
        result = function(**inputs)
    except NotImplementedError:
        return {"not_attempted": True}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"}
    if result is None:
        return {"not_attempted": True}
    try:
        return {"result": float(result)}
    except Exception:
        return {"result": {"unreadable": repr(result)[:80]}}


def run_check(number, values, verdict, attempt):
    """Print the verdict on the attempt's values, record it in EXERCISE_RESULTS and return it."""
    status, reason = verdict(values(attempt))
    EXERCISE_RESULTS[number] = {"right": True, "wrong": False}.get(status)
    if status == "not attempted":
        print(f"Exercise {number}: not attempted yet ({reason})")
    else:
        print(f"Exercise {number}: {status}: {reason}")
    return EXERCISE_RESULTS[number]'''


def function_check(n, name, pairs, slip, slip_words):
    """Exercise n's check: my_<name>(x) on the stored pairs (x, expected); `slip(x)` is a typical wrong result."""
    return f'''# @title Check for exercise {n}: my_{name} on a few numbers
ANSWER_NAME_{n} = "my_{name}"


def cases_{n}():
    """The public cases: x and the expected result, stored as numbers."""
    return [{{"x": x, "expected": e}} for x, e in {pairs!r}]


def values_{n}(answer, cases=None):
    """In the kernel: the learner's function on each case, as data."""
    if not callable(answer):
        return {{"not_attempted": True}}
    return {{"runs": [learner_run(answer, x=c["x"]) for c in (cases_{n}() if cases is None else cases)]}}


def verdict_{n}(values, cases=None):
    """Pure: the values against the expected results."""
    cases = cases_{n}() if cases is None else cases
    if values.get("not_attempted") or any(r.get("not_attempted") for r in values["runs"]):
        return "not attempted", "my_{name} returned None: write your code, ending in a return"
    for case, run in zip(cases, values["runs"]):
        if "error" in run:
            return "wrong", f"your function raised {{run['error']}}"
        got, x = run["result"], case["x"]
        if not isinstance(got, (int, float)):
            return "wrong", "the result is not a number"
        if not np.isclose(got, case["expected"]):
            slip = " (that is {slip_words})" if np.isclose(got, {slip}) else ""
            return "wrong", f"my_{name}({{x}}) returned {{got}}, expected {{case['expected']}}{{slip}}"
    return "right", f"matches for {{len(cases)}} numbers"


def check_{name}(attempt):
    """Exercise {n}: print right, wrong (and why) or not attempted yet."""
    return run_check({n}, values_{n}, verdict_{n}, attempt)'''


THRESHOLD_CHECK = """# @title Check for exercise 2: is threshold above 8?
ANSWER_NAME_2 = "threshold"


def cases_2():
    return []


def values_2(answer, cases=None):
    if answer is None:
        return {"not_attempted": True}
    return {"value": answer if isinstance(answer, (int, float)) else repr(answer)[:80]}


def verdict_2(values, cases=None):
    if values.get("not_attempted"):
        return "not attempted", "the answer is None: put your number in its place"
    value = values["value"]
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "wrong", "the threshold is not a number"
    if value <= 8:
        return "wrong", f"{value} is not above 8: try more"
    return "right", f"{value} is above 8"


def check_threshold(attempt):
    return run_check(2, values_2, verdict_2, attempt)"""


def exercise_cells(n, title, task, check, stub, solution):
    """Exercise n's four cells (task, folded check, learner's cell, solution), with their markers."""
    cells = [
        nbformat.v4.new_markdown_cell(f"**Exercise {n}: {title}.** {task}"),
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(stub),
        nbformat.v4.new_markdown_cell(
            f"<details><summary>Solution to exercise {n}</summary>\n\n```python\n{solution}\n```\n\n</details>"
        ),
    ]
    for cell, tag in zip(cells, ["exercise", "check", "answer", "solution"]):
        cell.metadata.update(exercise=n, tags=[tag])
    cells[1].metadata.update(FOLDED)
    return cells


def reference_cell(n, text):
    cell = nbformat.v4.new_code_cell(text)
    cell.metadata.update(exercise=n, tags=["reference"])
    return cell


SOLUTIONS = {
    1: 'def my_double(x):\n    """Twice x."""\n    return x * 2',
    2: "threshold = 11",
    3: 'def my_square(x):\n    """x times x."""\n    return x * x',
}


def synthetic_master():
    """A small master with the check interface: two functions with reference cells, and a value in between."""
    parameters = nbformat.v4.new_code_cell(
        'EPOCHS = 20  # passes over the data\nDATA_DIR = "data"  # where the data is\n'
        'MODEL_PATH = "model.npz"  # where the model goes\nRUN_GOING_FURTHER = True  # the long part'
    )
    parameters.metadata["tags"] = ["parameters"]
    helper = nbformat.v4.new_code_cell(HELPER)
    helper.metadata.update(FOLDED)
    cells = [
        nbformat.v4.new_markdown_cell("# A tiny lesson"),
        nbformat.v4.new_code_cell('import numpy as np\n\nprint("setup done")'),
        parameters,
        nbformat.v4.new_code_cell('import os\n\nprint("settings:", EPOCHS, DATA_DIR, MODEL_PATH, RUN_GOING_FURTHER)'),
        helper,
        *exercise_cells(
            1,
            "doubling",
            "Write `my_double(x)`: twice `x`.",
            function_check(1, "double", [(0, 0), (1, 2), (2.5, 5.0), (-3, -6)], "x + 1", "x + 1"),
            'def my_double(x):\n    """Twice x."""\n    return None  # your code here\n\n\ncheck_double(my_double)',
            SOLUTIONS[1],
        ),
        reference_cell(
            1,
            'def double(x):\n    """Twice x: the notebook\'s own version."""\n    return x * 2\n\n\nprint(double(21))',
        ),
        *exercise_cells(
            2,
            "a threshold",
            "Set `threshold` to a number above 8.",
            THRESHOLD_CHECK,
            "threshold = None  # your number here\n\ncheck_threshold(threshold)",
            SOLUTIONS[2],
        ),
        *exercise_cells(
            3,
            "squares",
            "Write `my_square(x)`: `x` times `x`.",
            function_check(3, "square", [(0, 0), (1, 1), (2.5, 6.25), (-3, 9)], "2 * x", "2 * x"),
            'def my_square(x):\n    """x times x."""\n    return None  # your code here\n\n\ncheck_square(my_square)',
            SOLUTIONS[3],
        ),
        reference_cell(3, 'def square(x):\n    """x times x: the notebook\'s own version."""\n    return x * x'),
        nbformat.v4.new_code_cell('print("demonstration:", square(double(3)))'),  # waits for exercises 1 and 3
        nbformat.v4.new_code_cell('print("the end")'),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


HIDDEN_TESTS = '''"""Hidden tests of the synthetic master."""


def hidden_cases(answer_name, rng):
    xs = [float(x) for x in rng.integers(-50, 50, size=3)] + [7.0]
    if answer_name == "my_double":
        return [{"x": x, "expected": 2 * x} for x in xs]
    if answer_name == "my_square":
        return [{"x": x, "expected": x * x} for x in xs]
    return None
'''

# ---------------------------------------------------------------------------------------------- helpers


def text_of(cell):
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"ERROR {output['ename']}: {output['evalue']}")
    return "".join(parts)


def copy_of(nb):
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def answered(nb, code):
    """A copy of nb where the learner's cell of each exercise n in `code` runs code[n] just before its check's call."""
    nb = copy_of(nb)
    for n, ex in se.find_exercises(nb).items():
        if n in code:
            text = se.source(nb.cells[ex.answer])
            before = text[: text.rindex(ex.check_call)].rstrip()
            nb.cells[ex.answer].source = f"{before}\n\n{code[n]}\n\n{ex.check_call}"
    return nb


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def by_student(rows):
    return {(r["student"], r["exercise"]): r for r in rows}


def run_grader(*args, cwd, env=None):
    """grade.py as a teacher runs it; returns the CompletedProcess (its returncode checked by the caller)."""
    command = [sys.executable, str(ROOT / "teacher" / "grade.py"), *map(str, args)]
    environment = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **(env or {}))
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment)


needs_bwrap = pytest.mark.skipif(not SANDBOX, reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap")

# ---------------------------------------------------------------------------------------------- fast, in-process


def test_student_ids_from_lms_file_names():
    assert grade.student_of("lovelaceada_12345_67890_lesson.ipynb") == ("lovelaceada", "12345")
    assert grade.student_of("hopper_LATE_222_333_neural network (1).ipynb") == ("hopper", "222")
    assert grade.student_of("Ada Lovelace_98765_assignsubmission_file_") == ("Ada Lovelace", "98765")
    assert grade.student_of("ada.ipynb") == ("ada", "")
    assert grade.student_of("ben") == ("ben", "")


def test_points_equal_by_default_or_set_per_exercise(tmp_path):
    exercises = {1: None, 2: None, 3: None}
    assert grade.parse_points(None, exercises) == {1: 1, 2: 1, 3: 1}
    assert grade.parse_points("2", exercises) == {1: 2, 2: 2, 3: 2}
    assert grade.parse_points("2=3, 3=0.5", exercises) == {1: 1, 2: 3, 3: 0.5}
    (tmp_path / "points.txt").write_text("# points per exercise\n1 = 4\n3=2  # the hard one\n")
    assert grade.parse_points(str(tmp_path / "points.txt"), exercises) == {1: 4, 2: 1, 3: 2}
    with pytest.raises(SystemExit, match="exercise 7"):
        grade.parse_points("7=1", exercises)


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "not valid JSON"),
        ('{"1": {"public": {"x": NaN}}}', "NaN"),
        ('{"1": {"public": {"x": {"__ndarray__": [1, 2], "dtype": "float64", "shape": [3]}}}}', "does not match"),
        ('{"1": {"public": {"x": {"__ndarray__": ["1"], "dtype": "float64", "shape": [1]}}}}', "not numbers"),
        ('{"1": {"public": {"x": {"__ndarray__": [1], "dtype": "object", "shape": [1]}}}}', "dtype"),
        ('{"one": {"public": {}}}', "exercise numbers"),
        ('{"1": {"verdict": "right"}}', "malformed"),
        ("[1, 2]", "exercise numbers"),
    ],
)
def test_values_file_is_read_strictly(tmp_path, text, why):
    (tmp_path / "values.json").write_text(text)
    with pytest.raises(judge.Garbled, match=why):
        judge.load_values(tmp_path / "values.json")


def test_values_travel_as_data_and_come_back_the_same(tmp_path):
    import collect

    values = {
        "runs": [{"result": np.array([[1.5, np.inf], [np.nan, -0.0]], dtype=np.float32)}, {"error": "TypeError: x"}],
        "flags": np.array([True, False]),
        "n": np.int64(3),
        "x": float("-inf"),
        "shapes": (1, (2, 3)),
        "odd": object(),
    }
    (tmp_path / "values.json").write_text(json.dumps({"4": {"defined": True, "public": collect.encode(values)}}))
    back = judge.load_values(tmp_path / "values.json")[4]["public"]
    got = back["runs"][0]["result"]
    assert got.dtype == np.float32 and got.shape == (2, 2)
    np.testing.assert_array_equal(got, values["runs"][0]["result"])
    assert back["flags"].dtype == bool and back["n"] == 3 and back["x"] == -np.inf
    assert back["shapes"] == [1, [2, 3]] and back["odd"] == {"__unencodable__": "object"}


def test_regrading_replaces_the_students_rows_in_place(tmp_path):
    path = tmp_path / "grades.csv"
    columns = ["student", "x"]
    grade.write_csv(path, columns, [["ada", "1"], ["ben", "1"], ["ben", "2"], ["cy", "1"]])
    merged = grade.merge_rows(path, columns, [["ben", "9"]], {"ben"}, update=True)
    assert merged == [["ada", "1"], ["ben", "9"], ["cy", "1"]]
    assert grade.merge_rows(path, columns, [["dee", "1"]], {"dee"}, update=True)[-1] == ["dee", "1"]
    assert grade.merge_rows(path, columns, [["ben", "9"]], {"ben"}, update=False) == [["ben", "9"]]


def test_grader_refuses_without_bubblewrap_unless_told(tmp_path, monkeypatch):
    monkeypatch.setattr(grade.sandbox, "bwrap_path", lambda: None)
    with pytest.raises(SystemExit, match="bubblewrap is not installed.*--no-sandbox"):
        grade.main([str(tmp_path), "-o", str(tmp_path / "grades.csv")])


def test_restored_checks_go_back_where_they_were(tmp_path):
    """Deleting several check cells: each is put back before its own learner's cell, nothing is overwritten."""
    master = synthetic_master()
    edition = se.build(master)
    nb = answered(edition, SOLUTIONS)
    ex = se.find_exercises(nb)
    for n in (3, 2, 1):
        del nb.cells[ex[n].check]
    nbformat.write(nb, tmp_path / "s.ipynb")
    prepared = grade.prepare(tmp_path / "s.ipynb", edition, grade.SMALL_SETTINGS)
    cells = prepared.nb.cells
    got = se.find_exercises(prepared.nb)
    for n in (1, 2, 3):
        assert got[n].check == got[n].answer - 1, n
        assert se.source(cells[got[n].check]) == se.source(edition.cells[ex[n].check])
    sources = [se.source(c) for c in cells]
    for cell in answered(edition, SOLUTIONS).cells:  # every cell is still there (plus the injected settings)
        assert se.source(cell) in sources
    assert len(cells) == len(edition.cells) + 1


def test_not_gradable_files_say_why(tmp_path):
    edition = se.build(synthetic_master())
    (tmp_path / "lesson.py").write_text("# %%\nprint(1)\n")
    (tmp_path / "lesson.html").write_text("<html></html>")
    for name, words in [("lesson.py", "a Python script"), ("lesson.html", "an HTML export")]:
        with pytest.raises(grade.NotGradable, match=f"^{words}.*hand in the .ipynb file"):
            grade.prepare(tmp_path / name, edition, {})


def test_without_the_sandbox_it_grades_and_says_loudly_what_is_not_isolated(tmp_path):
    master = synthetic_master()
    nbformat.write(master, tmp_path / "master.ipynb")
    (tmp_path / "hidden.py").write_text(HIDDEN_TESTS)
    nbformat.write(answered(se.build(master), {1: SOLUTIONS[1]}), tmp_path / "ada.ipynb")
    result = run_grader(
        tmp_path / "ada.ipynb", "-o", tmp_path / "grades.csv", "--no-sandbox", *options_for(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING: --no-sandbox: each submission runs as your user, with your network" in result.stderr
    grades = by_student(read_csv(tmp_path / "grades.csv"))
    assert [grades["ada", n]["status"] for n in "123"] == ["right", "not attempted", "not attempted"]


# ---------------------------------------------------------------------------------------------- a class, sandboxed


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("small")
    master = synthetic_master()
    nbformat.write(master, tmp / "master.ipynb")
    (tmp / "hidden.py").write_text(HIDDEN_TESTS)
    return tmp, master, se.build(master)


def options_for(tmp):
    """The synthetic master, its hidden tests and a teacher's secret (made once, in the test's folder)."""
    secret = tmp / "teacher-secret.txt"
    if not secret.exists():
        grade.make_secret(secret)
    return ["--master", tmp / "master.ipynb", "--hidden-tests", tmp / "hidden.py", "--data-dir", ROOT / "data"] + [
        "--secret",
        secret,
    ]


@pytest.fixture(scope="module")
def messy_class(small):
    """A class laid out as LMS exports have it, with the messy notebooks teachers get, graded with points."""
    tmp, master, edition = small
    ex = se.find_exercises(edition)
    folder = tmp / "class"
    folder.mkdir()

    def put(relative, nb):
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / relative)

    put("ada/lesson.ipynb", answered(edition, SOLUTIONS))  # a folder per student, any notebook name
    nb = answered(edition, SOLUTIONS)  # the three check cells deleted
    for n in (3, 2, 1):
        del nb.cells[ex[n].check]
    put("ben/submission/student (2).ipynb", nb)
    nb = answered(edition, {1: "def my_double(x):\n    return x + 1", 2: "threshold = 3"})  # a wrong first try ...
    at = ex[1].answer + 1  # ... and the right answer in a new cell below it: Run all says right
    nb.cells.insert(at, nbformat.v4.new_code_cell('def my_double(x):\n    return 2 * x\n\n\nprint("fixed")'))
    put("cleo_7_8_lesson.ipynb", nb)
    nb = answered(edition, SOLUTIONS)  # re-saved by a front end: no tags, no ids, no outputs; a cell moved
    nb.nbformat_minor = 4
    for cell in nb.cells:
        cell.metadata = {}
        del cell["id"]
    nb.cells.append(nb.cells.pop(ex[3].answer))
    (folder / "dev").mkdir()
    (folder / "dev" / "dev.ipynb").write_text(json.dumps(nb))
    put("lovelaceeve_12345_67890_lesson.ipynb", answered(edition, {1: "def my_double(x):\n    return x + 1"}))
    put("fay.ipynb", answered(edition, {2: SOLUTIONS[2]}))  # exercise 2 right while exercise 1 is not attempted
    (folder / "gus.py").write_text("# %%\ndef my_double(x):\n    return 2 * x\n")
    (folder / "hal").mkdir()  # a folder with no notebook
    (folder / "hal" / "notes.txt").write_text("I forgot")
    (folder / "hal" / "more.txt").write_text("really")

    out = tmp / "out" / "grades.csv"
    start = time.monotonic()
    result = run_grader(
        folder,
        "-o",
        out,
        "--points",
        "1=2,3=3",
        "--jobs",
        "2",
        "--executed",
        tmp / "executed",
        *options_for(tmp),
        cwd=tmp,
    )
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    return tmp, out, result, seconds


@needs_bwrap
def test_messy_submissions_get_the_grade_a_teacher_expects(messy_class):
    tmp, out, result, seconds = messy_class
    grades = by_student(read_csv(out))
    status = {key: row["status"] for key, row in grades.items()}
    expected = {
        "ada": ["right", "right", "right"],  # a folder per student
        "ben": ["right", "right", "right"],  # its check cells deleted: restored where they were
        "cleo": ["right", "wrong", "not attempted"],  # the last definition counts; LMS name
        "dev": ["right", "right", "right"],  # metadata and outputs stripped, a cell moved
        "lovelaceeve": ["wrong", "not attempted", "not attempted"],
        "fay": ["not attempted", "right", "not attempted"],
    }
    for student, statuses in expected.items():
        assert [status[student, str(n)] for n in (1, 2, 3)] == statuses, (student, result.stdout)
    detail = {key: row["detail"] for key, row in grades.items()}
    assert detail["lovelaceeve", "1"] == "my_double(0) returned 1.0, expected 0 (that is x + 1)"
    assert detail["ada", "1"] == "matches for 4 numbers (and right on 4 hidden cases)"
    assert grades["lovelaceeve", "1"]["id"] == "12345" and grades["cleo", "1"]["id"] == "7"
    # not gradable, with why: a .py export, a folder without a notebook (and a warning on stderr)
    assert status["gus", "all"] == "not gradable" and detail["gus", "all"].startswith("a Python script")
    assert status["hal", "all"] == "not gradable"
    assert detail["hal", "all"].startswith("no notebook in the folder hal/ (more.txt, notes.txt)")
    assert "warning: hal/: no notebook in the folder hal/" in result.stderr
    # the demonstration waits, and says for which exercise; the grade of exercise 2 does not
    assert "cells skipped while waiting for your double (exercise 1)" in detail["fay", "total"]
    executed = nbformat.read(tmp / "executed" / "fay.ipynb", as_version=4)
    demo = next(c for c in executed.cells if "demonstration" in c.source)
    assert text_of(demo).startswith("Skipped: this cell needs your double (exercise 1), which is not right yet.")
    # small settings, files in the sandbox's scratch folder, the data read-only at /data
    printed = "".join(text_of(c) for c in executed.cells)
    assert "settings: 1 /data model.npz False" in printed
    print(result.stdout, f"\n{seconds:.0f} s")


@needs_bwrap
def test_points_gradebook_and_feedback(messy_class):
    tmp, out, result, _ = messy_class
    grades = by_student(read_csv(out))
    assert grades["ada", "total"]["points"] == "6" and grades["ada", "total"]["status"] == "3/3 right"
    assert grades["cleo", "total"]["points"] == "2" and grades["fay", "total"]["points"] == "1"
    book = {r["student"]: r for r in read_csv(out.with_name("gradebook.csv"))}
    exercise_columns = ["exercise 1", "exercise 2", "exercise 3"]
    assert list(book["ada"]) == ["student", "id", "late", *exercise_columns, "total", "max", "note"]
    assert [book["cleo"][k] for k in ("id", "exercise 1", "exercise 2", "exercise 3", "total", "max")] == [
        "7",
        "2",
        "0",
        "0",
        "2",
        "6",
    ]
    assert book["gus"]["total"] == "0" and book["gus"]["note"].startswith("not gradable: a Python script")
    assert len(book) == 8
    assert re.search(r"^ada +R +R +R +6/6 ", result.stdout, re.M), result.stdout
    feedback = (out.parent / "feedback" / "lovelaceeve.txt").read_text()
    assert "Points: 0 of 6 (0/3 right)" in feedback
    assert "Exercise 1: doubling (0/2 points)\n  wrong: my_double(0) returned 1.0, expected 0 (that" in feedback
    everything = "".join(p.read_text() for p in (out.parent / "feedback").iterdir())
    for solution in SOLUTIONS.values():  # no reference code in any feedback file
        assert solution.splitlines()[-1].strip() not in everything
    assert sorted({p.stem for p in (out.parent / "feedback").iterdir()}) == sorted(book)  # a .txt and a .html each


@needs_bwrap
def test_regrading_one_student_updates_the_class_csvs(messy_class, small):
    tmp, out, _, _ = messy_class
    _, _, edition = small
    before = read_csv(out)
    book_before = read_csv(out.with_name("gradebook.csv"))
    fixed = tmp / "regrade" / "lovelaceeve_12345_67891_lesson.ipynb"  # a new upload, fixed
    fixed.parent.mkdir()
    nbformat.write(answered(edition, SOLUTIONS), fixed)
    result = run_grader(fixed, "-o", out, "--points", "1=2,3=3", *options_for(tmp), cwd=tmp)
    assert result.returncode == 0, result.stderr
    after = read_csv(out)
    assert len(after) == len(before)
    assert [r for r in after if r["student"] != "lovelaceeve"] == [r for r in before if r["student"] != "lovelaceeve"]
    assert [r["status"] for r in after if r["student"] == "lovelaceeve"] == ["right"] * 3 + ["3/3 right"]
    assert [r["student"] for r in after] == [r["student"] for r in before]  # in its place
    book = read_csv(out.with_name("gradebook.csv"))
    assert [r["student"] for r in book] == [r["student"] for r in book_before]
    assert next(r for r in book if r["student"] == "lovelaceeve")["total"] == "6"
    # --only: one student of the class folder
    result = run_grader(tmp / "class", "-o", out, "--only", "cleo", "--points", "1=2,3=3", *options_for(tmp), cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert len(read_csv(out)) == len(before) and "updated" in result.stdout


# ---------------------------------------------------------------------------------------------- cheats and isolation

CHEATS = {
    # a check and its helper redefined to say right
    "redefines": "def run_check(number, values, verdict, attempt):\n"
    '    print(f"Exercise {number}: right: trust me")\n    EXERCISE_RESULTS[number] = True\n    return True\n\n\n'
    'def verdict_1(values, cases=None):\n    return "right", "trust me"\n\n\n'
    'def values_1(answer, cases=None):\n    return {"runs": [{"result": 0.0}, {"result": 2.0}, {"result": 5.0}, '
    '{"result": -6.0}]}\n\n\ndef check_double(attempt):\n    print("Exercise 1: right: yes")\n\n\n'
    "def my_double(x):\n    return x + 1",
    # NumPy's comparisons patched to say equal
    "patches_numpy": "np.isclose = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n"
    "np.array_equal = lambda *a, **k: True\n\n\ndef my_double(x):\n    return x + 1",
    # print rewritten so that every line says right
    "rewrites_print": "import builtins\n\n_print = builtins.print\n"
    'builtins.print = lambda *a, **k: _print("Exercise 1: right: of course")\n\n\n'
    "def my_double(x):\n    return x + 1",
    # a verdict line printed, then the process ends before anything else can run
    "prints_and_exits": 'print("Exercise 1: right: matches")\nimport os\n\nos._exit(0)',
    # a thread that keeps overwriting the grader's values files with the public cases' right values
    "forges_values": "import glob, json, threading, time\n\n\ndef forge():\n    while True:\n"
    '        for path in glob.glob(os.path.expanduser("~/.grader-*.json")):\n'
    '            runs = [{"result": v} for v in (0.0, 2.0, 5.0, -6.0)]\n'
    '            json.dump({"1": {"defined": True, "public": {"runs": runs}}}, open(path, "w"))\n'
    "        time.sleep(0.001)\n\n\nthreading.Thread(target=forge, daemon=True).start()\n\n\n"
    "def my_double(x):\n    return x + 1",
}


@pytest.fixture(scope="module")
def cheats_and_escapes(small):
    """Cheating submissions and ones that try to leave their sandbox, with two honest ones, graded as a class."""
    tmp, master, edition = small
    folder = tmp / "cheats"
    folder.mkdir()
    out = tmp / "cheats-out" / "grades.csv"
    out.parent.mkdir()
    (out.parent / "grades.csv").write_text("student\n")
    for name, code in CHEATS.items():
        nbformat.write(answered(edition, {1: code}), folder / f"{name}.ipynb")
    # into the grader's output: each would make exercise 2 right if it could write there
    grab = f"threshold = None\nopen({str(out)!r}, 'w').write('student,exercise\\nwrites_output,1,right')"
    nbformat.write(answered(edition, {2: grab}), folder / "writes_output.ipynb")
    # each escape makes exercise 2 right if it works (threshold = 100), and leaves it "wrong" (3) if refused
    secret = tmp / "secret.txt"
    secret.write_text("the answers")
    escapes = {
        "reads_master": f"threshold = 100 if open({str(tmp / 'master.ipynb')!r}).read() else 3",
        "reads_repository": f"threshold = 100 if open({str(ROOT / 'README.md')!r}).read() else 3",
        "reads_a_file": f"threshold = 100 if open({str(secret)!r}).read() else 3",
        "reads_classmates": f"threshold = 100 if os.listdir({str(folder)!r}) else 3",
        "connects": "import socket\n\nthreshold = 100 if socket.create_connection(('pypi.org', 443), timeout=5) else 3",
        "reads_env": 'threshold = int(os.environ.get("TEACHER_SECRET", 3))',
        "pip_into_env": "import pathlib\n\n"
        "threshold = 100 if pathlib.Path(np.__file__).with_name('x.py').write_text('') is not None else 3",
    }
    for name, code in escapes.items():
        nb = answered(
            edition,
            {
                1: SOLUTIONS[1],
                2: f"threshold = 3\ntry:\n    {code.replace(chr(10), chr(10) + '    ')}"
                f"\nexcept Exception as e:\n    print('refused:', type(e).__name__, e)",
            },
        )
        nbformat.write(nb, folder / f"{name}.ipynb")
    hog = answered(edition, {1: SOLUTIONS[1], 2: "threshold = 11\nhog = np.ones((50_000, 100_000))  # 40 GB"})
    nbformat.write(hog, folder / "allocates.ipynb")
    nbformat.write(answered(edition, SOLUTIONS), folder / "honest.ipynb")
    result = run_grader(
        folder,
        "-o",
        out,
        "--jobs",
        "2",
        "--executed",
        tmp / "cheats-executed",
        *options_for(tmp),
        cwd=tmp,
        env={"TEACHER_SECRET": "100"},
    )
    assert result.returncode == 0, result.stderr
    return tmp, out, result, escapes, secret


@needs_bwrap
def test_no_cheat_gets_right(cheats_and_escapes):
    tmp, out, result, _, _ = cheats_and_escapes
    grades = by_student(read_csv(out))
    for name in CHEATS:
        assert grades[name, "1"]["status"] != "right", (name, grades[name, "1"])
    assert grades["redefines", "1"]["status"] == "wrong"  # judged on the learner's function, by the master's check
    assert grades["patches_numpy", "1"]["status"] == "wrong"
    assert grades["rewrites_print", "1"]["status"] == "wrong"
    assert grades["prints_and_exits", "1"]["status"] == "did not run"
    assert grades["prints_and_exits", "1"]["detail"].startswith("the kernel died in the cell starting")
    assert grades["forges_values", "1"]["status"] != "right"
    assert grades["writes_output", "2"]["status"] == "not attempted"
    assert ("writes_output", "1") in grades and grades["writes_output", "1"]["status"] == "not attempted"
    executed = nbformat.read(tmp / "cheats-executed" / "writes_output.ipynb", as_version=4)
    assert "No such file or directory" in "".join(text_of(c) for c in executed.cells)


@needs_bwrap
def test_isolation_refuses_escapes_and_grades_the_rest(cheats_and_escapes):
    tmp, out, result, escapes, secret = cheats_and_escapes
    grades = by_student(read_csv(out))
    for name in escapes:
        assert grades[name, "1"]["status"] == "right", (name, grades[name, "1"])  # graded as usual
        assert (grades[name, "2"]["status"], grades[name, "2"]["detail"]) == ("wrong", "3 is not above 8: try more"), (
            name
        )
        executed = nbformat.read(tmp / "cheats-executed" / f"{name}.ipynb", as_version=4)
        assert "refused:" in "".join(text_of(c) for c in executed.cells) or name == "reads_env", name
    assert grades["allocates", "1"]["status"] == "right" and grades["allocates", "2"]["status"] == "right"
    executed = nbformat.read(tmp / "cheats-executed" / "allocates.ipynb", as_version=4)
    assert "MemoryError" in "".join(text_of(c) for c in executed.cells)
    assert [grades["honest", str(n)]["status"] for n in (1, 2, 3)] == ["right"] * 3
    assert not (Path(np.__file__).parent / "x.py").exists() and secret.read_text() == "the answers"


# ---------------------------------------------------------------------------------------------- accidents


@pytest.fixture(scope="module")
def accidents(small):
    """Notebooks that loop, ignore the interrupt (and start a process of their own to outlive the run), or end
    their kernel; files that are no notebook of this lesson."""
    tmp, master, edition = small
    ex = se.find_exercises(edition)
    folder = tmp / "accidents"
    folder.mkdir()
    marker = f"outlives-{os.getpid()}-{time.time_ns()}"
    nb = answered(edition, SOLUTIONS)
    nb.cells.insert(ex[2].answer + 1, nbformat.v4.new_code_cell("while True:\n    pass"))
    nbformat.write(nb, folder / "loops.ipynb")
    stubborn = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {marker}'],\n"
        "                 start_new_session=True)\n"
        "while True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass"
    )
    nb = answered(edition, SOLUTIONS)
    nb.cells.insert(ex[2].answer + 1, nbformat.v4.new_code_cell(stubborn))
    nbformat.write(nb, folder / "stubborn.ipynb")
    nb = answered(edition, SOLUTIONS)
    nb.cells.insert(ex[1].answer + 1, nbformat.v4.new_code_cell("import os\n\nos._exit(1)"))
    nbformat.write(nb, folder / "dies.ipynb")
    (folder / "corrupt.ipynb").write_text(nbformat.writes(edition)[:500])
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), folder / "other.ipynb")
    (folder / "essay.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / ".DS_Store").write_bytes(b"\0")
    out = tmp / "accidents-out" / "grades.csv"
    limits = ["--cell-timeout", "3", "--notebook-timeout", "20", "--jobs", "2"]
    result = run_grader(
        folder, "-o", out, *limits, "--executed", tmp / "accidents-executed", *options_for(tmp), cwd=tmp
    )
    assert result.returncode == 0, result.stderr
    return tmp, out, result, marker


@needs_bwrap
def test_time_limits_dead_kernels_and_files_that_are_no_notebook(accidents):
    tmp, out, result, marker = accidents
    grades = by_student(read_csv(out))
    status = {key: row["status"] for key, row in grades.items()}
    detail = {key: row["detail"] for key, row in grades.items()}
    assert [status["loops", str(n)] for n in (1, 2, 3)] == ["right"] * 3  # interrupted at 3 s, the rest graded
    assert detail["loops", "total"] == "a cell ran over the 3 s limit (interrupted) 'while True:'"
    assert [status["stubborn", str(n)] for n in (1, 2, 3)] == ["did not run"] * 3
    assert detail["stubborn", "1"].startswith("the notebook time limit (20 s) passed while the cell starting 'import")
    processes = [p for p in os.listdir("/proc") if p.isdigit()]
    outliving = []
    for pid in processes:
        try:
            if marker in open(f"/proc/{pid}/cmdline").read():
                outliving.append(pid)
        except OSError:
            pass
    assert not outliving, "a process the submission started in a session of its own outlived the sandbox"
    assert [status["dies", str(n)] for n in (1, 2, 3)] == ["did not run"] * 3
    assert detail["dies", "1"].startswith("the kernel died in the cell starting 'import os'")
    assert status["corrupt", "all"] == "not gradable" and "not valid JSON" in detail["corrupt", "all"]
    assert status["essay", "all"] == "not gradable" and detail["essay", "all"].startswith("a PDF, not the notebook")
    assert status["other", "all"] == "not gradable" and detail["other", "all"].startswith("a different notebook")
    assert {key[0] for key in grades} == {"loops", "stubborn", "dies", "corrupt", "other", "essay"}


# ---------------------------------------------------------------------------------------------- the real notebook


@pytest.fixture(scope="module")
def real():
    master = nbformat.read(NOTEBOOK, as_version=4)
    return master, se.build(master)


def copy_of_result(result):
    return None if result is None else copy.deepcopy(result)


def test_hidden_tests_pass_the_masters_solutions_and_catch_answers_that_only_know_the_public_cases(real):
    """In-process: for each exercise with hidden tests, the master's solution is right on them, and a function that
    looks the public cases' expected results up (right on the notebook's cases) is wrong on the hidden ones."""
    import collect
    import hidden_tests

    master, _ = real
    checks = judge.MasterChecks(master)
    exercises = se.find_exercises(master)
    with_hidden = caught = 0
    for n, check in checks.checks.items():
        cases = hidden_tests.hidden_cases(check.answer_name, np.random.default_rng(n))
        if not cases:
            continue
        with_hidden += 1
        namespace = checks.namespace(n)
        solution = {"np": np}
        exec(se.solution_code(master, exercises[n]), solution)
        inputs = collect.decode(
            json.loads(json.dumps(collect.encode([{k: v for k, v in c.items() if k != "expected"} for c in cases])))
        )
        assert checks.verdict(n, namespace[f"values_{n}"](solution[check.answer_name], inputs), cases)[0] == "right", n
        public = namespace[f"cases_{n}"]()
        names = [k for k in public[0] if k != "expected"]
        if any(set(c) != set(public[0]) for c in public):
            continue  # cases with optional inputs: no simple lookup

        count = len(names)

        def key(*args, count=count):
            return repr([np.asarray(a).tolist() for a in args[:count]])

        table = {key(*[c[k] for k in names]): c["expected"] for c in public}

        def lookup(*args, table=table):
            return copy_of_result(table.get(key(*args)))

        values = namespace[f"values_{n}"](lookup)
        if checks.verdict(n, values)[0] != "right":
            continue  # this exercise's public cases check more than results (e.g. in-place updates)
        status, reason = checks.verdict(n, namespace[f"values_{n}"](lookup, inputs), cases)
        assert status != "right", (n, reason)
        caught += 1
    assert with_hidden >= 6 and caught >= 4, (with_hidden, caught)


# a typical wrong answer per exercise, from test_exercises.py's table (a function's name, or the index of a value):
# self-contained functions only, since a wrong answer that calls the notebook's softmax would test that softmax
WRONG_PICKS = {
    "my_one_hot": "one_hot_whole_columns",
    "my_softmax": "softmax_naive",
    "predicted_shapes": 0,
    "my_cross_entropy": "cross_entropy_sum",
    "dW1_11": 0,
    "my_numerical_gradient": "numerical_gradient_one_sided",
    "first_wrong": 0,
    "lr_predictions": 0,
    "my_momentum_update": "momentum_averaged",
}


def typical_wrong_answers(exercises):
    """{n: (code, the words its verdict must contain)} for the exercises in WRONG_PICKS."""
    from test_exercises import WRONG

    picks = {}
    for n, ex in exercises.items():
        pick = WRONG_PICKS.get(ex.learner_name)
        for i, (answer, reason) in enumerate(WRONG.get(ex.learner_name, [])):
            if callable(answer) and getattr(answer, "__name__", None) == pick:
                picks[n] = (inspect.getsource(answer) + f"\n\n{ex.learner_name} = {answer.__name__}", reason)
            elif not callable(answer) and i == pick:
                picks[n] = (f"{ex.learner_name} = {answer!r}", reason)
    assert len(picks) == len(WRONG_PICKS), "test_exercises.WRONG changed: update WRONG_PICKS"
    return picks


REAL_CELL_TIMEOUT = 30  # seconds: well above the slowest cell of a graded run; the loop costs this much


@pytest.fixture(scope="module")
def real_class(real, tmp_path_factory):
    """A class of the real notebook, graded end to end as a teacher would: (expected, grades, stdout, seconds)."""
    master, edition = real
    tmp = tmp_path_factory.mktemp("real")
    folder = tmp / "submissions"
    folder.mkdir()
    ex = se.find_exercises(edition)
    right = {n: se.solution_code(master, e) for n, e in se.find_exercises(master).items()}
    numbers = list(ex)
    expected = {}
    nbformat.write(answered(master, right), folder / "ada.ipynb")  # the master with its solutions filled in
    expected["ada"] = dict.fromkeys(numbers, "right")
    nbformat.write(edition, folder / "ben.ipynb")  # the edition untouched
    expected["ben"] = dict.fromkeys(numbers, "not attempted")
    slips = typical_wrong_answers(ex)
    nbformat.write(answered(edition, {n: code for n, (code, _) in slips.items()}), folder / "cleo.ipynb")
    expected["cleo"] = {n: "wrong" if n in slips else "not attempted" for n in numbers}
    # every answer right, the check cells of exercises 1-3 deleted, a wrong first try of exercise 2 with the right
    # answer in a new cell below it, in a folder of its own with an LMS file name
    nb = answered(edition, {**right, 2: slips[2][0]})
    nb.cells.insert(ex[2].answer + 1, nbformat.v4.new_code_cell(right[2]))
    for n in (3, 2, 1):
        del nb.cells[ex[n].check]
    (folder / "dev").mkdir()
    nbformat.write(nb, folder / "dev" / "devdan_4242_777_neural_network_from_scratch.ipynb")
    expected["dev"] = dict.fromkeys(numbers, "right")
    # exercise 1 wrong, exercises 3, 6, 8 and 9 right: those are graded right; the demonstration after 9 waits
    values = [n for n in numbers if not ex[n].function_name]
    nb = answered(edition, {1: slips[1][0], **{n: right[n] for n in values}})
    nbformat.write(nb, folder / "eve.ipynb")
    expected["eve"] = {n: "wrong" if n == 1 else "right" if n in values else "not attempted" for n in numbers}
    # a cell that never ends, after exercises 1 and 2 right
    nb = answered(edition, {1: right[1], 2: right[2]})
    nb.cells.insert(ex[2].answer + 1, nbformat.v4.new_code_cell("while True:\n    pass"))
    nbformat.write(nb, folder / "fay.ipynb")
    expected["fay"] = {n: "right" if n in (1, 2) else "not attempted" for n in numbers}
    (folder / "gus.py").write_text("# %%\nprint('a .py export')\n")
    expected["gus"] = {"all": "not gradable"}

    out = tmp / "grades.csv"
    limits = ["--cell-timeout", str(REAL_CELL_TIMEOUT), "--notebook-timeout", "400", "--jobs", "2"]
    start = time.monotonic()
    grade.make_secret(tmp / "teacher-secret.txt")
    secret = ["--secret", tmp / "teacher-secret.txt"]
    result = run_grader(folder, "-o", out, *limits, "--executed", tmp / "executed", *secret, cwd=tmp)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    return expected, by_student(read_csv(out)), result, seconds, tmp, slips


@needs_bwrap
def test_a_class_of_the_real_notebook_gets_the_grades_a_teacher_expects(real_class):
    expected, grades, result, seconds, tmp, slips = real_class
    print(result.stdout, f"\n{seconds:.0f} s in all")
    table = []
    for student, want in expected.items():
        got = {n: grades[student, str(n)]["status"] for n in want}
        table.append((student, want == got, got))
    assert all(same for _, same, _ in table), [t for t in table if not t[1]]
    for n, (_, reason) in slips.items():  # the checks' own diagnoses, made outside the kernel
        assert reason in grades["cleo", str(n)]["detail"], grades["cleo", str(n)]
    assert grades["dev", "1"]["id"] == "4242"
    assert "cells skipped while waiting for your one_hot (exercise 1)" in grades["eve", "total"]["detail"]
    assert "ran over the 30 s limit (interrupted) 'while True:'" in grades["fay", "total"]["detail"]
    executed = nbformat.read(tmp / "executed" / "eve.ipynb", as_version=4)
    nine = se.find_exercises(executed)[9]
    after = [text_of(c) for c in executed.cells[nine.answer + 1 :] if c.cell_type == "code"]
    assert after[0].startswith("Skipped: this cell needs your one_hot (exercise 1), which is not right yet."), after[0]
    book = {r["student"]: r for r in read_csv(tmp / "gradebook.csv")}
    assert book["ada"]["total"] == book["ada"]["max"] == str(len(expected["ada"]))
    assert (tmp / "feedback" / "cleo.txt").exists()
