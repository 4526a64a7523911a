"""A submission made ready to run: read as a notebook, its protected cells put back from the student edition, the
small settings injected, and the grader's last cell (teacher/collect.py with its payload) written."""

import ast
import base64
import copy
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbformat.corpus.words import generate_corpus_id

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import collect  # noqa: E402
import student_edition as se  # noqa: E402
from hidden_key import HiddenKey  # noqa: E402
from intake import NOT_NOTEBOOKS, NotGradable  # noqa: E402

# small settings for grading, injected after the parameters cell (those the master's parameters or settings cells
# have; the later settings cells keep a value given this way, as they keep one given with papermill -p)
SMALL_SETTINGS = {
    "EPOCHS": 1,
    "TRAIN_SIZE": 2000,
    "SPREAD_SEEDS": 1,
    "RUN_GOING_FURTHER": False,
    "RUN_GOING_DEEPER": False,
    "RUN_APPENDIX": False,
    "FURTHER_EPOCHS": 1,
    "DEEP_EPOCHS": 1,
    "UPLOAD_MY_DIGIT": False,
    "BN_DEMO_SIZE": 1000,
    "BN_DEMO_EPOCHS": 1,
    "INIT_DEMO_IMAGES": 200,
    "TORCH_TRAIN_SIZE": 1000,
}


# files the notebook writes: into the scratch folder (relative to the kernel's working directory)
SCRATCH_PATHS = {
    "OUTPUT_DIR": "output",
    "MODEL_PATH": "model.npz",
    "BEST_MODEL_PATH": "model_best.npz",
    "DEEP_MODEL_PATH": "model_deep.npz",
    "IMAGES_DIR": "images",
}


@dataclass
class Prepared:
    """A submission ready to run: the notebook, and the learner's cell of each exercise found in it."""

    nb: nbformat.NotebookNode
    learner_cells: dict = field(default_factory=dict)  # exercise number -> cell index
    # exercise number -> (its answer's name, [(position in the submitted notebook from 1, first line)]): the cells
    # after its learner's cell that define the answer again (the last definition is what is graded)
    redefinitions: dict = field(default_factory=dict)


def first_line(text, width=50):
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def position(cells, cell):
    """Index of this very cell object (cells equal in content are different cells)."""
    return next(i for i, c in enumerate(cells) if c is cell)


def read_submission(path):
    """The submission as a notebook (nbformat 4.5, every cell with an id), or NotGradable saying why not."""
    if path.suffix.lower() != ".ipynb":
        kind = NOT_NOTEBOOKS.get(path.suffix.lower()) or (
            f"not a notebook (a {path.suffix} file)" if path.suffix else "not a notebook (a file without an extension)"
        )
        raise NotGradable(f"{kind}: hand in the .ipynb file (File > Download > .ipynb)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise NotGradable("corrupt notebook: the file is not text") from None
    except json.JSONDecodeError as e:
        raise NotGradable(f"corrupt notebook: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotGradable("not a Jupyter notebook: valid JSON, but it has no list of cells")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as e:
        raise NotGradable(f"not a notebook nbformat can read: {type(e).__name__}: {e}") from None
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    seen = set()
    for cell in nb.cells:
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = generate_corpus_id()
        seen.add(cell["id"])
    return nb


def find_cell(cells, tests):
    """The first cell that passes the first test any cell passes, or None."""
    for test in tests:
        for cell in cells:
            if test(cell):
                return cell
    return None


def marked(n, tag):
    return lambda c: c.get("metadata", {}).get("exercise") == n and tag in se.tags(c)


def same_id(cell_id):
    return lambda c: c.get("id") == cell_id


def code_matching(pattern):
    return lambda c: c["cell_type"] == "code" and re.search(pattern, se.source(c), re.M) is not None


def with_check_call(text, ex):
    """The learner's cell ending with its check's call as in the master (added, or put back, if changed)."""
    try:
        python = se.python_source(text)
        last = ast.parse(python).body[-1]
    except (SyntaxError, IndexError):
        return text  # it runs as written and fails; the grade comes from the values collected at the end
    call = last.value if isinstance(last, ast.Expr) else None
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == ex.check_name:
        if ast.get_source_segment(python, last) == ex.check_call:
            return text
        if len(python.splitlines()) == len(text.splitlines()):  # same lines: replace the call with the master's
            lines = text.splitlines()
            return "\n".join(lines[: last.lineno - 1] + [ex.check_call] + lines[last.end_lineno :])
    return text.rstrip() + "\n\n" + ex.check_call


def prepare(path, edition, settings):
    """The submission at path, ready to run (Prepared), or NotGradable.

    Cells are found first (as objects), then replaced or inserted, each at the position of its cell at that moment:
    restoring one cell never moves another's place.
    """
    nb = read_submission(path)
    cells = [c for c in nb.cells if "injected-parameters" not in se.tags(c)]
    exercises = se.find_exercises(edition)
    ecells = edition.cells
    found = {}
    for n, ex in exercises.items():
        check = find_cell(
            cells,
            [
                marked(n, "check"),
                same_id(ecells[ex.check].id),
                code_matching(rf"^# ?@title Check for exercise {n}:|^def {ex.check_name}\("),
            ],
        )
        answer = find_cell(
            cells,
            [
                marked(n, "answer"),
                same_id(ecells[ex.answer].id),
                lambda c, ex=ex, check=check: c is not check and code_matching(rf"(?<!def )\b{ex.check_name}\(")(c),
            ],
        )
        found[n] = (check, answer)
    if all(check is None and answer is None for check, answer in found.values()):
        raise NotGradable(
            f"a different notebook: none of the {len(exercises)} exercises of this lesson is in it "
            "(no cell checks or answers one)"
        )
    redefinitions = later_definitions(nb.cells, exercises, found)

    # restore the protected cells from the student edition, each where its cell is now
    for n, (check, answer) in found.items():
        protected = copy.deepcopy(ecells[exercises[n].check])
        if check is not None:
            cells[position(cells, check)] = protected
        elif answer is not None:
            cells.insert(position(cells, answer), protected)
    helper = ecells[se.helper_index(edition)]
    at = find_cell(cells, [same_id(helper.id), code_matching(r"^def run_check\(")])
    if at is None:
        first_check = next((c for c in cells if c.get("metadata", {}).get("exercise") and "check" in se.tags(c)), None)
        cells.insert(position(cells, first_check) if first_check is not None else 0, copy.deepcopy(helper))
    else:
        cells[position(cells, at)] = copy.deepcopy(helper)
    helper_cell = cells[next(i for i, c in enumerate(cells) if c.get("id") == helper.id)]
    for cell_id, after in [(se.PLUMBING_ID, helper_cell), (se.RESET_ID, None)]:
        protected = copy.deepcopy(next(c for c in ecells if c.id == cell_id))
        title = re.escape(protected.source.splitlines()[0])
        found_at = find_cell(cells, [same_id(cell_id), code_matching(f"^{title}$")])
        if found_at is not None:
            cells[position(cells, found_at)] = protected
        elif after is not None:
            cells.insert(position(cells, after) + 1, protected)
    for n, (_, answer) in found.items():
        if answer is not None:
            answer.source = with_check_call(se.source(answer), exercises[n])
            answer.metadata["grading"] = {"exercise": n}

    # small settings after the parameters cell (found by its tag, its id, or its first line)
    master_parameters = next((c for c in ecells if "parameters" in se.tags(c)), None)
    tests = [lambda c: "parameters" in se.tags(c)]
    if master_parameters is not None and master_parameters.source.strip():
        first = re.escape(master_parameters.source.splitlines()[0])
        tests += [same_id(master_parameters.id), code_matching(f"^{first}$")]
    parameters = find_cell(cells, tests)
    settings_cells = [se.source(c) for c in ecells if {"parameters", "settings"} & set(se.tags(c))]
    names = set(re.findall(r"^(\w+) *=", "\n".join(settings_cells), re.M))
    lines = [f"{name} = {value!r}" for name, value in settings.items() if name in names]
    injected = nbformat.v4.new_code_cell(  # "# Parameters" first, like papermill's cell: the notebook looks for it
        "# Parameters (injected by teacher/grade.py: small settings, files into the scratch folder)\n"
        + "\n".join(lines)
    )
    injected.metadata["tags"] = ["injected-parameters"]
    cells.insert(0 if parameters is None else position(cells, parameters) + 1, injected)

    nb.cells = cells
    ClearOutputPreprocessor(remove_metadata_fields={"collapsed", "scrolled", "execution"}).preprocess(nb, {})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    learner_cells = {c.metadata["grading"]["exercise"]: i for i, c in enumerate(cells) if "grading" in c.metadata}
    return Prepared(nb, learner_cells, redefinitions)


class Bindings(ast.NodeVisitor):
    """The names a cell binds in the notebook's namespace: def, class, import (as), assignments of every kind, for
    and with targets, except names, walrus; not the local names inside its functions, classes and lambdas."""

    def __init__(self):
        self.names = set()

    def visit_FunctionDef(self, node):
        self.names.add(node.name)
        self.names.update(n for stmt in ast.walk(node) if isinstance(stmt, ast.Global) for n in stmt.names)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        pass

    def visit_comprehension(self, node):  # its loop variable is local to the comprehension
        for part in [node.iter, *node.ifs]:
            self.visit(part)

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.names.add(node.id)

    def visit_alias(self, node):
        self.names.add((node.asname or node.name).split(".")[0])

    def visit_ExceptHandler(self, node):
        if node.name:
            self.names.add(node.name)
        self.generic_visit(node)


def bound_names(text):
    """The names the cell (IPython syntax allowed) binds at the top level; none if it is not Python."""
    try:
        tree = ast.parse(se.python_source(text))
    except (SyntaxError, ValueError):
        return set()
    visitor = Bindings()
    visitor.visit(tree)
    return visitor.names


def later_definitions(cells, exercises, found):
    """{n: (answer name, [(position from 1, first line)])} for the code cells after exercise n's learner's cell
    that define its answer again (def, assignment, import as): Run all grades that last one, and the feedback says
    so. The check cells, which the grader puts back, do not count."""
    restored = {id(check) for check, _ in found.values() if check is not None}
    later = {}
    for n, (_, answer) in found.items():
        if answer is None:
            continue
        name = exercises[n].learner_name
        after = [c for c in cells[position(cells, answer) + 1 :] if c.cell_type == "code" and id(c) not in restored]
        again = [(position(cells, c) + 1, first_line(se.source(c))) for c in after if name in bound_names(se.source(c))]
        if again:
            later[n] = (name, again)
    return later


def final_cell(checks, hidden, values_path, seconds, edition=None):
    """The grader's last cell: collect.py and its payload, base64-encoded (no cell of the student's matches it).

    Its first line names STUDENT_EDITION_BLOCKS: the edition's plumbing runs such a cell even while an exercise
    holds the notebook up. With `edition` (the graded student edition), the kernel gets the edition's check cells
    (the same values_N as the master's, and no fingerprint of a value answer), else the master's. The hidden cases
    go in without their "expected" results and their "kind".
    """
    sources = {n: c.source for n, c in checks.checks.items()}
    if edition is not None:
        for n, ex in se.find_exercises(edition).items():
            if n in sources:
                sources[n] = se.python_source(se.source(edition.cells[ex.check]))
    payload = {
        "helper": checks.helper,
        "checks": {str(n): text for n, text in sources.items()},
        "answers": {str(n): c.answer_name for n, c in checks.checks.items()},
        "hidden": {
            str(n): collect.encode([{k: v for k, v in case.items() if k not in ("expected", "kind")} for case in cases])
            for n, cases in hidden.items()
        },
        "out": values_path,
        "seconds": seconds,
    }
    code = (HERE / "collect.py").read_text(encoding="utf-8")
    code += "\n\nimport base64 as _b64\ncollect(json.loads(_b64.b64decode(PAYLOAD)), NAMESPACE)\n"
    packed = base64.b64encode(code.encode()).decode()
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    return (
        "# The grader's last cell (teacher/collect.py): it reads your answers; STUDENT_EDITION_BLOCKS do not apply\n"
        f'exec(__import__("base64").b64decode("{packed}").decode(), '
        f'{{"__name__": "grader_collect", "PAYLOAD": "{data}", "NAMESPACE": globals()}})'
    )


def load_hidden_tests(path):
    """The hidden tests' module (teacher/hidden_tests.py, or the teacher's own copy)."""
    spec = importlib.util.spec_from_file_location("hidden_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hidden_for(student, checks, hidden_tests, key):
    """{exercise: hidden cases with "expected" and "kind"} for this student.

    key: a hidden_key.HiddenKey (the teacher's secret decides the inputs: HMAC(secret, student)), or an int, the
    public seed of the grader before secrets (anyone with the hidden tests' file can compute those cases).
    """
    if hidden_tests is None:
        return {}
    if not isinstance(key, HiddenKey):
        key = HiddenKey(seed=int(key))
    rng = key.rng(student)
    cases = {n: hidden_tests.hidden_cases(c.answer_name, rng) for n, c in checks.checks.items()}
    return {n: c for n, c in cases.items() if c}
