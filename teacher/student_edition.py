"""Make the student edition of the notebook: no solutions, no outputs, and the student's own functions carry it.

    python teacher/student_edition.py [neural_network_from_scratch.ipynb] [-o student.ipynb]
        [--badge-url https://github.com/you/course/blob/main/student.ipynb] [--colab-url URL] [--kaggle-url URL]
        [--practice]

From the master notebook (the one in the repository, with the solutions):

- the cells tagged `solution` are removed (nbconvert's TagRemovePreprocessor) and every output is cleared
  (ClearOutputPreprocessor): outputs can give answers away;
- in each cell tagged `reference` (the notebook's own version of a function an exercise asks for), the
  `def <name>` is replaced by `<name> = my_<name>` and `require_exercise(N, "<name>")`: from there on the
  notebook runs the student's function;
- a folded cell after the exercises' shared helper defines `require_exercise` and an IPython input transformer
  that, while an exercise the notebook needs is not right yet, turns every later cell into a print saying
  "Skipped: this cell needs your ... (exercise N)"; the exercises' checks and the student's cells still run;
- the Colab and Kaggle badges, which open the public full notebook (solutions included), are removed, or point
  where the teacher says (`--badge-url`, `--colab-url`, `--kaggle-url`);
- the edition gets its own words: an intro after the title (what to do, what is graded and how, which file to
  hand in, what not to change, and a table of what waits for which exercise, computed from the reference
  cells), and the sentences of the master that describe the full notebook (folded solutions, "the notebook's
  own version follows", "skipping one is fine", the express path) are rewritten or left out
  (`edition_words`);
- the printout a value exercise is worked from (the worked example's, for the gradient by hand), made by a cell
  the edition skips until earlier exercises are right, is carried as a labelled static copy after that cell;
- a folded one-line cell after the intro makes a run from the top start unblocked;
- by default it is the graded edition: the checks of the exercises that ask for a value confirm the answer's form
  only and hold no fingerprint of it (teacher/graded_edition.py); `--practice` keeps the master's checks, with
  their instant verdicts (a loop can find those answers: not for marks). The intro says which edition it is.
- the optional parts' switches (`RUN_GOING_FURTHER`, `RUN_GOING_DEEPER`, `RUN_APPENDIX`) start off, since no grade
  depends on them, so that *Run all* trains only the core; the intro says so, and how long the assignment takes;
- only the notebook's own cells wait for an exercise (the plumbing knows them by a fingerprint of their code):
  a cell the student adds, or changes, always runs.

The exercise conventions it relies on are in `find_exercises`; the tests are in tests/test_teacher.py.
"""

import argparse
import ast
import copy
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import graded_edition as graded
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


NOTE = """**This is the student edition of the notebook: your copy, to work in and to hand in.** It holds no
solutions, and where an exercise asks you to write a function, the notebook has no version of its own: from that
exercise on it runs **yours**.

**What to do.** Work from the top. At each exercise, write your code or value in its cell in place of `None` and
run the cell: its check says "not attempted yet", "wrong" (and why) or "right". OPENING

**How long.** The graded exercises run from section 4 to section 13.1 (exercise 10) and 15.1 (exercise 11): about
4.5-5 hours for a first reading with every exercise (Part 1 with its 9 exercises 3.5-4 hours, then sections 12-13.1
and 15.1). The rest of sections 13-16 and the appendix are optional reading.

**What you can switch off.** No setting changes your grade: the grader runs your notebook again with its own small
settings and judges only your answers. This edition starts with the optional parts' training off
(`RUN_GOING_FURTHER`, `RUN_GOING_DEEPER` and `RUN_APPENDIX` are `False` in section 2; set one to `True` to see that
part trained), so *Run all* trains only the core: about a minute on 2 CPU cores. `SPREAD_SEEDS = 1` (section 10.1's
extra seeds) and a smaller `EPOCHS` (section 8's training) shorten it further.

**What is graded.** EXERCISE_COUNT exercises, each right or not (your teacher says how many points each is
worth):

EXERCISE_TABLE

The checks in this notebook are a **preview**. After you hand the notebook in, the grader runs it again and
judges what each of your answers ends up being, outside the notebook, on the cases the checks use and on hidden
ones of its own: an answer that is right only for the cases shown here can still be graded wrong.

**What to hand in.** This notebook, as an `.ipynb` file: in Colab or Kaggle *File > Download > Download .ipynb*,
in Jupyter *File > Download*. Not a PDF, not a `.py` export.

**Keep the notebook's cells.** Don't delete, rename or reorder cells, don't rename your answers
(`EXAMPLE_NAMES`, ...) and don't change the check cells (the folded ones titled "Check for exercise N"): the
grader finds your answers by them. You may add cells of your own to try things: they always run (an exact copy of
one of the notebook's own cells waits as the original does).

**If something breaks.** A `NameError` in an exercise's cell (after a restart the kernel has forgotten every cell):
run the cells above it first (Jupyter: *Run > Run All Above Selected Cell*; Colab: *Runtime > Run before*); the
verdicts already given are kept. A check cell deleted by mistake: *Edit > Undo Delete Cell* (Jupyter, or the key
`z`; Colab: *Edit > Undo*, Ctrl+M Z), or copy it from a fresh copy of this file (your teacher has it); the grader
puts every check cell back before it grades, so a deleted one costs you nothing there.

**What waits for which exercise.** From an exercise that asks for a function on, the notebook runs your function,
so a cell of the notebook after it does not run until that exercise is right: it says *Skipped: this cell needs
your ... (exercise N), which is not right yet*. The exercises' own cells and their checks still run (unless they
need something a skipped cell makes), and so do the cells you add, so *Run all* works at any point. Get the
exercise right, then run the cells below it again (or *Run all*).

DEPENDENCY_TABLE"""

RESET = """# @title Student edition: a run from the top starts with no exercise holding it up
STUDENT_EDITION_BLOCKS = {}  # exercise number -> your function the cells below wait for"""

PLUMBING = '''# @title Student edition: cells that need an exercise you have not got right yet are skipped
import ast
import builtins
import hashlib
import re

# the notebook's own code cells, by a fingerprint of their code: only they wait for an exercise; yours always run
NOTEBOOK_CELLS = set(CELL_FINGERPRINTS)
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


def cell_fingerprint(text):
    """A short fingerprint of a cell's code, blind to trailing spaces and to blank lines at either end."""
    lines = [line.rstrip() for line in text.splitlines()]
    return hashlib.sha256("\\n".join(lines).strip("\\n").encode()).hexdigest()[:16]


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
        if cell_fingerprint(text) not in NOTEBOOK_CELLS:  # a cell you added or changed: it runs as you wrote it
            return lines
        if _ALWAYS_RUN.search(text) and not own and not (here and _missing_names(text)):
            return lines
        n = min(waiting)
        message = (
            f"Skipped: this cell needs your {waiting[n]} (exercise {n}), which is not right yet. "
            "Fix it above, then run the cells again."
        )
        also = [f"your {waiting[k]} (exercise {k})" for k in sorted(waiting) if k != n]
        if also:
            message += " It also waits for " + ", ".join(also) + "."
        return [line for line in lines if _kept(line)] + [f"print({message!r})\\n"]
    except Exception:  # never stand between you and your cell
        return lines


_transformers = get_ipython().input_transformers_post
_transformers[:] = [t for t in _transformers if getattr(t, "__name__", None) != "skip_cells_waiting_for_an_exercise"]
_transformers.append(skip_cells_waiting_for_an_exercise)  # once, also when this cell runs again'''


def cell_fingerprint(text):
    """A short fingerprint of a cell's code, blind to trailing spaces and to blank lines at either end (the same
    function as the plumbing's, which fingerprints a cell's code as the kernel gets it)."""
    lines = [line.rstrip() for line in text.splitlines()]
    return hashlib.sha256("\n".join(lines).strip("\n").encode()).hexdigest()[:16]


OPTIONAL_PARTS = re.compile(r"^(RUN_GOING_FURTHER|RUN_GOING_DEEPER|RUN_APPENDIX) = True\b[ \t]*(#[ \t]*)?(.*)$", re.M)


def optional_parts_off(text):
    """The settings cell with the optional parts' switches False: no grade depends on them (the grader sets its own)."""

    def off(match):
        said = match.group(3).split(";")[0].strip()
        return f"{match.group(1)} = False  # {said + '; ' if said else ''}True runs it (no grade depends on it)"

    return OPTIONAL_PARTS.sub(off, text)


BADGE = re.compile(r"\[!\[Open [Ii]n (Colab|Kaggle)\]\(([^)\s]*)\)\]\(([^)\s]*)\)[ \t]*\n?")
GITHUB_BLOB = re.compile(r"^https://github\.com/([^/\s]+/[^/\s]+)/blob/(\S+\.ipynb)$")
OPEN_IT = (
    "Open it in Jupyter, JupyterLab or VS Code, or upload it to Colab (*File > Upload notebook*) or Kaggle "
    "(*File > Import notebook*); opened alone, it finds MNIST through Kaggle (kagglehub)."
)


def badge_urls(badge_url=None, colab_url=None, kaggle_url=None):
    """{"Colab": url, "Kaggle": url} for the badges the edition keeps (none by default).

    badge_url is the edition's own address on GitHub (https://github.com/OWNER/REPO/blob/BRANCH/student.ipynb):
    both badges open it; colab_url and kaggle_url set one badge's link as given.
    """
    urls = {}
    if badge_url:
        match = GITHUB_BLOB.match(badge_url)
        if not match:
            raise ValueError(
                f"--badge-url must be the edition's address on GitHub, "
                f"https://github.com/OWNER/REPO/blob/BRANCH/FILE.ipynb, not {badge_url!r}: "
                "use --colab-url and --kaggle-url for other addresses"
            )
        urls["Colab"] = f"https://colab.research.google.com/github/{match.group(1)}/blob/{match.group(2)}"
        urls["Kaggle"] = f"https://kaggle.com/kernels/welcome?src={badge_url}"
    if colab_url:
        urls["Colab"] = colab_url
    if kaggle_url:
        urls["Kaggle"] = kaggle_url
    return urls


def set_badges(text, urls):
    """The markdown with each Colab/Kaggle badge pointing at urls[kind], or removed when urls has no such kind."""

    def badge(match):
        kind, image = match.group(1), match.group(2)
        if kind not in urls:
            return ""
        return f"[![Open In {kind}]({image})]({urls[kind]})" + ("\n" if match.group(0).endswith("\n") else "")

    if not BADGE.search(text):
        return text
    return re.sub(r"\n{3,}", "\n\n", BADGE.sub(badge, text))


# The edition's own words. The master describes the full notebook: folded solutions, its own version of every
# function after the exercise, an express path of two exercises with "Run all runs the whole notebook either way".
# In the edition none of that is true. Whole paragraphs, phrases and sentences are replaced in order; any
# sentence that still says one of CONTRADICTS is left out.
PARAGRAPHS = [re.compile(r"^\*\*The express path\b"), re.compile(r"^\w+ new readers estimated this path\b")]  # left out
EXPRESS_BLOCK = re.compile(r"<details><summary><b>The express path\b.*?</details>[ \t]*\n*", re.S)  # folded, left out
PHRASES = [  # (pattern, the edition's words)
    (re.compile(r"\s*\(how: the README\)"), ""),  # the README is the repository's, which students do not get
    (re.compile(r";?[ \t]*\*\*express path[^|*\n]*\*\*"), ""),  # the express path's time in the parts' table
    (
        re.compile(
            r",?\s+(and\s+)?about\s+[\d.\-–]+\s+hours?\s+(for|on)\s+the\s+express\s+path(\s+above\b|\s+\(above\))?"
        ),
        "",
    ),
    (re.compile(r",?\s+and\s+a\s+(folded\s+)?solution\s+\([^)]*\)"), ""),  # "and a solution (click to open; ...)"
    (
        re.compile(r"\*before\*\s+the\s+notebook's\s+own\s+version(\s+of\s+what\s+they\s+ask)?"),
        "*before* the notebook uses it",
    ),
    (re.compile(r",?\s+as\s+the\s+Colab\s+badge\s+opens\s+it,"), ","),
]
SENTENCES = [  # (a sentence that says this, the sentence the edition says instead)
    (
        re.compile(r"folded\s+solution|own\s+version\s+follows,\s+so\s+skipping"),
        "**Exercises** come *before* the notebook uses what they ask: each has a hint and a check that says right "
        "or wrong and why. From an exercise that asks for a function on, the notebook runs yours (the note at the "
        "top says what waits for which exercise).",
    ),
    (
        re.compile(r"own\s+version\s+follows"),
        "Then the notebook runs your version: the rest of the notebook uses it, and waits until it is right.",
    ),
    (
        re.compile(r"[Ss]kipping\s+one\s+is\s+fine"),
        "Don't skip one: *Run all* still works, but the cells after an exercise that asks for a function wait "
        "until it is right (the note at the top says which).",
    ),
    (re.compile(r"notebook's\s+version\s+clips"), ""),  # the clipped log of the notebook's own cross_entropy
]
CONTRADICTS = re.compile(
    r"express\s+path|folded\s+solution|solution\s+\(click|Solution\s+to\s+exercise|own\s+version\s+follows|"
    r"notebook's\s+(own\s+)?version|skipping\s+one|loses\s+nothing|whole\s+notebook\s+either\s+way|Colab\s+badge",
    re.I,
)
SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)(?=[A-Z*(`\"$])|(?<=[.!?][*)\"])(\s+)(?=[A-Z*(`\"$])")


def edition_words(text):
    """A markdown cell of the master in the edition's words: what describes the full notebook rewritten or left out.

    Paragraphs that say nothing of the kind are kept as they are, with the blank lines between them.
    """
    text = EXPRESS_BLOCK.sub("", text)
    parts = re.split(r"(\n{2,})", text)  # paragraph, blank lines, paragraph, ...
    kept = []
    for at in range(0, len(parts), 2):
        paragraph = parts[at]
        if any(p.search(paragraph) for p in PARAGRAPHS):
            continue
        for pattern, words in PHRASES:
            paragraph = pattern.sub(words, paragraph)
        if CONTRADICTS.search(paragraph) or any(p.search(paragraph) for p, _ in SENTENCES):
            sentences = SENTENCE_END.split(paragraph)[0::3]  # each sentence is followed by two groups: the space
            said = [next((words for p, words in SENTENCES if p.search(one)), one) for one in sentences]
            paragraph = " ".join(one for one in said if one and not CONTRADICTS.search(one))
        if paragraph.strip():
            kept += [parts[at - 1] if at and kept else "", paragraph]
    return "".join(kept)


def section_of(nb, index):
    """The section holding cell `index`, from the last heading before it: "section 5.3", or its title."""
    for cell in reversed(nb["cells"][: index + 1]):
        if cell["cell_type"] == "markdown":
            headings = re.findall(r"^#{1,3} +(.+?)\s*$", source(cell), re.M)
            if headings:
                number = re.match(r"(\d+(\.\d+)*)\.?\s", headings[-1])
                return f"section {number.group(1)}" if number else f"*{headings[-1]}*"
    return "the top"


def names_in(text):
    """(names the cell assigns at its top level, names it defines there, names it reads that it never binds)."""
    try:
        tree = ast.parse(python_source(text))
    except SyntaxError:
        return set(), set(), set()
    assigned, defined, loaded, bound = set(), set(), set(), set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            targets = getattr(node, "targets", []) + [t for t in [getattr(node, "target", None)] if t is not None]
            assigned.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return assigned, defined, loaded - bound


def first_reference(exercises):
    """{exercise number: index of its first reference cell} for the exercises whose function the notebook uses."""
    return {n: ex.references[0] for n, ex in exercises.items() if ex.references}


def waiting_for(exercises, index):
    """The exercises whose function the notebook starts using before cell `index`: the edition runs that cell only
    once they are right."""
    return [n for n, i in first_reference(exercises).items() if i < index]


def dependencies(nb, exercises):
    """{n: later exercises whose own cells need something that only cells after exercise n's first reference make}.

    Those cells are skipped while exercise n is not right, so such a later exercise cannot be checked before.
    """
    firsts = first_reference(exercises)
    made_at = [set().union(*names_in(source(c))[:2]) if c["cell_type"] == "code" else set() for c in nb["cells"]]
    waits = {n: [] for n in firsts}
    for k, ex in exercises.items():
        own = [i for i in (ex.check, ex.answer) if i is not None]
        needed = set().union(*(names_in(source(nb["cells"][i]))[2] for i in own))
        for name in needed:
            makers = [i for i in range(min(own)) if name in made_at[i]]
            if not makers:
                continue
            for n, first in firsts.items():
                if n != k and first < makers[-1] and k not in waits[n]:
                    waits[n].append(k)
    return {n: sorted(ks) for n, ks in waits.items()}


def worked_from(nb, exercises):
    """[(cell index, exercise number)]: the printouts an exercise that asks for a value is worked from (a cell
    between its task and its cell, or one that makes a name its task names), made by cells the edition skips until
    earlier exercises are right. The edition carries a copy of each."""
    firsts = first_reference(exercises)
    if not firsts:
        return []
    found = []
    for n, ex in exercises.items():
        if ex.function_name:
            continue  # a function is worked from its own code
        named = set(re.findall(r"`([A-Za-z_]\w*)`", source(nb["cells"][ex.task])))
        cells = [i for i in range(ex.task + 1, ex.answer) if not nb["cells"][i].get("metadata", {}).get("exercise")]
        for name in named:
            makers = [i for i in range(ex.task) if nb["cells"][i]["cell_type"] == "code"]
            makers = [i for i in makers if name in names_in(source(nb["cells"][i]))[0]]  # assigned, not a def
            cells += makers[-1:]
        for i in sorted(set(cells)):
            if nb["cells"][i]["cell_type"] == "code" and i > min(firsts.values()) and printout(nb["cells"][i]):
                found.append((i, n))
    return found


def printout(cell):
    """What a code cell printed in the master's run: its stdout and the text of its last expression."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            parts.append(output["text"] if isinstance(output["text"], str) else "".join(output["text"]))
        elif output.get("output_type") == "execute_result" and "text/plain" in output.get("data", {}):
            text = output["data"]["text/plain"]
            parts.append((text if isinstance(text, str) else "".join(text)) + "\n")
    return "".join(parts)


def numbers(ns):
    """[1, 2, 4] -> "1, 2 and 4"."""
    ns = [str(n) for n in ns]
    return ns[0] if len(ns) == 1 else ", ".join(ns[:-1]) + " and " + ns[-1]


def printout_cell(nb, exercises, index, n):
    """The labelled static copy of cell `index`'s printout in the master, for exercise n."""
    blocks = numbers(waiting_for(exercises, index))
    text = (
        f"**The printout of the cell above, as the full notebook prints it** (a copy, for exercise {n}). In this "
        f"edition the cell above runs once exercises {blocks} are right, since it uses your functions; until "
        f"then, work exercise {n} from this copy:\n\n```text\n{printout(nb['cells'][index]).rstrip()}\n```"
    )
    cell = nbformat.v4.new_markdown_cell(text)
    of = nb["cells"][index].get("id", index)  # the id of the cell it copies
    cell["id"], cell["metadata"] = f"student-edition-printout-{of}"[:64], {"student_edition": True, "printout_of": of}
    return cell


def intro(master, exercises, badges):
    """The edition's own first cell: what to do, what is graded and how, what to hand in, what not to change, and
    which exercises the rest waits for (from the master's reference cells)."""
    graded = "\n".join(f"| {n} | {ex.title or ex.learner_name} | `{ex.learner_name}` |" for n, ex in exercises.items())
    table = "| exercise | what | your answer |\n|---|---|---|\n" + graded
    waits = dependencies(master, exercises)
    copies = worked_from(master, exercises)
    rows = []
    for n, first in first_reference(exercises).items():
        ex = exercises[n]
        what = ["every later cell except the exercises' own"]
        worked = sorted({k for i, k in copies if n in waiting_for(exercises, i)})
        if worked:
            what[0] += f", among them what exercise{'s' * (len(worked) > 1)} {numbers(worked)} "
            what[0] += f"{'is' if len(worked) == 1 else 'are'} worked from (a printed copy is there)"
        what += [f"exercise {k}'s check" for k in waits[n]]
        rows.append(
            f"| {n}: `{ex.learner_name}` | your `{ex.function_name}`, from {section_of(master, first)} on "
            f"| {'; '.join(what)} |"
        )
    dependency = ""
    if rows:
        free = [n for n in exercises if not any(n in ks for ks in waits.values())]
        dependency = "| exercise | the notebook runs | waits for it until it is right |\n|---|---|---|\n"
        dependency += "\n".join(rows)
        if free:
            dependency += (
                f"\n\nThe checks of exercises {numbers(free)} give a verdict whatever the state of the others."
            )
    opening = (
        OPEN_IT.replace("Open it in", "The badges under the title open this edition; or open it in")
        if badges
        else OPEN_IT
    )
    names = ", ".join(f"`{ex.learner_name}`" for ex in list(exercises.values())[:2])
    return (
        NOTE.replace("OPENING", opening)
        .replace("EXERCISE_COUNT exercises", f"{len(exercises)} exercise" + "s" * (len(exercises) != 1))
        .replace("EXERCISE_TABLE", table)
        .replace("EXAMPLE_NAMES", names.strip("`"))
        .replace("DEPENDENCY_TABLE", dependency)
        .rstrip()
    )


def new_code_cell(text, cell_id):
    """A folded code cell added by this script."""
    cell = nbformat.v4.new_code_cell(text)
    cell["id"], cell["metadata"] = cell_id, {**copy.deepcopy(FOLDED), "student_edition": True}
    return cell


def build(master, badges=None, name="student.ipynb", master_name=MASTER.name, practice=False):
    """The student edition (a new notebook) made from the master notebook (a NotebookNode).

    badges: {"Colab": url, "Kaggle": url} for the badges to keep (see badge_urls); by default both are removed.
    name: the edition's file name, in place of master_name in the commands the text gives (`jupyter nbconvert ...`).
    practice: keep the master's checks of the value exercises (instant verdicts). By default the edition is the
    graded one: those checks confirm the answer's form only and hold no answer (teacher/graded_edition.py).
    """
    badges = badges or {}
    nb = copy.deepcopy(master)
    exercises = find_exercises(nb)
    if not exercises:
        raise ValueError("no exercises found: this is not the master notebook")
    if helper_index(nb) is None:
        raise ValueError("no cell defines run_check, the helper shared by the exercise checks")
    for ex in exercises.values():
        for i in ex.references:
            nb["cells"][i]["source"] = rewrite_reference(source(nb["cells"][i]), ex)
    if not practice:
        graded_value_checks(nb, exercises)  # before any cell is inserted: the exercises' indices hold
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and not {"exercise", "solution"} & set(tags(cell)):
            text = set_badges(edition_words(source(cell)), badges)
            cell["source"] = text.replace(master_name, name)  # the commands it gives run the edition
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in tags(cell):
            cell["source"] = optional_parts_off(source(cell))
    for i, n in reversed(worked_from(master, exercises)):
        nb["cells"].insert(i + 1, printout_cell(master, exercises, i, n))
    checks = json.dumps({ex.check_name: ex.number for ex in exercises.values()})
    own = sorted({cell_fingerprint(python_source(source(c))) for c in nb["cells"] if c["cell_type"] == "code"})
    plumbing = PLUMBING.replace("CHECK_NUMBERS", checks).replace("CELL_FINGERPRINTS", json.dumps(own))
    plumbing = new_code_cell(plumbing, PLUMBING_ID)
    nb["cells"].insert(helper_index(nb) + 1, plumbing)
    note = nbformat.v4.new_markdown_cell(graded.with_intro_words(intro(master, exercises, badges), exercises, practice))
    note["id"], note["metadata"] = NOTE_ID, {"student_edition": True}
    title = 1 if nb["cells"] and nb["cells"][0]["cell_type"] == "markdown" else 0
    nb["cells"][title:title] = [note, new_code_cell(RESET, RESET_ID)]

    TagRemovePreprocessor(remove_cell_tags={"solution"}).preprocess(nb, {})
    ClearOutputPreprocessor(remove_metadata_fields={"collapsed", "scrolled", "execution"}).preprocess(nb, {})
    nb["metadata"].pop("widgets", None)  # saved widget state is output too
    nb["metadata"].pop("papermill", None)
    nb["metadata"]["student_edition"] = {"kind": "practice" if practice else "graded"}
    return nb


def graded_value_checks(nb, exercises):
    """In place: each value exercise's check replaced by the graded edition's (its form only, no answer held), and
    its task told so."""
    for ex in exercises.values():
        if graded.is_value_exercise(ex):
            check, task = nb["cells"][ex.check], nb["cells"][ex.task]
            stub = python_source(source(nb["cells"][ex.answer]))
            check["source"] = graded.graded_check(python_source(source(check)), ex, stub)
            task["source"] = source(task).rstrip() + graded.task_note(ex)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("master", nargs="?", default=str(MASTER), help="the master notebook (default: %(default)s)")
    parser.add_argument("-o", "--output", default="student.ipynb", help="where to write it (default: %(default)s)")
    parser.add_argument(
        "--badge-url",
        metavar="URL",
        help="the edition's own address on GitHub (https://github.com/OWNER/REPO/blob/BRANCH/student.ipynb): the "
        "Colab and Kaggle badges open it. Without it (or --colab-url/--kaggle-url) the badges are removed: the "
        "master's open the public full notebook, solutions included",
    )
    parser.add_argument("--colab-url", metavar="URL", help="where the Colab badge points (default: removed)")
    parser.add_argument("--kaggle-url", metavar="URL", help="where the Kaggle badge points (default: removed)")
    parser.add_argument(
        "--practice",
        action="store_true",
        help="the practice edition: the value exercises' checks say right or wrong at once, so a loop can find their "
        "answers; not for marks. By default the graded edition: those checks confirm the answer's form only",
    )
    args = parser.parse_args(argv)
    try:
        badges = badge_urls(args.badge_url, args.colab_url, args.kaggle_url)
    except ValueError as e:
        parser.error(str(e))
    master = nbformat.read(args.master, as_version=4)
    exercises = find_exercises(master)
    unrun = not any(printout(c) for c in master.cells if c.cell_type == "code")
    edition = build(master, badges, Path(args.output).name, Path(args.master).name, practice=args.practice)
    nbformat.validate(edition)
    nbformat.write(edition, args.output)
    carried = sum(1 for ex in exercises.values() if ex.references)
    kept = ", ".join(badges) or "none (removed)"
    print(
        f"wrote {args.output}: {len(exercises)} exercises, no solutions, no outputs; "
        f"{carried} of them carry the rest of the notebook; badges: {kept}"
    )
    print(edition_kind_words(exercises, args.practice))
    if unrun:
        print("warning: the master has no outputs: the printouts some exercises are worked from are not carried")


def edition_kind_words(exercises, practice):
    """What the script says of the edition it wrote: graded or practice, and what that means for marks."""
    values = [n for n, ex in exercises.items() if graded.is_value_exercise(ex)]
    values = f"exercise{'s' * (len(values) != 1)} {graded.numbers(values)}" if values else "no exercise"
    if practice:
        return (
            f"practice edition: the checks of {values} (values) say right or wrong at once, "
            "so a loop can find their answers: not for marks (without --practice: the graded edition)"
        )
    return (
        f"graded edition: the checks of {values} (values) confirm the form only and hold no "
        "answer; the grader judges them (with --practice: instant verdicts, not for marks)"
    )


if __name__ == "__main__":
    sys.exit(main())
