"""Grade submitted notebooks: per exercise a verdict and points, a gradebook row and a feedback file per student.

    python teacher/grade.py SUBMISSIONS [-o grades.csv] [--points 1] [--only STUDENT] [--jobs N]
                            [--cell-timeout S] [--notebook-timeout S] [--memory BYTES] [--executed DIR]
                            [--master NOTEBOOK] [--hidden-tests FILE] [--seed N] [--data-dir DIR] [--no-sandbox]

SUBMISSIONS is one notebook, or a folder holding one file per student or one folder per student (as LMS and
Gradescope exports have them). For each submission:

1. Prepare it, like nbgrader's "overwrite cells" step: the cells a student should not change (the exercises'
   checks, the helper they share, the student edition's plumbing) are put back from the student edition built
   from the master, found by exercise number, cell id or title; each learner's cell ends with its check's call.
   Small settings go in after the `parameters` cell (1 epoch on 2,000 images, the optional parts off, every file
   written into the scratch folder, the data read from the data folder). The student's functions carry the run,
   as in the student edition.
2. Run it in a sandbox (teacher/sandbox.py: bubblewrap, no network, no view of your files, a cleared
   environment, a memory limit) with nbclient (teacher/sandbox_runner.py): errors allowed, a time limit per cell
   (the kernel is interrupted) and per notebook (the sandbox is killed). Then one last cell of the grader's own
   (teacher/collect.py) collects, for each exercise, the values of the learner's final answer (the last
   definition, as after Run all) on the public cases and on hidden ones (teacher/hidden_tests.py), as data.
3. Judge outside the kernel (teacher/judge.py): the master's verdict_N on those values. Nothing the kernel prints
   decides a grade. A file that is not a notebook of this lesson is "not gradable", with why.
"""

import argparse
import ast
import base64
import copy
import csv
import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbformat.corpus.words import generate_corpus_id

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import collect  # noqa: E402
import judge  # noqa: E402
import sandbox  # noqa: E402
import student_edition as se  # noqa: E402

STATUSES = ["right", "wrong", "not attempted", "did not run", "not gradable"]
SKIPPED = re.compile(r"^Skipped: this cell needs your (.+?), which is not right yet\.", re.M)
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
GRADES_COLUMNS = ["student", "id", "exercise", "title", "status", "points", "detail"]
NOT_NOTEBOOKS = {
    ".py": "a Python script (a .py export of the notebook), not the notebook",
    ".html": "an HTML export of the notebook, not the notebook",
    ".pdf": "a PDF, not the notebook",
    ".zip": "a zip archive, not the notebook",
    ".md": "a Markdown export of the notebook, not the notebook",
}
# LMS exports: Canvas names each file <lastfirst>[_late]_<user id>_<submission id>_<original name>, Moodle names each
# folder (or file) <Full Name>_<participant id>_assignsubmission_file_[<original name>]
CANVAS = re.compile(r"^(?P<name>[a-z][a-z0-9-]*?)(?:_late)?_(?P<id>\d+)_\d+_(?P<original>.+)$", re.I)
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_?(?P<original>.*)$")


class NotGradable(Exception):
    """The submission cannot be graded; the message says why."""


@dataclass
class Submission:
    student: str
    id: str
    path: Path | None  # None: a folder with no notebook (`problem` says why)
    problem: str = ""


@dataclass
class Prepared:
    """A submission ready to run: the notebook, and the learner's cell of each exercise found in it."""

    nb: nbformat.NotebookNode
    learner_cells: dict = field(default_factory=dict)  # exercise number -> cell index


def position(cells, cell):
    """Index of this very cell object (cells equal in content are different cells)."""
    return next(i for i, c in enumerate(cells) if c is cell)


def first_line(text, width=50):
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


# ---------------------------------------------------------------------------------------------- the submissions


def student_of(name):
    """(student, LMS id) from a file or folder name: Canvas's and Moodle's patterns, else the name itself."""
    stem = name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else Path(name).stem if "." in name else name
    for pattern in (CANVAS, MOODLE):
        match = pattern.match(name)
        if match:
            return match.group("name"), match.group("id")
    return stem, ""


def notebooks_in(folder):
    """The notebooks in a student's folder, at any depth (no hidden folders, no .ipynb_checkpoints)."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_file() and not any(p.startswith(".") for p in parts) and path.suffix.lower() == ".ipynb":
            found.append(path)
    return found


def gradescope_names(folder):
    """{submission folder: (name, id)} from a Gradescope export's submission_metadata.yml, if there is one."""
    metadata = folder / "submission_metadata.yml"
    if not metadata.exists():
        return {}
    try:
        import yaml

        data = yaml.safe_load(metadata.read_text(encoding="utf-8")) or {}
        names = {}
        for key, entry in data.items():
            submitter = (entry.get(":submitters") or [{}])[0]
            names[str(key)] = (str(submitter.get(":name") or key), str(submitter.get(":sid") or ""))
        return names
    except Exception:  # no PyYAML, or another layout: the folder names stand for the students
        return {}


def find_submissions(path, warn):
    """The submissions at `path` (a file, or a folder of files and folders), each with its student."""
    path = Path(path)
    if path.is_file():
        return [Submission(*student_of(path.name), path)]
    if not path.is_dir():
        raise SystemExit(f"grade.py: {path} does not exist")
    gradescope = gradescope_names(path)
    found = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or entry.name == "submission_metadata.yml":
            continue
        if entry.is_file():
            found.append(Submission(*student_of(entry.name), entry))
            continue
        student, lms_id = gradescope.get(entry.name) or student_of(entry.name)
        notebooks = notebooks_in(entry)
        files = sorted(p for p in entry.rglob("*") if p.is_file() and not p.name.startswith("."))
        if len(notebooks) == 1 or len(files) == 1:
            file = notebooks[0] if len(notebooks) == 1 else files[0]
            found.append(Submission(student, lms_id or student_of(file.name)[1], file))
        else:
            listed = ", ".join(p.relative_to(entry).as_posix() for p in (notebooks or files)[:5]) or "it is empty"
            why = "several notebooks" if notebooks else "no notebook"
            problem = f"{why} in the folder {entry.name}/ ({listed}): hand in one .ipynb file"
            warn(f"warning: {entry.name}/: {problem.split(' (')[0]}")
            found.append(Submission(student, lms_id, None, problem))
    seen = {}
    for sub in found:  # the same student twice (two files): keep both, named apart
        seen[sub.student] = seen.get(sub.student, 0) + 1
        if seen[sub.student] > 1:
            sub.student = f"{sub.student}-{seen[sub.student]}"
    return found


# ---------------------------------------------------------------------------------------------- preparing


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
    return Prepared(nb, learner_cells)


def final_cell(checks, hidden, values_path, seconds):
    """The grader's last cell: collect.py and its payload, base64-encoded (no cell of the student's matches it).

    Its first line names STUDENT_EDITION_BLOCKS: the edition's plumbing runs such a cell even while an exercise
    holds the notebook up.
    """
    payload = {
        "helper": checks.helper,
        "checks": {str(n): c.source for n, c in checks.checks.items()},
        "answers": {str(n): c.answer_name for n, c in checks.checks.items()},
        "hidden": {
            str(n): collect.encode([{k: v for k, v in case.items() if k != "expected"} for case in cases])
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


def hidden_for(student, checks, hidden_tests, seed):
    """{exercise: hidden cases with "expected"} for this student (a generator seeded from --seed and the name)."""
    if hidden_tests is None:
        return {}
    digest = hashlib.sha256(f"{seed}:{student}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    cases = {n: hidden_tests.hidden_cases(c.answer_name, rng) for n, c in checks.checks.items()}
    return {n: c for n, c in cases.items() if c}


# ---------------------------------------------------------------------------------------------- running


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass


def read_events(progress):
    if not progress.exists():
        return []
    events = []
    for line in progress.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


@dataclass
class Run:
    events: list
    seconds: float
    stopped_by: str | None
    values: dict | None
    garbled: str = ""


def run_submission(prepared, folder, final, token, options):
    """Run one prepared submission (sandboxed unless --no-sandbox) in `folder`; return a Run."""
    inputs, home = folder / "in", folder / "home"
    inputs.mkdir(parents=True)
    home.mkdir()
    home.chmod(0o777)  # whoever the sandbox's user maps to, it writes here
    nbformat.write(prepared.nb, inputs / "submission.ipynb")
    shutil.copy(HERE / "sandbox_runner.py", inputs / "sandbox_runner.py")
    args = [str(options.cell_timeout), str(options.final_timeout)]
    progress, log = folder / "progress.jsonl", folder / "runner.log"
    if options.no_sandbox:
        cmd, env, limit = sandbox.unsandboxed(home, inputs, options.memory, args, options.threads)
    else:
        cmd = sandbox.command(home, inputs, options.data_dir, options.memory, args, options.threads)
        env, limit = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None
    start = time.monotonic()
    with open(progress, "w") as out, open(log, "w") as err:
        child = subprocess.Popen(
            cmd,
            cwd=home,
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, killed as one
            preexec_fn=limit,
        )
        try:
            child.stdin.write(json.dumps({"final": final}).encode())
            child.stdin.close()
        except BrokenPipeError:
            pass
        stopped_by = None
        try:
            child.wait(timeout=options.notebook_timeout)
        except subprocess.TimeoutExpired:
            stopped_by = "time limit"
    # kill what is left: the sandbox (bwrap's group; its process tree dies with it); without the sandbox, the
    # kernel's group too (jupyter_client starts the kernel in a session of its own)
    for event in read_events(progress):
        if event["event"] == "kernel" and options.no_sandbox:
            kill_group(event.get("pgid"))
    kill_group(child.pid)
    child.wait()
    seconds = time.monotonic() - start
    events = read_events(progress)
    values, garbled = None, ""
    if any(e["event"] == "final" for e in events):
        try:
            values = judge.load_values(home / f".grader-{token}.json")
        except judge.Garbled as e:
            garbled = str(e)
    return Run(events, seconds, stopped_by, values, garbled)


def why_no_values(prepared, run, options):
    """Why the grader's last cell gave no values, in words."""
    cells = prepared.nb.cells
    died = next((e for e in run.events if e["event"] == "died"), None)
    started = [e for e in run.events if e["event"] in ("start", "final-start")]
    failed = next((e for e in run.events if e["event"] == "failed"), None)
    final = next((e for e in run.events if e["event"] == "final"), None)

    def where(event):
        if event.get("cell") is None or event["event"] == "final-start" or event["cell"] >= len(cells):
            return "the grader's last cell"
        return f"the cell starting {first_line(cells[event['cell']].source)!r}"

    if died:
        return f"the kernel died in {where(died)} (out of memory, or the code ended the process)"
    if run.stopped_by:
        running = f" while {where(started[-1])} ran" if started else ""
        return f"the notebook time limit ({options.notebook_timeout:g} s) passed{running}"
    if failed:
        return f"the notebook could not run: {failed['reason']}"
    if final and final["error"]:
        if final["timed_out"]:
            return f"the grader's last cell ran over its {options.final_timeout:g} s limit"
        return f"the grader's last cell failed: {final['error']}"
    if run.garbled:
        return f"the values the grader's last cell wrote could not be read: {run.garbled}"
    return "the run stopped before the grader's last cell (see the log)"


def verdict_rows(sub, exercises, checks, prepared, run, hidden, points, options):
    """The rows of one graded submission: [student, id, exercise, title, status, points, detail]."""
    why = why_no_values(prepared, run, options) if run.values is None else ""
    rows = []
    for n, ex in exercises.items():
        if run.values is None:
            status, detail = "did not run", why
        else:
            status, detail = judge.judge(checks, n, run.values.get(n), hidden.get(n))
        rows.append([sub.student, sub.id, n, ex.title, status, points[n] if status == "right" else 0, detail])
    return rows


def notes_of(prepared, run, options):
    """What went wrong outside the verdicts: cells that raised or ran too long, cells skipped while waiting."""
    notes = []
    done = [e for e in run.events if e["event"] == "done"]
    for kind, found in [
        (f"ran over the {options.cell_timeout:g} s limit (interrupted)", [e for e in done if e.get("timed_out")]),
        ("raised an error", [e for e in done if e.get("error") and not e.get("timed_out")]),
    ]:
        if found:
            cell = prepared.nb.cells[found[0]["cell"]]
            first = f"{first_line(cell.source)!r}" + (f": {found[0]['error']}" if "raised" in kind else "")
            many = f"{len(found)} cells {kind}, the first" if len(found) > 1 else f"a cell {kind}"
            notes.append(f"{many} {first}")
    waiting = sorted({e["skipped"] for e in done if e.get("skipped")})
    if waiting:
        notes.append("cells skipped while waiting for " + " and ".join(f"your {w}" for w in waiting))
    return notes


def total_row(sub, rows, notes, points):
    counts = {s: sum(1 for r in rows if r[4] == s) for s in STATUSES}
    words = [", ".join(f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s])]
    total = sum(r[5] for r in rows)
    return [
        sub.student,
        sub.id,
        "total",
        "",
        f"{counts['right']}/{len(rows)} right",
        total,
        "; ".join(w for w in words + notes if w),
    ]


# ---------------------------------------------------------------------------------------------- points and outputs


def parse_points(text, exercises):
    """{exercise: points} from --points: "1" (each), "2=3,9=2" (others 1), or a file of such lines."""
    points = dict.fromkeys(exercises, 1.0)
    if text is not None and Path(text).is_file():
        text = ",".join(
            line.split("#")[0].strip() for line in Path(text).read_text().splitlines() if line.split("#")[0].strip()
        )
    for part in filter(None, (p.strip() for p in (text or "").replace(";", ",").split(","))):
        if "=" not in part and ":" not in part and len(part.split()) == 1:
            points = dict.fromkeys(exercises, float(part))
            continue
        key, value = re.split(r"\s*[=:]\s*|\s+", part, maxsplit=1)
        n = int(key)
        if n not in exercises:
            raise SystemExit(f"grade.py: --points names exercise {n}, which the master does not have")
        points[n] = float(value)
    return {n: int(p) if float(p).is_integer() else p for n, p in points.items()}


def merge_rows(path, columns, new_rows, students, update):
    """The file's rows with these students' rows replaced (where their first row was), or only the new rows."""
    if not (update and path.exists()):
        return new_rows
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        old = list(reader) if header == columns else []
    if header != columns:
        print(f"note: {path} has other columns: written anew", file=sys.stderr)
    merged, placed = [], False
    for row in old:
        if row and row[0] in students:
            if not placed:
                merged += new_rows
                placed = True
            continue
        merged.append(row)
    return merged if placed else merged + new_rows


def write_csv(path, columns, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)


def gradebook_row(sub, rows, exercises, points, note=""):
    got = {r[2]: r[5] for r in rows if r[2] in exercises}
    total = sum(got.values())
    return [sub.student, sub.id, *[got.get(n, 0) for n in exercises], total, sum(points.values()), note]


def feedback_text(sub, rows, total, points, exercises):
    """The student's feedback: each verdict and its reason (the checks' words; never reference code)."""
    lines = [f"# Feedback for {sub.student}", ""]
    if rows and rows[0][2] == "all":
        return "\n".join(lines + [f"Not graded: {rows[0][6]}.", "", f"Points: 0 of {sum(points.values())}", ""])
    lines += [f"Points: {total[5]} of {sum(points.values())} ({total[4]})", ""]
    for r in rows:
        lines += [f"## Exercise {r[2]}: {r[3]} ({r[5]}/{points[r[2]]} points)", "", f"**{r[4]}**: {r[6]}", ""]
    if total[6]:
        lines += ["## Notes", "", total[6], ""]
    return "\n".join(lines)


def safe_name(student):
    return re.sub(r"[^\w.-]", "_", student)


def summary(rows, exercises, seconds, max_points):
    """One line per student: one column per exercise (R right, W wrong, - not attempted, ! did not run), the points
    and the time it took."""
    mark = {"right": "R", "wrong": "W", "not attempted": "-", "did not run": "!"}
    students = list(dict.fromkeys(r[0] for r in rows))
    width = max([len(s) for s in students] + [7])
    lines = [f"{'student':<{width}}  " + " ".join(f"{n:>2}" for n in exercises) + "   points    time"]
    for student in students:
        mine = {r[2]: r for r in rows if r[0] == student}
        if "all" in mine:
            lines.append(f"{student:<{width}}  not gradable: {mine['all'][6]}")
            continue
        marks = " ".join(f"{mark[mine[n][4]]:>2}" for n in exercises)
        score = f"{mine['total'][5]:g}/{max_points:g}"
        lines.append(f"{student:<{width}}  {marks}  {score:>7}  {seconds.get(student, 0):5.0f} s")
    lines.append("R right, W wrong, - not attempted, ! did not run (grades.csv and the feedback files say why)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- grading


def grade(submissions, options, only=None):
    """Grade the submissions; write grades.csv, gradebook.csv and the feedback files; return grades.csv's rows."""
    master = nbformat.read(options.master, as_version=4)
    edition = se.build(master)
    exercises = se.find_exercises(edition)
    checks = judge.MasterChecks(master)
    points = parse_points(options.points, exercises)
    hidden_tests = None if options.hidden_tests == "none" else load_hidden_tests(options.hidden_tests)
    found = find_submissions(submissions, lambda text: print(text, file=sys.stderr, flush=True))
    single = Path(submissions).is_file()
    output = Path(options.output)
    gradebook = Path(options.gradebook) if options.gradebook else output.with_name("gradebook.csv")
    feedback = Path(options.feedback) if options.feedback else output.with_name("feedback")
    ours = [p.resolve() for p in (output, gradebook, feedback, Path(options.executed or feedback))]
    found = [  # the grader's own outputs, when written into the submissions folder, are no submission
        s for s in found if not (s.path and any(s.path.resolve() == p or p in s.path.resolve().parents for p in ours))
    ]
    if only:
        found = [s for s in found if s.student in only or (s.path and s.path.name in only)]
        if not found:
            raise SystemExit(f"grade.py: no submission of {', '.join(only)} in {submissions}")
    if not found:
        print(f"warning: {submissions} holds no submission", file=sys.stderr)
    settings = {**SMALL_SETTINGS, **SCRATCH_PATHS}
    settings["DATA_DIR"] = str(Path(options.data_dir).resolve()) if options.no_sandbox else sandbox.DATA
    scratch = Path(tempfile.mkdtemp(prefix="grading-"))
    seconds = {}

    def one(index_sub):
        index, sub = index_sub
        try:
            if sub.path is None:
                raise NotGradable(sub.problem)
            prepared = prepare(sub.path, edition, settings)
        except NotGradable as e:
            return [[sub.student, sub.id, "all", "", "not gradable", 0, str(e)]], None
        token = secrets.token_hex(16)
        home = str(scratch / f"{index:03d}-{safe_name(sub.student)}" / "home") if options.no_sandbox else sandbox.HOME
        hidden = hidden_for(sub.student, checks, hidden_tests, options.seed)
        final = final_cell(checks, hidden, f"{home}/.grader-{token}.json", options.answer_timeout)
        folder = scratch / f"{index:03d}-{safe_name(sub.student)}"
        run = run_submission(prepared, folder, final, token, options)
        seconds[sub.student] = run.seconds
        if options.executed and (folder / "home" / "executed.ipynb").exists():
            Path(options.executed).mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / "home" / "executed.ipynb", Path(options.executed) / f"{safe_name(sub.student)}.ipynb")
        rows = verdict_rows(sub, exercises, checks, prepared, run, hidden, points, options)
        final = next((e for e in run.events if e["event"] == "final"), {})
        peak = f" (the kernel's address space peaked at {final['peak']} MB)" if final.get("peak") else ""
        print(f"graded {sub.student} in {run.seconds:.1f} s{peak}", file=sys.stderr, flush=True)
        return rows, total_row(sub, rows, notes_of(prepared, run, options), points)

    try:
        with ThreadPoolExecutor(max_workers=options.jobs) as pool:
            results = list(pool.map(one, enumerate(found)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows, book = [], []
    feedback.mkdir(parents=True, exist_ok=True)
    for sub, (mine, total) in zip(found, results):
        rows += mine + ([total] if total else [])
        note = mine[0][6] if total is None else ""
        book.append(gradebook_row(sub, mine, exercises, points, f"not gradable: {note}" if note else ""))
        text = feedback_text(sub, mine, total, points, exercises)
        (feedback / f"{safe_name(sub.student)}.md").write_text(text, encoding="utf-8")
    update = single or bool(only)
    students = {sub.student for sub in found}
    write_csv(output, GRADES_COLUMNS, merge_rows(output, GRADES_COLUMNS, rows, students, update))
    book_columns = ["student", "id", *[f"exercise {n}" for n in exercises], "total", "max", "note"]
    write_csv(gradebook, book_columns, merge_rows(gradebook, book_columns, book, students, update))
    print(summary(rows, exercises, seconds, sum(points.values())))
    how = "updated" if update else "wrote"
    print(f"{how} {output} and {gradebook} ({len(found)} submissions), feedback in {feedback}/")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", help="a notebook, or a folder of submissions (a file or a folder each)")
    parser.add_argument("-o", "--output", default="grades.csv", help="per-exercise CSV (default: %(default)s)")
    parser.add_argument("--gradebook", help="one row per student (default: gradebook.csv next to --output)")
    parser.add_argument("--feedback", help="folder of feedback files (default: feedback/ next to --output)")
    parser.add_argument("--points", help='points per exercise: "1" each (default), "2=3,9=2", or a file of N=points')
    parser.add_argument("--only", action="append", help="grade only this student (repeatable): updates the CSVs")
    parser.add_argument("--master", default=str(se.MASTER), help="the master notebook (default: %(default)s)")
    parser.add_argument(
        "--hidden-tests", default=str(HERE / "hidden_tests.py"), help='hidden tests ("none": public cases only)'
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the hidden cases (default: %(default)s)")
    parser.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default: %(default)s)")
    parser.add_argument("--notebook-timeout", type=float, default=600, help="seconds per notebook (default: 600)")
    parser.add_argument("--answer-timeout", type=float, default=20, help="seconds per exercise's values (default: 20)")
    parser.add_argument("--memory", default="3G", help="address space per process, e.g. 3G (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: %(default)s)")
    parser.add_argument("--data-dir", help="the MNIST CSVs' folder (default: data/ next to the master)")
    parser.add_argument("--executed", help="also save each executed notebook in this folder")
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run without bubblewrap: the student's code runs as you, see README"
    )
    options = parser.parse_args(argv)
    options.data_dir = options.data_dir or str(Path(options.master).resolve().parent / "data")
    options.memory = parse_bytes(options.memory)
    options.final_timeout = options.answer_timeout * 30 + 60
    options.threads = max(1, (os.cpu_count() or 1) // options.jobs)
    if options.no_sandbox:
        print(
            "WARNING: --no-sandbox: each submission runs as your user, with your network, and can read and change "
            "your files (the master notebook, the hidden tests, the other submissions, this folder); only the "
            "memory limit and the time limits apply.",
            file=sys.stderr,
            flush=True,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="grading-check-") as tmp:
            problem = sandbox.check(tmp)
        if problem:
            raise SystemExit(
                f"grade.py: {problem}. The grader runs each submission in a bubblewrap sandbox; to grade without "
                "one (the student's code then runs as you and can read your files), pass --no-sandbox."
            )
    grade(options.submissions, options, only=options.only)


def parse_bytes(text):
    """3G, 512M, 2000000000 -> bytes (0: no limit)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", str(text).strip(), re.I)
    if not match:
        raise SystemExit(f"grade.py: --memory {text!r}: give a size such as 3G")
    return int(float(match.group(1)) * 1024 ** "_KMGT".index(match.group(2).upper() or "_"))


if __name__ == "__main__":
    sys.exit(main())
