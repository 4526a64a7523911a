"""The teacher's tools (teacher/): the student edition holds no solution and runs on the student's own functions,
skipping, and saying so, the cells that need an exercise not right yet; the grader grades a folder of submissions,
each in its own kernel and scratch folder with time limits, as far as each got.

Two notebooks: a small synthetic master with the exercise conventions (fast: the mechanisms, in a real kernel),
and the real notebook (the edition run alone with the data only in kagglehub's cache, and one grading run of a
folder with every kind of submission).
"""

import csv
import gzip
import inspect
import itertools
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime

import nbformat
import pytest

from kagglehub_layout import cached_dataset_folder
from notebook_module import NOTEBOOK, ROOT, is_collapsed

sys.path.insert(0, str(ROOT / "teacher"))
import student_edition as se  # noqa: E402

SKIPPED = re.compile(r"^Skipped: this cell needs your (\w+) \(exercise (\d+)\), which is not right yet\. ", re.M)
FOLDED = {"cellView": "form", "jupyter": {"source_hidden": True}}

# ---------------------------------------------------------------------------------------------- a synthetic master

HELPER = '''# @title Helper shared by the exercise checks (run it; no need to read it)
EXERCISE_RESULTS = {}  # exercise number -> True (right), False (wrong) or None (not attempted yet)


class NotAttempted(Exception):
    """The learner's cell still returns None."""


class WrongAnswer(Exception):
    """The learner's answer is wrong; the message says why."""


def run_check(number, check, attempt):
    """Print one verdict line for exercise `number`, record it in EXERCISE_RESULTS and return it."""

    def answer(*args, **kwargs):
        result = attempt(*args, **kwargs)
        if result is None:
            raise NotAttempted
        return result

    try:
        if attempt is None:
            raise NotAttempted
        verified = check(answer if callable(attempt) else attempt)
    except NotAttempted:
        print(f"Exercise {number}: not attempted yet (write your code in place of None)")
        EXERCISE_RESULTS[number] = None
        return None
    except WrongAnswer as e:
        print(f"Exercise {number}: wrong: {e}")
        EXERCISE_RESULTS[number] = False
        return False
    print(f"Exercise {number}: right: {verified}")
    EXERCISE_RESULTS[number] = True
    return True'''


def function_check(n, name, want, slip):
    """Exercise n's check: my_<name>(x) must equal `want` (an expression in x); `slip` is a typical mistake."""
    return f'''# @title Check for exercise {n}: my_{name} on a few numbers
def check_{name}(attempt):
    """Exercise {n}: compare my_{name}(x) with {want}."""

    def check(my_{name}):
        for x in (0, 1, 2.5, -3):
            got = my_{name}(x)
            if got != {want} and got == {slip}:
                raise WrongAnswer(f"my_{name}({{x}}) returned {{got}}: that is {slip}, not {want}")
            if got != {want}:
                raise WrongAnswer(f"my_{name}({{x}}) returned {{got}}, expected {{{want}}}")
        return "matches {want} for x = 0, 1, 2.5 and -3"

    return run_check({n}, check, attempt)'''


def exercise_cells(n, title, task, check, stub, solution):
    """Exercise n's four cells (task, folded check, learner's cell, solution), with their markers."""
    cells = [
        nbformat.v4.new_markdown_cell(
            f"**Exercise {n}: {title}.** {task}\n\n<details><summary>Hint</summary>\n\n*Hint:* think.\n\n</details>"
        ),
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(stub),
        nbformat.v4.new_markdown_cell(
            f"<details><summary>Solution to exercise {n}</summary>\n\n```python\n{solution}\n```\n\n"
            "Why it works.\n\n</details>"
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


def synthetic_master():
    """A small master notebook with the exercise conventions: two functions with reference cells, and a value."""
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
        nbformat.v4.new_code_cell('print("settings:", EPOCHS, DATA_DIR, MODEL_PATH, RUN_GOING_FURTHER)'),
        nbformat.v4.new_markdown_cell("**Your turn: exercises.** Each check says right or wrong and why."),
        helper,
        *exercise_cells(
            1,
            "doubling",
            "Write `my_double(x)`: twice `x`.",
            function_check(1, "double", "2 * x", "x + 1"),
            'def my_double(x):\n    """Twice x."""\n    return None  # your code here\n\n\ncheck_double(my_double)',
            'def my_double(x):\n    """Twice x."""\n    doubled = x * 2  # the doubled value\n    return doubled',
        ),
        reference_cell(
            1,
            'def halve(x):\n    """Half of x."""\n    return x / 2\n\n\n'
            'def double(x):\n    """Twice x: the notebook\'s own version."""\n'
            "    doubled = x * 2  # the doubled value\n    return doubled\n\n\n"
            'print("double(21) =", double(21))',
        ),
        nbformat.v4.new_code_cell("%pip --version"),
        nbformat.v4.new_code_cell('value = double(halve(8))\nprint("value:", value)'),
        *exercise_cells(  # its cell reads `value`, made by a cell that needs exercise 1
            2,
            "a threshold",
            "Set `threshold` to a number above `value`.",
            "# @title Check for exercise 2: is threshold above value?\ndef check_threshold(attempt, bar):\n"
            '    """Exercise 2: right if the value is a number above bar."""\n\n    def check(threshold):\n'
            '        if threshold <= bar:\n            raise WrongAnswer(f"{threshold} is not above {bar}: try more")\n'
            '        return f"{threshold} is above {bar}"\n\n    return run_check(2, check, attempt)',
            "threshold = None  # your number here\n\ncheck_threshold(threshold, value)",
            "threshold = 11  # just above 8",
        ),
        *exercise_cells(
            3,
            "squares",
            "Write `my_square(x)`: `x` times `x`.",
            function_check(3, "square", "x * x", "2 * x"),
            'def my_square(x):\n    """x times x."""\n    return None  # your code here\n\n\ncheck_square(my_square)',
            'def my_square(x):\n    """x times x."""\n    squared = x * x  # x squared\n    return squared',
        ),
        reference_cell(
            3,
            'def square(x):\n    """x times x: the notebook\'s own version."""\n    squared = x * x  # x squared\n'
            '    return squared\n\n\nprint("square(value) =", square(value))',
        ),
        nbformat.v4.new_code_cell(  # named like a check, but not an exercise's: skipped like any other cell
            'def check_shapes(a):\n    """Not an exercise check."""\n    return a\n\n\n'
            'print("checked:", check_shapes(square(double(3))))'
        ),
        nbformat.v4.new_code_cell('print("the end")'),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


# ---------------------------------------------------------------------------------------------- helpers


def text_of(cell):
    """A cell's printed output (stdout) and errors, as one string."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"ERROR {output['ename']}: {output['evalue']}")
    return "".join(parts)


def copy_of(nb):
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def errors(nb):
    return [(i, text_of(c)) for i, c in enumerate(nb.cells) if "ERROR " in text_of(c)]


def answered(nb, code):
    """A copy of nb where the learner's cell of each exercise n in `code` runs code[n] just before its check's call."""
    nb = copy_of(nb)
    for n, ex in se.find_exercises(nb).items():
        if n in code:
            text = se.source(nb.cells[ex.answer])
            before = text[: text.rindex(ex.check_call)].rstrip()
            nb.cells[ex.answer].source = f"{before}\n\n{code[n]}\n\n{ex.check_call}"
    return nb


def solutions(master):
    """{n: the master's solution code} for every exercise."""
    return {n: se.solution_code(master, ex) for n, ex in se.find_exercises(master).items()}


def non_trivial_lines(code, stub):
    """The solution's lines that give something away: code (comments cut off), not in the stub, 12+ characters, and
    computing something (an operator or an assignment: `for k in params:` or `return params` give nothing away)."""
    stub_lines = {line.strip() for line in stub.splitlines()}
    lines = {line.split("#")[0].strip() for line in code.splitlines()}
    return {
        line
        for line in lines
        if len(line) >= 12 and line not in stub_lines and not line.startswith('"""') and re.search(r"[-+*/@=]", line)
    }


def check_edition(master, edition):
    """Everything a student edition must be, for any master."""
    mex, eex = se.find_exercises(master), se.find_exercises(edition)
    assert list(mex) == list(eex)
    everything = "\n".join(se.source(c) for c in edition.cells)
    assert not [c for c in edition.cells if "solution" in se.tags(c)]
    assert "Solution to exercise" not in everything
    where = {}  # line (code, comment cut off) -> the first edition cell holding it
    for i, cell in enumerate(edition.cells):
        for line in se.source(cell).splitlines():
            where.setdefault(line.split("#")[0].strip(), f"cell {i} ({se.source(cell).splitlines()[0][:60]})")
    for n, ex in mex.items():
        e = eex[n]
        for attr in ("task", "check", "answer"):  # the task with its hint, the check and the stub, unchanged
            assert se.source(edition.cells[getattr(e, attr)]) == se.source(master.cells[getattr(ex, attr)]), (n, attr)
        assert "<details><summary>Hint</summary>" in se.source(edition.cells[e.task])
        assert is_collapsed(edition.cells[e.check])
        leaked = non_trivial_lines(se.solution_code(master, ex), se.source(master.cells[ex.answer])) & set(where)
        assert not leaked, f"exercise {n}'s solution is in the student edition: {[(s, where[s]) for s in leaked]}"
        if ex.function_name:
            assert not re.search(rf"^\s*def {ex.function_name}\(", everything, re.M), ex.function_name
        for i in e.references:
            assert f"{ex.function_name} = {ex.learner_name}  # from here on" in se.source(edition.cells[i])
            assert f'require_exercise({n}, "{ex.function_name}")' in se.source(edition.cells[i])
    assert all(not c.get("outputs") and not c.get("execution_count") for c in edition.cells if c.cell_type == "code")
    assert "widgets" not in edition.metadata
    note = edition.cells[1]
    assert note.cell_type == "markdown" and "student edition" in note.source
    plumbing = next(c for c in edition.cells if c.get("id") == se.PLUMBING_ID)
    assert edition.cells.index(plumbing) == se.helper_index(edition) + 1
    assert plumbing.metadata["cellView"] == "form" and plumbing.metadata["jupyter"]["source_hidden"]
    nbformat.validate(edition)


def read_grades(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}


# ---------------------------------------------------------------------------------------------- the synthetic master


@pytest.fixture(scope="module")
def small():
    master = synthetic_master()
    return master, se.build(master)


def test_small_edition_has_no_solution_and_every_exercise(small):
    master, edition = small
    check_edition(master, edition)
    reference = se.source(edition.cells[se.find_exercises(edition)[1].references[0]])
    assert reference.startswith('def halve(x):\n    """Half of x."""\n    return x / 2\n\n\n')
    assert "double = my_double  # from here on the notebook runs your double (exercise 1)\n" in reference
    assert reference.endswith('require_exercise(1, "double")\n\n\nprint("double(21) =", double(21))')


def test_edition_needs_master_conventions():
    with pytest.raises(ValueError, match="no exercises"):
        se.build(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))


def test_small_edition_skips_what_needs_an_unfinished_exercise_and_unblocks_when_it_is_right(small, tmp_path):
    """In a real kernel: Run all, then fix exercise 1 and run on, then Run all again, then fix exercise 3."""
    from nbclient import NotebookClient

    _, edition = small
    nb = copy_of(edition)
    ex = se.find_exercises(nb)
    cells = nb.cells
    index = {name: i for i, c in enumerate(cells) for name in [se.source(c)] if name}
    pip = index["%pip --version"]
    end = index['print("the end")']
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})

    def run(first, last=None):
        for i in range(first, (last or len(cells) - 1) + 1):
            if cells[i].cell_type == "code":
                client.execute_cell(cells[i], i)

    with client.setup_kernel():
        run(0)  # Run all, nothing attempted
        assert not errors(nb)
        for n in (1, 3):
            assert f"Exercise {n}: not attempted yet" in text_of(cells[ex[n].answer])
        first_reference = ex[1].references[0]
        for i in range(first_reference, len(cells)):
            if cells[i].cell_type == "code" and "check" not in se.tags(cells[i]) and i != ex[3].answer:
                out = text_of(cells[i])  # exercise 2's cell too: it reads `value`, which a skipped cell makes
                assert out.count("\n") == 1 and SKIPPED.match(out).groups() == ("double", "1"), (i, out)
        setup = cells[index['import numpy as np\n\nprint("setup done")']]
        assert text_of(setup) == "setup done\n"

        # fix exercise 1 and run on from its cell: the notebook now runs the student's double, magics work
        cells[ex[1].answer].source = "def my_double(x):\n    return x + x\n\n\ncheck_double(my_double)"
        run(ex[1].answer)
        assert "Exercise 1: right" in text_of(cells[ex[1].answer])
        assert "double(21) = 42" in text_of(cells[first_reference])
        assert text_of(cells[pip]).startswith("pip ")  # %pip ran through the transformer untouched
        assert "value: 8.0" in text_of(cells[pip + 1])
        assert "Exercise 2: not attempted yet" in text_of(cells[ex[2].answer])
        assert SKIPPED.match(text_of(cells[ex[3].references[0]])).groups() == ("square", "3")
        assert SKIPPED.match(text_of(cells[end])).groups() == ("square", "3")

        run(0)  # Run all again (no restart): the cells above the first reference run, whatever the last run left
        assert not SKIPPED.search("".join(text_of(c) for c in cells[:first_reference]))
        assert "double(21) = 42" in text_of(cells[first_reference])
        assert SKIPPED.match(text_of(cells[end])).groups() == ("square", "3")

        # a wrong answer blocks as much as no answer; a right one unblocks
        cells[ex[3].answer].source = "def my_square(x):\n    return 2 * x\n\n\ncheck_square(my_square)"
        run(ex[3].answer)
        assert "Exercise 3: wrong: my_square(1) returned 2: that is 2 * x" in text_of(cells[ex[3].answer])
        assert SKIPPED.match(text_of(cells[end])).groups() == ("square", "3")
        cells[ex[3].answer].source = "def my_square(x):\n    return x**2\n\n\ncheck_square(my_square)"
        run(ex[3].answer)
        assert "square(value) = 64.0" in text_of(cells[ex[3].references[0]])
        assert "checked: 36" in text_of(cells[end - 1]) and "the end" in text_of(cells[end])
        assert not errors(nb)


# what the full notebook says of itself, which the edition must not say (the edition's own words, issue 21 §3)
FULL_NOTEBOOK_SAYS = re.compile(
    r"express path|folded solution|solution \(click|Solution to exercise|own version follows|notebook's (own )?version|"
    r"skipping one|loses nothing|notebook either way|Colab badge",
    re.I,
)
PUBLIC = "https://github.com/someone/lesson/blob/main/lesson.ipynb"
TITLE = (
    "# A tiny lesson\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/someone/lesson/blob/main/lesson.ipynb)\n"
    f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome?src={PUBLIC})"
    "\n\n| part | time |\n|---|---|\n| **1. All** | 2 hours; **express path about 1 hour** |\n\n"
    "**The express path (1 hour).** Do exercises 1 and 3.\nEverything else can wait: *Run all* runs the whole notebook "
    "either way.\n\n**How to read it.** Each idea gets a section. **Exercises** come *before* the notebook's own "
    "version of what they ask: try them first; each has a hint, a check, and a folded solution, and the notebook's "
    "own version follows, so skipping one loses nothing. Cells that only do plumbing are folded.\n\n"
    "**Run it** with `jupyter nbconvert --execute lesson.ipynb`."
)
YOUR_TURN = (
    "**Your turn: exercises.** Each comes *before* the notebook's own version: a task, a hint and a solution (click "
    "to open; try first). Then the notebook's own version follows, in plain view. Skipping one is fine: *Run all* "
    'still works, and its check just says "not attempted yet". The check cells are folded.'
)


def markdown_of(nb):
    return "\n\n".join(se.source(c) for c in nb.cells if c.cell_type == "markdown")


def links(text):
    return re.findall(r"\]\((https?://[^)\s]+)\)", text)


def test_small_edition_says_what_the_edition_does_and_its_badges_open_what_the_teacher_says(tmp_path):
    master = synthetic_master()
    master.cells[0].source, master.cells[4].source = TITLE, YOUR_TURN
    edition = se.build(master, name="student.ipynb")
    check_edition(master, edition)
    words = markdown_of(edition)
    assert not [link for link in links(words) if "colab.research.google.com/github" in link or "kaggle.com" in link]
    said = [s for s in re.split(r"(?<=[.!?])\s+", words) if FULL_NOTEBOOK_SAYS.search(s)]
    assert not said, said
    title, your_turn = edition.cells[0].source, edition.cells[se.helper_index(edition) - 1].source
    assert title.startswith("# A tiny lesson\n\n| part | time |\n|---|---|\n| **1. All** | 2 hours |\n\n")
    assert "Each idea gets a section. **Exercises** come *before* the notebook uses what they ask" in title
    assert title.endswith(
        "Cells that only do plumbing are folded.\n\n**Run it** with `jupyter nbconvert --execute lesson.ipynb`."
    )
    assert "Don't skip one" in your_turn and your_turn.endswith("The check cells are folded.")

    # the teacher's own copy of the edition: both badges open it, and only it
    mine = "https://github.com/teacher/course/blob/main/student.ipynb"
    title = se.build(master, se.badge_urls(mine)).cells[0].source
    assert links(title) == [
        "https://colab.research.google.com/assets/colab-badge.svg",
        "https://colab.research.google.com/github/teacher/course/blob/main/student.ipynb",
        "https://kaggle.com/static/images/open-in-kaggle.svg",
        f"https://kaggle.com/kernels/welcome?src={mine}",
    ]
    nbformat.write(master, tmp_path / "lesson.ipynb")
    command = [sys.executable, ROOT / "teacher" / "student_edition.py", tmp_path / "lesson.ipynb"]
    made = subprocess.run(command + ["-o", tmp_path / "hw.ipynb", "--colab-url", "https://example.org/hw"], text=True)
    assert made.returncode == 0
    title = nbformat.read(tmp_path / "hw.ipynb", as_version=4).cells[0].source
    assert links(title) == ["https://colab.research.google.com/assets/colab-badge.svg", "https://example.org/hw"]
    assert "`jupyter nbconvert --execute hw.ipynb`" in title  # the commands it gives run the edition
    made = subprocess.run(command + ["--badge-url", "https://example.org/hw.ipynb"], capture_output=True, text=True)
    assert made.returncode == 2 and "--badge-url must be the edition's address on GitHub" in made.stderr


def test_small_edition_intro_says_what_to_hand_in_what_is_graded_and_what_waits_for_what(small):
    master, edition = small
    note = edition.cells[1]
    assert note.get("id") == se.NOTE_ID
    text = note.source
    for words in ("hand in", "`.ipynb` file", "*File > Download*", "Don't delete, rename or reorder cells"):
        assert words in text, words
    assert "a **preview**" in text and "hidden" in text  # how it is graded
    assert "| 1 | doubling | `my_double` |\n| 2 | a threshold | `threshold` |\n| 3 | squares | `my_square` |" in text
    # exercise 2's cell reads `value`, which a cell after exercise 1's reference makes: the table says so, and the
    # kernel test above shows it skipped until exercise 1 is right
    rows = re.findall(r"^\| (\d+): `(\w+)` \| your `(\w+)`, from (.+?) on \| (.+) \|$", text, re.M)
    assert [row[:4] for row in rows] == [
        ("1", "my_double", "double", "*A tiny lesson*"),
        ("3", "my_square", "square", "*A tiny lesson*"),
    ]
    assert rows[0][4] == "every later cell except the exercises' own; exercise 2's check"
    assert rows[1][4] == "every later cell except the exercises' own"
    assert "The checks of exercises 1 and 3 give a verdict whatever the state of the others." in text


def stubborn_cell(pid_file):
    """A cell that ignores the interrupt: only killing its kernel ends it. It writes its pid first."""
    return (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "while True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass"
    )


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z") if os.path.exists("/proc") else True


def test_grader_on_small_notebooks(small, tmp_path):
    """What the real notebook's grading test below does not show: checks restored, cells found without markers,
    the notebook time limit, a dead kernel, the scratch folder and the settings."""
    master, edition = small
    right = solutions(master)
    folder = tmp_path / "submissions"
    folder.mkdir()
    ex = se.find_exercises(edition)

    def write(name, nb):
        nbformat.write(nb, folder / name)

    nb = answered(edition, right)
    nb.cells.insert(ex[1].answer, nbformat.v4.new_code_cell("import os\n\nprint('cwd:', os.getcwd())"))
    write("right.ipynb", nb)
    # wrong answers; a check edited to say right; a check's call deleted; the check of exercise 2 deleted
    nb = answered(edition, {1: "def my_double(x):\n    return x + 1", 2: "threshold = 3"})
    nb.cells[ex[1].check].source = 'def check_double(attempt):\n    print("Exercise 1: right: trust me")'
    nb.cells[ex[3].answer].source = "def my_square(x):\n    return 2 * x"
    del nb.cells[ex[2].check]
    write("wrong.ipynb", nb)
    # saved by a front end that keeps no tags, no exercise numbers and no cell ids (nbformat 4.4)
    nb = answered(edition, right)
    nb.nbformat_minor = 4
    for cell in nb.cells:
        cell.metadata = {}
        del cell["id"]
    (folder / "stripped.ipynb").write_text(json.dumps(nb))
    # a cell that the interrupt at the cell time limit cannot stop; a kernel that dies
    nb = answered(edition, right)
    nb.cells.insert(ex[2].answer + 1, nbformat.v4.new_code_cell(stubborn_cell(tmp_path / "stubborn.pid")))
    write("stubborn.ipynb", nb)
    nb = answered(edition, right)
    nb.cells.insert(ex[1].answer + 1, nbformat.v4.new_code_cell("import os\n\nos._exit(1)"))
    write("dies.ipynb", nb)
    (folder / "corrupt.ipynb").write_text(nbformat.writes(edition)[:500])
    (folder / "essay.pdf").write_bytes(b"%PDF-1.4\n")
    write("other.ipynb", nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]))
    (folder / ".DS_Store").write_bytes(b"\0")

    nbformat.write(master, tmp_path / "master.ipynb")
    out = tmp_path / "grades.csv"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, ROOT / "teacher" / "grade.py", folder, "-o", out, "--master", tmp_path / "master.ipynb"]
        + ["--cell-timeout", "3", "--notebook-timeout", "10", "--jobs", "2", "--executed", tmp_path / "executed"]
        + ["--data-dir", ROOT / "data"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    grades = read_grades(out)
    status = {key: row["status"] for key, row in grades.items()}
    detail = {key: row["detail"] for key, row in grades.items()}
    for student in ("right", "stripped"):
        assert [status[student, str(n)] for n in ex] == ["right"] * 3, student
        assert status[student, "total"] == "3/3 right"
    assert [status["wrong", str(n)] for n in ex] == ["wrong"] * 3
    assert (
        detail["wrong", "1"] == "my_double(0) returned 1: that is x + 1, not 2 * x"
    )  # the real check, not the edited one
    assert detail["wrong", "2"] == "3 is not above 8.0: try more"  # the check is back; graded despite exercise 1
    assert detail["wrong", "3"] == "my_square(1) returned 2: that is 2 * x, not x * x"  # its call added back
    assert status["wrong", "total"] == "0/3 right" and detail["wrong", "total"] == "3 wrong"
    assert [status["stubborn", n] for n in "12"] == ["right", "right"]
    assert status["stubborn", "3"] == "did not run"
    assert detail["stubborn", "3"].startswith("the notebook time limit (10 s) passed while the cell starting 'import")
    assert not alive(int((tmp_path / "stubborn.pid").read_text())), "the looping kernel was killed"
    assert (status["dies", "1"], status["dies", "2"]) == ("right", "did not run")
    assert detail["dies", "2"] == "the kernel died in the cell starting 'import os'"
    assert status["corrupt", "all"] == "not gradable" and "not valid JSON" in detail["corrupt", "all"]
    assert status["essay", "all"] == "not gradable" and detail["essay", "all"].startswith("not a notebook (a .pdf")
    assert status["other", "all"] == "not gradable" and detail["other", "all"].startswith("a different notebook")
    assert {key[0] for key in grades} == {p.stem for p in folder.iterdir() if not p.name.startswith(".")}
    # the runs: in a scratch folder, not the teacher's, with the small settings; the summary on stdout
    executed = nbformat.read(tmp_path / "executed" / "right.ipynb", as_version=4)
    printed = "".join(text_of(c) for c in executed.cells)
    assert f"settings: 1 {ROOT / 'data'} model.npz False" in printed  # only the settings the master has
    stripped = nbformat.read(tmp_path / "executed" / "stripped.ipynb", as_version=4)
    assert f"settings: 1 {ROOT / 'data'} model.npz False" in "".join(text_of(c) for c in stripped.cells)
    cwd = re.search(r"^cwd: (.*)$", printed, re.M).group(1)
    assert not cwd.startswith((str(tmp_path), str(ROOT))) and not os.path.exists(cwd), "a scratch folder, removed"
    assert re.search(r"^wrong +W +W +W +0/3 ", result.stdout, re.M), result.stdout
    assert re.search(r"^essay +not gradable: not a notebook", result.stdout, re.M)
    assert seconds < 60, result.stderr

    # --as-submitted: the student's functions carry the run, as in the student edition: exercise 2 waits for 1
    alone = tmp_path / "as_submitted"
    alone.mkdir()
    (folder / "wrong.ipynb").rename(alone / "wrong.ipynb")
    result = subprocess.run(
        [sys.executable, ROOT / "teacher" / "grade.py", alone, "-o", out, "--master", tmp_path / "master.ipynb"]
        + ["--as-submitted", "--data-dir", ROOT / "data"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    grades = read_grades(out)
    assert [grades["wrong", n]["status"] for n in "123"] == ["wrong", "did not run", "wrong"], result.stderr
    assert grades["wrong", "2"]["detail"] == (
        "skipped (the student edition's rule): this cell needs your double (exercise 1), which is not right"
    )


# ---------------------------------------------------------------------------------------------- the real notebook

CELL_TIMEOUT = 20  # seconds: well above the slowest cell of a graded run (1-5 s); the loop costs this much
NOTEBOOK_TIMEOUT = 400
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


@pytest.fixture(scope="module")
def real():
    master = nbformat.read(NOTEBOOK, as_version=4)
    return master, se.build(master)


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


def test_student_edition_of_the_notebook_has_no_solution_and_every_exercise(real):
    check_edition(*real)


def test_student_edition_of_the_notebook_opens_nothing_public_and_says_nothing_of_the_full_notebook(real):
    """Issue 21: its badges do not open the public full notebook (solutions included), and its words are its own."""
    master, edition = real
    public = [link for link in links(markdown_of(master)) if link.endswith(NOTEBOOK.name)]
    assert public, "the master's badges open the public notebook"
    words = markdown_of(edition)
    assert not [link for link in links(words) if link.endswith(NOTEBOOK.name) or "kaggle.com/kernels" in link]
    assert "Open In Colab" not in words and "Open in Kaggle" not in words
    said = [s for s in re.split(r"(?<=[.!?])\s+", words) if FULL_NOTEBOOK_SAYS.search(s)]
    assert not said, said
    mine = "https://github.com/teacher/course/blob/main/student.ipynb"
    title = se.build(master, se.badge_urls(mine)).cells[0].source
    assert [link for link in links(title) if not link.endswith(".svg")] == [
        "https://colab.research.google.com/github/teacher/course/blob/main/student.ipynb",
        f"https://kaggle.com/kernels/welcome?src={mine}",
    ]


def test_student_edition_of_the_notebook_says_what_to_hand_in_what_is_graded_and_what_waits(real):
    master, edition = real
    text = edition.cells[1].source
    assert edition.cells[1].get("id") == se.NOTE_ID
    for words in ("hand in", "`.ipynb` file", "*File > Download*", "Don't delete, rename or reorder cells", "hidden"):
        assert words in text, words
    exercises = se.find_exercises(master)
    for n, ex in exercises.items():
        assert f"| {n} | {ex.title} | `{ex.learner_name}` |" in text
    # the table of what waits for which exercise, against the master's cells tagged reference and its headings
    expected, heading = [], None
    for cell in master.cells:
        numbered = (
            re.findall(r"^#{1,3} +(\d+(?:\.\d+)*)\.? ", cell.source, re.M) if cell.cell_type == "markdown" else []
        )
        heading = numbered[-1] if numbered else heading
        n = cell.metadata.get("exercise")
        if "reference" in cell.metadata.get("tags", []) and n not in [int(row[0]) for row in expected]:
            name = exercises[n].learner_name
            assert re.search(rf"^def {name[3:]}\(", cell.source, re.M), (n, name)
            expected.append((str(n), name, name[3:], f"section {heading}"))
    rows = re.findall(r"^\| (\d+): `(\w+)` \| your `(\w+)`, from (.+?) on \| (.+) \|$", text, re.M)
    assert [row[:4] for row in rows] == expected
    assert all(row[4].startswith("every later cell except the exercises' own") for row in rows)


def test_student_edition_of_the_notebook_carries_the_worked_examples_printout(real):
    """Exercise 6 is worked from the worked example's printout; the edition skips that cell until exercises 1, 2, 4
    and 5 are right, so it carries the master's printout, labelled, after it."""
    master, edition = real
    exercises = se.find_exercises(master)
    ex = next(e for e in exercises.values() if "worked example" in se.source(master.cells[e.task]))
    named = re.findall(r"`([A-Za-z_]\w*)`", se.source(master.cells[ex.task]))
    worked = [
        c
        for c in master.cells[: ex.task]
        if c.cell_type == "code" and re.search(rf"^({'|'.join(named)}) =", c.source, re.M)
    ][-1]
    printed = "".join(o["text"] for o in worked.outputs if o["output_type"] == "stream")
    assert "dA1 =" in printed  # the master's run printed it
    at = next(i for i, c in enumerate(edition.cells) if c.get("id") == worked.get("id"))
    assert not edition.cells[at].outputs
    copy = edition.cells[at + 1]
    assert copy.cell_type == "markdown" and copy.source.startswith("**The printout of the cell above")
    assert f"(a copy, for exercise {ex.number})" in copy.source
    assert copy.source.endswith(f"```text\n{printed.rstrip()}\n```")
    before = master.cells[: master.cells.index(worked)]
    waiting = sorted({c.metadata["exercise"] for c in before if "reference" in se.tags(c)})
    assert f"runs once exercises {', '.join(map(str, waiting[:-1]))} and {waiting[-1]} are right" in copy.source


@pytest.fixture(scope="module")
def kagglehub_cache(tmp_path_factory):
    """kagglehub's cache for the notebook's versioned handle, laid out as kagglehub does, with 3,500 real images."""
    cache = tmp_path_factory.mktemp("kagglehub")
    folder = cached_dataset_folder(cache)
    with gzip.open(ROOT / "data" / "mnist_test.csv.gz", "rt") as f:
        header, *rows = itertools.islice(f, 3501)
    (folder / "mnist_train.csv").write_text(header + "".join(rows[:3000]))
    (folder / "mnist_test.csv").write_text(header + "".join(rows[3000:]))
    return cache


def test_student_edition_runs_alone_with_the_data_only_in_kagglehubs_cache(real, kagglehub_cache, tmp_path):
    """As a student opens it: the notebook alone in an empty folder (no data/, no images/), Run all, with exercises
    1 and 2 wrong and 6, 8 and 9 answered: those three still get their verdict (6 and 8 are worked from printed
    copies), and the demonstration after exercise 9 says which exercises it waits for."""
    parameterize_notebook = pytest.importorskip("papermill.parameterize").parameterize_notebook
    from nbclient import NotebookClient

    alone, master = tmp_path / "alone", tmp_path / "master" / NOTEBOOK.name
    alone.mkdir()
    master.parent.mkdir()
    nbformat.write(real[0], master)  # the notebook as the fixture read it (others may be editing it)
    made = subprocess.run(
        [sys.executable, ROOT / "teacher" / "student_edition.py", master, "-o", alone / "student.ipynb"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0 and "no solutions" in made.stdout, made.stderr
    assert [p.name for p in alone.iterdir()] == ["student.ipynb"]
    assert nbformat.read(alone / "student.ipynb", as_version=4) == real[1]
    parameters = dict(EPOCHS=1, TRAIN_SIZE=2000, DEV_SIZE=500, SPREAD_SEEDS=1)
    parameters.update(RUN_GOING_FURTHER=False, RUN_GOING_DEEPER=False, RUN_APPENDIX=False)
    for name, file in [("MODEL_PATH", "m.npz"), ("BEST_MODEL_PATH", "b.npz"), ("DEEP_MODEL_PATH", "d.npz")]:
        parameters[name] = str(alone / file)
    parameters["IMAGES_DIR"] = str(alone / "images")
    exercises = se.find_exercises(real[1])
    by_name = {ex.learner_name: n for n, ex in exercises.items()}
    right = solutions(real[0])
    wrong = {  # two slips: a one-hot of all ones, and the softmax that overflows
        by_name["my_one_hot"]: "def my_one_hot(y, n_classes=10):\n    return np.ones((len(y), n_classes))",
        by_name["my_softmax"]: "def my_softmax(Z):\n    return np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)",
    }
    worked = [by_name[name] for name in ("dW1_11", "first_wrong", "lr_predictions")]
    nb = answered(nbformat.read(alone / "student.ipynb", as_version=4), {**wrong, **{n: right[n] for n in worked}})
    for cell in nb.cells:  # as papermill's reader leaves it
        cell.metadata.setdefault("tags", [])
    nb.metadata["papermill"] = {}
    # papermill's -p (its parameterizer), run by nbclient (papermill itself saves the notebook after every cell)
    nb = parameterize_notebook(nb, parameters, kernel_name="python3")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KAGGLEHUB_CACHE", str(kagglehub_cache))
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(alone)}}).execute()
    nbformat.write(nb, alone / "executed.ipynb")
    nb = nbformat.read(alone / "executed.ipynb", as_version=4)
    assert not errors(nb), errors(nb)
    assert "data from: kagglehub" in "".join(text_of(c) for c in nb.cells)
    references = [i for i, c in enumerate(nb.cells) if "reference" in se.tags(c)]
    first, second = (exercises[n] for n in sorted(wrong))
    answers = {}
    for i, cell in enumerate(nb.cells):
        out = text_of(cell)
        if "answer" in se.tags(cell):
            n = cell.metadata["exercise"]
            answers[n] = out
            if n not in wrong and n not in worked:  # not attempted; or, below the first reference, skipped if it
                assert re.fullmatch(rf"Exercise {n}: not attempted yet \(.*\)\n", out) or (  # needs what skipped
                    i > references[0] and SKIPPED.match(out)  # cells make
                ), (n, out)
        elif i >= references[0] and cell.cell_type == "code" and "check" not in se.tags(cell):
            assert out.count("\n") == 1, (i, out)
            assert SKIPPED.match(out).groups() == (first.function_name, str(first.number)), (i, out)
            if i > exercises[second.number].references[0]:
                assert f"It also waits for your {second.function_name} (exercise {second.number})" in out
    for n in wrong:
        assert re.search(rf"^Exercise {n}: wrong: ", answers[n], re.M), answers[n]
    for n in worked:  # (a solution may print something of its own first)
        assert re.search(rf"^Exercise {n}: right: ", answers[n], re.M), answers[n]
    # the demonstration after exercise 9: it trains, so it waits for the exercises `train` runs on, and says so
    ninth = next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("exercise") == worked[-1] and "answer" in c.metadata.tags
    )
    after = next(c for c in nb.cells[ninth + 1 :] if c.cell_type == "code")
    assert "train(" in after.source or "train_" in after.source, after.source[:200]
    assert SKIPPED.match(text_of(after)).groups() == (first.function_name, str(first.number))
    assert f"It also waits for your {second.function_name} (exercise {second.number})" in text_of(after)


def grader(folder, out, *options):
    """Start the grader on a folder (it runs in the background): returns the process and the CSV's path."""
    command = [sys.executable, ROOT / "teacher" / "grade.py", folder, "-o", out, *options]
    # one BLAS thread per kernel: the two runs share the cores (OpenBLAS threads that wait for a busy core spin)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent, env=env)


@pytest.fixture(scope="module")
def real_grades(real, tmp_path_factory):
    """The grader on a folder with every kind of submission, two at a time; meanwhile, a second run grades a
    student edition with every exercise right as submitted (--as-submitted: the student's functions run it)."""
    master, edition = real
    tmp = tmp_path_factory.mktemp("grading")
    folder, alone = tmp / "submissions", tmp / "as_submitted"
    folder.mkdir()
    alone.mkdir()
    exercises = se.find_exercises(edition)
    right = solutions(master)
    first, second = list(exercises)[:2]
    nbformat.write(answered(master, right), folder / "master_solved.ipynb")
    nbformat.write(edition, folder / "untouched.ipynb")
    slips = typical_wrong_answers(exercises)
    nbformat.write(answered(edition, {n: code for n, (code, _) in slips.items()}), folder / "typical_slips.ipynb")
    oops = {first: right[first], second: right[second] + "\n\nraise RuntimeError('a cell that raises')"}
    nbformat.write(answered(edition, oops), folder / "raises.ipynb")
    nb = answered(edition, {first: right[first], second: right[second]})
    nb.cells.insert(exercises[first].answer + 1, nbformat.v4.new_code_cell("while True:\n    pass"))
    nbformat.write(nb, folder / "never_ends.ipynb")
    (folder / "corrupt.ipynb").write_text(nbformat.writes(edition)[:1000])
    (folder / "homework.pdf").write_bytes(b"%PDF-1.4\n")
    nbformat.write(answered(edition, right), alone / "all_right.ipynb")

    start = time.monotonic()
    limits = ["--cell-timeout", str(CELL_TIMEOUT), "--notebook-timeout", str(NOTEBOOK_TIMEOUT)]
    runs = [
        grader(folder, tmp / "grades.csv", *limits, "--jobs", "2", "--executed", tmp / "executed"),
        grader(alone, tmp / "as_submitted.csv", *limits, "--as-submitted", "--executed", tmp / "executed"),
    ]
    stdout = []
    for run in runs:
        out, err = run.communicate()
        assert run.returncode == 0, err
        stdout.append(out)
    grades = {**read_grades(tmp / "grades.csv"), **read_grades(tmp / "as_submitted.csv")}
    return grades, stdout[0], tmp / "executed", time.monotonic() - start, slips


def statuses(grades, student):
    return {key[1]: row["status"] for key, row in grades.items() if key[0] == student and key[1] != "total"}


def test_grader_gives_the_master_with_its_solutions_all_right(real_grades):
    grades, stdout, _, seconds, _ = real_grades
    print(stdout, f"\ngraded in {seconds:.0f} s")
    assert set(statuses(grades, "master_solved").values()) == {"right"}
    n = len(statuses(grades, "master_solved"))
    assert grades["master_solved", "total"]["status"] == f"{n}/{n} right"


def test_students_functions_carry_the_notebook_when_all_are_right(real_grades):
    grades, _, executed, _, _ = real_grades
    assert set(statuses(grades, "all_right").values()) == {"right"}
    nb = nbformat.read(executed / "all_right.ipynb", as_version=4)
    assert not errors(nb)
    assert not SKIPPED.search("".join(text_of(c) for c in nb.cells))


def test_grader_says_not_attempted_for_the_untouched_student_edition(real_grades):
    grades, _, _, _, _ = real_grades
    assert set(statuses(grades, "untouched").values()) == {"not attempted"}
    assert grades["untouched", "total"]["status"].startswith("0/")


def test_grader_says_wrong_and_why_for_typical_slips(real_grades):
    grades, _, _, _, slips = real_grades
    for n, (_, reason) in slips.items():
        row = grades["typical_slips", str(n)]
        assert row["status"] == "wrong" and reason in row["detail"], row
    others = {k: v for k, v in statuses(grades, "typical_slips").items() if int(k) not in slips}
    assert set(others.values()) == {"not attempted"}  # each graded on its own, after exercise 1's wrong answer


def test_grader_grades_a_notebook_that_raises_or_never_ends_as_far_as_it_got(real_grades, real):
    grades, stdout, executed, _, _ = real_grades
    first, second, *rest = se.find_exercises(real[1])
    assert grades["raises", str(first)]["status"] == "right"
    assert (grades["raises", str(second)]["status"], grades["raises", str(second)]["detail"]) == (
        "did not run",
        "RuntimeError: a cell that raises",
    )
    assert {statuses(grades, "raises")[str(n)] for n in rest} == {"not attempted"}
    assert {statuses(grades, "never_ends")[str(n)] for n in (first, second)} == {"right"}
    assert {statuses(grades, "never_ends")[str(n)] for n in rest} == {"not attempted"}
    loop = next(c for c in nbformat.read(executed / "never_ends.ipynb", as_version=4).cells if "while True" in c.source)
    assert "ERROR KeyboardInterrupt" in text_of(loop)
    assert grades["never_ends", "total"]["detail"] == (
        f"{len(rest)} not attempted; another cell ran over the {CELL_TIMEOUT} s limit (interrupted) 'while True:'"
    )
    timing = loop.metadata["execution"]  # nbclient's timestamps: the loop was interrupted at the cell limit
    start, end = (
        datetime.fromisoformat(timing[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply")
    )
    assert CELL_TIMEOUT <= (end - start).total_seconds() < CELL_TIMEOUT + 15
    assert int(re.search(r"^never_ends .* (\d+) s$", stdout, re.M).group(1)) < NOTEBOOK_TIMEOUT


def test_grader_gives_a_clear_row_for_what_it_cannot_grade(real_grades):
    grades, stdout, _, _, _ = real_grades
    assert grades["corrupt", "all"]["status"] == "not gradable"
    assert grades["corrupt", "all"]["detail"].startswith("corrupt notebook: not valid JSON")
    assert grades["homework", "all"]["status"] == "not gradable"
    assert grades["homework", "all"]["detail"].startswith("not a notebook (a .pdf file)")
    assert not [key for key in grades if key[0] in ("corrupt", "homework") and key[1] != "all"]
    assert re.search(r"^homework +not gradable: not a notebook", stdout, re.M)
