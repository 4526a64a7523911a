"""Make the student edition of the notebook: no solutions, no outputs, and the student's own functions carry it.

    python teacher/student_edition.py [neural_network_from_scratch.ipynb] [-o student.ipynb]

From the master notebook (the one in the repository, with the solutions):

- the cells tagged `solution` are removed (nbconvert's TagRemovePreprocessor) and every output is cleared
  (ClearOutputPreprocessor): outputs can give answers away;
- in each cell tagged `reference` (the notebook's own version of a function an exercise asks for), the
  `def <name>` is replaced by `<name> = my_<name>` and `require_exercise(N, "<name>")`: from there on the
  notebook runs the student's function;
- a folded cell after the exercises' shared helper defines `require_exercise` and an IPython input transformer
  that, while an exercise the notebook needs is not right yet, turns every later cell into a print saying
  "Skipped: this cell needs your ... (exercise N)"; the exercises' checks and the student's cells still run;
- a short note for the student goes after the title, and a folded one-line cell after it makes a run from the
  top start unblocked.

The exercise conventions it relies on are in `find_exercises`; the tests are in tests/test_teacher.py.
"""

import argparse
import ast
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager
from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "neural_network_from_scratch.ipynb"

TASK = re.compile(r"\*\*Exercise (\d+): (.+?)\.\*\*")
SOLUTION = re.compile(r"<details><summary>Solution to exercise (\d+)</summary>\s*```python\n(.*?)```", re.S)
HELPER = re.compile(r"^def run_check\(", re.M)
# ids and metadata of the cells this script adds (the grader finds them by these)
NOTE_ID, RESET_ID, PLUMBING_ID = "student-edition-note", "student-edition-reset", "student-edition-plumbing"
FOLDED = {"cellView": "form", "jupyter": {"source_hidden": True}}


@dataclass
class Exercise:
    """One exercise of the master notebook: its number, title, and the indices of its cells."""

    number: int
    title: str
    task: int
    check: int
    answer: int
    solution: int | None
    references: list = field(default_factory=list)
    learner_name: str = ""  # the learner's answer, the check's first argument: my_softmax, or a value (dW1_11)
    check_name: str = ""  # the check its last line calls: check_softmax
    check_call: str = ""  # that last line, as written: check_softmax(my_softmax)

    @property
    def function_name(self):
        """The notebook's own function this exercise writes (softmax for my_softmax), or None for a value."""
        return self.learner_name[3:] if self.learner_name.startswith("my_") else None


def source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def python_source(text):
    """The cell as plain Python: IPython syntax (%pip ...) turned into calls, line for line."""
    return TransformerManager().transform_cell(text)


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def learner_parts(text):
    """(the name of the learner's answer, the check the cell's last line calls, that last line) or None.

    The answer is the check's first argument (my_softmax, or a value such as predicted_shapes), else the name the
    cell defines first.
    """
    try:
        python = python_source(text)
        tree = ast.parse(python)
    except SyntaxError:
        return None
    if not tree.body:
        return None
    first, last = tree.body[0], tree.body[-1]
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) and isinstance(last.value.func, ast.Name)):
        return None
    args = last.value.args
    if args and isinstance(args[0], ast.Name):
        name = args[0].id
    elif isinstance(first, ast.FunctionDef):
        name = first.name
    elif isinstance(first, ast.Assign) and isinstance(first.targets[0], ast.Name):
        name = first.targets[0].id
    else:
        return None
    return name, last.value.func.id, ast.get_source_segment(python, last)


def find_exercises(nb):
    """{number: Exercise}, in notebook order, from the cells' markers (issue 17's conventions).

    Exercise N's cells carry metadata["exercise"] = N and a tag: `exercise` (the task, a markdown cell starting
    "**Exercise N: <title>.**"), `check` (the folded check), `answer` (the learner's cell, whose last line calls the
    check), `solution`, and, for an exercise that writes a function, `reference`: a later cell with the notebook's
    own version of it.
    """
    cells = nb["cells"]
    roles = {}
    for i, cell in enumerate(cells):
        n = cell.get("metadata", {}).get("exercise")
        for role in ("exercise", "check", "answer", "solution", "reference"):
            if isinstance(n, int) and role in tags(cell):
                roles.setdefault(n, {}).setdefault(role, []).append(i)
    found = {}
    for n, role in roles.items():
        missing = [r for r in ("exercise", "check", "answer") if r not in role]
        if missing:
            raise ValueError(f"exercise {n} has no cell tagged {' or '.join(missing)}")
        task, check, answer = role["exercise"][0], role["check"][0], role["answer"][0]
        match = TASK.match(source(cells[task]))
        parts = learner_parts(source(cells[answer]))
        if parts is None:
            raise ValueError(f"exercise {n}: the last line of its learner's cell must call its check")
        if any(i < answer for i in role.get("reference", [])):
            raise ValueError(f"exercise {n}: its reference cell comes before the learner's cell")
        found[n] = Exercise(
            n,
            match.group(2) if match else "",
            task,
            check,
            answer,
            role.get("solution", [None])[0],
            role.get("reference", []),
            *parts,
        )
    return dict(sorted(found.items(), key=lambda item: item[1].task))


def helper_index(nb):
    """Index of the folded cell that defines run_check (the helper shared by the checks), or None."""
    return next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and HELPER.search(source(c))), None)


def solution_code(nb, ex):
    """The ```python block of exercise ex's solution cell in the master."""
    match = SOLUTION.search(source(nb["cells"][ex.solution])) if ex.solution is not None else None
    return match.group(2) if match else None


def rewrite_reference(text, ex):
    """The reference cell with its `def <name>` replaced by `<name> = my_<name>` and `require_exercise(...)`."""
    name = ex.function_name
    lines = text.splitlines()
    python = python_source(text)
    if len(python.splitlines()) != len(lines):
        raise ValueError(f"exercise {ex.number}: its reference cell uses a cell magic; it cannot be rewritten")
    defs = [n for n in ast.parse(python).body if isinstance(n, ast.FunctionDef) and n.name == name]
    if len(defs) != 1:
        raise ValueError(f"exercise {ex.number}: its reference cell must define {name} once, found {len(defs)}")
    node = defs[0]
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    plumbing = [
        f"{name} = {ex.learner_name}  # from here on the notebook runs your {name} (exercise {ex.number})",
        f'require_exercise({ex.number}, "{name}")',
    ]
    return "\n".join(lines[:start] + plumbing + lines[node.end_lineno :]).strip("\n")


NOTE = """**This is the student edition.** It has no solutions: neither the exercises' solutions nor the
notebook's own version of the functions they ask you to write. From such an exercise on, the notebook runs
**your** function. A cell that needs an exercise you have not got right yet does not run: it says *Skipped:
this cell needs your ... (exercise N)*. Your exercise cells and their checks still run (unless they need
something a skipped cell makes), so *Run all* works at any point and each check says "not attempted yet",
"wrong" (and why) or "right". Get the exercise right, then run the cells below it again (or *Run all*)."""

RESET = """# @title Student edition: a run from the top starts with no exercise holding it up
STUDENT_EDITION_BLOCKS = {}  # exercise number -> your function the cells below wait for"""

PLUMBING = '''# @title Student edition: cells that need an exercise you have not got right yet are skipped
import ast
import builtins
import re

# the exercises' checks and their numbers: a cell that defines or calls one always runs, so every check can tell
# you how you are doing, and it tells where in the notebook you are
EXERCISE_CHECKS = CHECK_NUMBERS
_ALWAYS_RUN = re.compile(r"\\b(STUDENT_EDITION_BLOCKS|require_exercise|" + "|".join(EXERCISE_CHECKS) + r")\\b")
_AT_EXERCISE = re.compile(r"\\b(" + "|".join(EXERCISE_CHECKS) + r")\\(")
_REQUIRES = re.compile(r'^require_exercise\\((\\d+), "(\\w+)"\\)', re.M)
_KEEP = re.compile(r"^(require_exercise\\(|(\\w+) = my_\\2\\b)")  # the lines a skipped reference cell still runs
STUDENT_EDITION_BLOCKS = {}  # exercise number -> your function the cells below wait for


def require_exercise(number, name):
    """From here on the notebook runs your `name` (exercise `number`); until that exercise is right, skip cells."""
    if globals().get("EXERCISE_RESULTS", {}).get(number) is True:
        STUDENT_EDITION_BLOCKS.pop(number, None)
    else:
        STUDENT_EDITION_BLOCKS[number] = name


def _missing_names(text):
    """Names the cell reads (also inside its functions) that neither it nor an earlier cell defines."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    loaded, defined = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.alias):
            defined.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return {name for name in loaded - defined if name not in globals() and not hasattr(builtins, name)}


def _kept(line):
    """A line a skipped reference cell still runs: require_exercise(...), and name = my_name if my_name exists."""
    match = _KEEP.match(line)
    return bool(match) and (match.group(2) is None or f"my_{match.group(2)}" in globals())


def skip_cells_waiting_for_an_exercise(lines):
    """IPython input transformer: while an exercise holds the notebook up, a cell becomes a print that says so.

    An exercise's check and your cell still run, unless they need something that skipped cells make. A cell of
    exercise N (its check, your cell, or the cell that starts using your function) also tells where you are: what
    exercise N and later ones held up is from an earlier run of the cells below, and is forgotten.
    """
    try:
        text = "".join(lines)
        own = {int(n): name for n, name in _REQUIRES.findall(text)}  # the cell that starts using your function
        here = [EXERCISE_CHECKS[name] for name in _AT_EXERCISE.findall(text)] + list(own)
        if here:
            for n in [n for n in STUDENT_EDITION_BLOCKS if n >= min(here)]:
                del STUDENT_EDITION_BLOCKS[n]
        results = globals().get("EXERCISE_RESULTS", {})
        waiting = {**STUDENT_EDITION_BLOCKS, **own}
        waiting = {n: name for n, name in waiting.items() if results.get(n) is not True}
        if not waiting:
            return lines
        if _ALWAYS_RUN.search(text) and not own and not (here and _missing_names(text)):
            return lines
        n = min(waiting)
        message = (
            f"Skipped: this cell needs your {waiting[n]} (exercise {n}), which is not right yet. "
            "Fix it above, then run the cells again."
        )
        return [line for line in lines if _kept(line)] + [f"print({message!r})\\n"]
    except Exception:  # never stand between you and your cell
        return lines


_transformers = get_ipython().input_transformers_post
_transformers[:] = [t for t in _transformers if getattr(t, "__name__", None) != "skip_cells_waiting_for_an_exercise"]
_transformers.append(skip_cells_waiting_for_an_exercise)  # once, also when this cell runs again'''


def new_code_cell(text, cell_id):
    """A folded code cell added by this script."""
    cell = nbformat.v4.new_code_cell(text)
    cell["id"], cell["metadata"] = cell_id, {**copy.deepcopy(FOLDED), "student_edition": True}
    return cell


def build(master):
    """The student edition (a new notebook) made from the master notebook (a NotebookNode)."""
    nb = copy.deepcopy(master)
    exercises = find_exercises(nb)
    if not exercises:
        raise ValueError("no exercises found: this is not the master notebook")
    helper = helper_index(nb)
    if helper is None:
        raise ValueError("no cell defines run_check, the helper shared by the exercise checks")
    for ex in exercises.values():
        for i in ex.references:
            nb["cells"][i]["source"] = rewrite_reference(source(nb["cells"][i]), ex)
    uses = [ex for ex in exercises.values() if ex.references]
    checks = json.dumps({ex.check_name: ex.number for ex in exercises.values()})
    plumbing = new_code_cell(PLUMBING.replace("CHECK_NUMBERS", checks), PLUMBING_ID)
    nb["cells"].insert(helper + 1, plumbing)
    text = NOTE
    if uses:
        carried = "; ".join(f"`{ex.function_name}` is your `{ex.learner_name}` (exercise {ex.number})" for ex in uses)
        text += f"\n\nThe notebook runs these functions of yours: {carried}."
    note = nbformat.v4.new_markdown_cell(text)
    note["id"], note["metadata"] = NOTE_ID, {"student_edition": True}
    title = 1 if nb["cells"] and nb["cells"][0]["cell_type"] == "markdown" else 0
    nb["cells"][title:title] = [note, new_code_cell(RESET, RESET_ID)]

    TagRemovePreprocessor(remove_cell_tags={"solution"}).preprocess(nb, {})
    ClearOutputPreprocessor(remove_metadata_fields={"collapsed", "scrolled", "execution"}).preprocess(nb, {})
    nb["metadata"].pop("widgets", None)  # saved widget state is output too
    nb["metadata"].pop("papermill", None)
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("master", nargs="?", default=str(MASTER), help="the master notebook (default: %(default)s)")
    parser.add_argument("-o", "--output", default="student.ipynb", help="where to write it (default: %(default)s)")
    args = parser.parse_args(argv)
    master = nbformat.read(args.master, as_version=4)
    edition = build(master)
    nbformat.validate(edition)
    nbformat.write(edition, args.output)
    exercises = find_exercises(edition)
    carried = sum(1 for ex in exercises.values() if ex.references)
    print(
        f"wrote {args.output}: {len(exercises)} exercises, no solutions, no outputs; "
        f"{carried} of them carry the rest of the notebook"
    )


if __name__ == "__main__":
    sys.exit(main())
