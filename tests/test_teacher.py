"""The student edition (teacher/student_edition.py): it holds no solution and runs on the student's own functions,
skipping, and saying so, the cells that need an exercise not right yet. The grader's tests are in
tests/test_grader.py.

Two notebooks: a small synthetic master with the exercise conventions (fast: the mechanisms, in a real kernel),
and the real notebook (the edition run alone with the data only in kagglehub's cache).
"""

import gzip
import itertools
import re
import subprocess
import sys

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
    graded = edition.metadata["student_edition"]["kind"] == "graded"
    for n, ex in mex.items():
        e = eex[n]
        for attr in ("task", "check", "answer"):  # the task with its hint, the check and the stub, unchanged
            if graded and not ex.function_name and attr != "answer":
                continue  # a value exercise in the graded edition: its check looks at the form only (below)
            assert se.source(edition.cells[getattr(e, attr)]) == se.source(master.cells[getattr(ex, attr)]), (n, attr)
        if graded and not ex.function_name:  # the task told so; the check holds no answer (test_grading_secrets)
            assert se.source(edition.cells[e.task]).startswith(se.source(master.cells[ex.task]).rstrip())
            assert "looks only at the form of your answer" in se.source(edition.cells[e.task])
            check = se.source(edition.cells[e.check])
            assert check.startswith(f"# @title Check for exercise {n}: the form of your answer only"), check
            assert f"def {ex.check_name}(" in check
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


# ---------------------------------------------------------------------------------------------- the synthetic master


@pytest.fixture(scope="module")
def small():
    master = synthetic_master()
    return master, se.build(master)


def test_small_edition_has_no_solution_and_every_exercise(small):
    master, edition = small
    check_edition(master, edition)
    check_edition(master, se.build(master, practice=True))  # the practice edition: every check as in the master
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


def test_small_edition_runs_the_students_own_cells_while_an_exercise_waits(small, tmp_path):
    """Issue 29: only the notebook's own cells wait for an exercise; a cell the student adds, or changes, runs as
    written, while the notebook's cells around it are still skipped."""
    from nbclient import NotebookClient

    _, edition = small
    nb = copy_of(edition)
    first_reference = se.find_exercises(nb)[1].references[0]
    scratch = nbformat.v4.new_code_cell('print("my own try:", 6 * 7)  ')  # trailing spaces: still the student's
    nb.cells.insert(first_reference + 1, scratch)
    end = next(c for c in nb.cells if se.source(c) == 'print("the end")')
    end.source = 'print("the end, changed by me")'
    untouched = nb.cells[first_reference + 2]
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, i)
    assert text_of(scratch) == "my own try: 42\n"
    assert text_of(end) == "the end, changed by me\n"
    assert SKIPPED.match(text_of(nb.cells[first_reference])).groups() == ("double", "1")
    assert SKIPPED.match(text_of(untouched)), text_of(untouched)


def test_the_plumbing_fingerprints_a_cell_as_the_edition_does():
    """The kernel side (the plumbing cell's own function) and the build side agree, blind to trailing spaces and to
    blank lines at either end, and tell a changed cell apart."""
    code = re.search(r"^def cell_fingerprint\(text\):\n(?:    .*\n|\n)+", se.PLUMBING.replace("\\\\", "\\"), re.M)
    namespace = {"hashlib": __import__("hashlib")}
    exec(code.group(0), namespace)
    for text in ('print("x")\n', '\n\nprint("x")  \n\n', "def f(x):\n    return x\n\n\nf(1)\n"):
        assert namespace["cell_fingerprint"](text) == se.cell_fingerprint(text)
    assert se.cell_fingerprint('print("x")') == se.cell_fingerprint('\nprint("x")   \n')
    assert se.cell_fingerprint('print("x")') != se.cell_fingerprint('print("y")')


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


# ---------------------------------------------------------------------------------------------- the real notebook


@pytest.fixture(scope="module")
def real():
    master = nbformat.read(NOTEBOOK, as_version=4)
    return master, se.build(master)


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


def test_student_edition_of_the_notebook_says_how_long_what_to_switch_off_and_how_to_recover(real):
    """Issue 29: the assignment's own time (it reaches 13.1 and 15.1), the optional parts off by default (no grade
    depends on them: the grader sets its own), and what to do after a restart or a deleted check cell."""
    import prepare

    master, edition = real
    text = edition.cells[1].source
    for words in ("4.5-5 hours", "13.1 (exercise 10)", "15.1 (exercise 11)", "No setting changes your grade"):
        assert words in text, words
    for words in ("`RUN_GOING_FURTHER`, `RUN_GOING_DEEPER` and `RUN_APPENDIX` are `False`", "`SPREAD_SEEDS = 1`"):
        assert words in text, words
    for words in ("NameError", "Run All Above", "Undo Delete Cell", "puts every check cell back", "they always run"):
        assert words in text, words
    exercises = se.find_exercises(master)
    sections = {n: se.section_of(master, ex.task) for n, ex in exercises.items()}
    assert sections[10] == "section 13.1" and sections[11] == "section 15.1", sections
    settings = next(c for c in edition.cells if "parameters" in se.tags(c)).source
    master_settings = next(c for c in master.cells if "parameters" in se.tags(c)).source
    for name in ("RUN_GOING_FURTHER", "RUN_GOING_DEEPER", "RUN_APPENDIX"):
        assert re.search(rf"^{name} = True\b", master_settings, re.M)
        assert re.search(rf"^{name} = False  # .*no grade depends on it\)$", settings, re.M), name
        assert prepare.SMALL_SETTINGS[name] is False  # the grader's own setting: the edition's default costs nothing
    assert "express path" not in "\n".join(c.source for c in edition.cells if c.cell_type == "markdown").lower()


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


@pytest.mark.parametrize("slips", [False, True], ids=["untouched", "exercises_1_and_2_wrong"])
def test_student_edition_runs_alone_with_the_data_only_in_kagglehubs_cache(real, kagglehub_cache, tmp_path, slips):
    """As a student opens it: the notebook alone in an empty folder (no data/, no images/), Run all; untouched, and
    with exercises 1 and 2 wrong and 6, 8 and 9 answered: those three still get their check's word (the graded
    edition: "answered"; 6 is worked from the printed copy of the worked example), and the demonstration after
    exercise 9 says which exercises it waits for."""
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
    wrong, worked = (wrong, worked) if slips else ({}, [])
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
    exercises = se.find_exercises(nb)  # where the cells are in the run (papermill added one)
    references = [i for i, c in enumerate(nb.cells) if "reference" in se.tags(c)]
    first, second = sorted((ex for ex in exercises.values() if ex.references), key=lambda ex: ex.references[0])[:2]
    free = re.search(r"^The checks of exercises ([\d, and]+) give a verdict whatever", nb.cells[1].source, re.M)
    free = {int(n) for n in re.findall(r"\d+", free.group(1))} if free else set()  # as the intro says
    assert free == set(exercises), "the README says: no check needs an earlier exercise"
    answers = {}
    for i, cell in enumerate(nb.cells):
        out = text_of(cell)
        if "answer" in se.tags(cell):
            n = cell.metadata["exercise"]
            answers[n] = out
            if n not in wrong and n not in worked:  # never skipped: every check gives its verdict
                assert re.search(rf"^Exercise {n}: not attempted yet \(.*\)\n\Z", out, re.M), (n, out)
        elif i >= references[0] and cell.cell_type == "code" and "check" not in se.tags(cell):
            assert out.count("\n") == 1, (i, out)
            assert SKIPPED.match(out).groups() == (first.function_name, str(first.number)), (i, out)
            if i > exercises[second.number].references[0]:
                assert f"It also waits for your {second.function_name} (exercise {second.number})" in out
    for n in wrong:
        assert re.search(rf"^Exercise {n}: wrong: ", answers[n], re.M), answers[n]
    for n in worked:  # (a solution may print something of its own first); the graded edition: the form only
        assert re.search(rf"^Exercise {n}: answered: .* graded", answers[n], re.M), answers[n]
    # the demonstration after exercise 9: it trains, so it waits for the exercises `train` runs on, and says so
    ninth = exercises[by_name["lr_predictions"]].answer
    after = next(c for c in nb.cells[ninth + 1 :] if c.cell_type == "code")
    assert "train(" in after.source or "train_" in after.source, after.source[:200]
    assert SKIPPED.match(text_of(after)).groups() == (first.function_name, str(first.number))
    assert f"It also waits for your {second.function_name} (exercise {second.number})" in text_of(after)
