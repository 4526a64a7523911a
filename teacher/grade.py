"""Grade a folder of submitted notebooks: one row per student and exercise in a CSV, and a summary on stdout.

    python teacher/grade.py SUBMISSIONS_DIR [-o grades.csv] [--master neural_network_from_scratch.ipynb]
                            [--cell-timeout S] [--notebook-timeout S] [--jobs N] [--executed DIR]
                            [--data-dir DIR] [--as-submitted]

For each file in SUBMISSIONS_DIR (hidden files are ignored):

1. Prepare it, like nbgrader's "overwrite cells" step: the cells a student should not change (the exercises'
   checks, the helper they share, the student edition's plumbing) are put back from the student edition built
   from the master, found by exercise number, cell id or title; each learner's cell ends with its check's call.
   By default the notebook's own functions (the master's `reference` cells) are put back too, so that each
   exercise is graded on its own (--as-submitted: the student's functions run the notebook, as in the student
   edition). Small settings go in after the `parameters` cell (1 epoch on 2,000 images, the optional parts off,
   every file written into the scratch folder, the data read from the teacher's data/).
2. Run it with nbclient in a child process of its own (its own process group; the kernel works in a fresh
   scratch folder): allow_errors on, a time limit per cell (the kernel is interrupted) and per notebook (the
   child and the kernel are killed). Each cell's result is written to disk as soon as it is done, so a notebook
   that raises, loops or runs out of time is graded as far as it got, and the others are not held up.
3. Read each exercise's verdict from the output of its learner's cell: the last line "Exercise N: right: ...",
   "... wrong: ..." or "... not attempted yet (...)". A learner's cell that raised or never ran is "did not run",
   with the error or the reason. A file that is not a notebook of this lesson is "not gradable", with why.
"""

import argparse
import ast
import copy
import csv
import json
import os
import re
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
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbformat.corpus.words import generate_corpus_id

sys.path.insert(0, str(Path(__file__).resolve().parent))
import student_edition as se  # noqa: E402

STATUSES = ["right", "wrong", "not attempted", "did not run", "not gradable"]
VERDICT = re.compile(r"^Exercise (\d+): (right|wrong|not attempted yet):? ?(.*)$", re.M)
SKIPPED = re.compile(r"^Skipped: (this cell needs your .*?), which is not right yet\.", re.M)
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
    "MODEL_PATH": "model.npz",
    "BEST_MODEL_PATH": "model_best.npz",
    "DEEP_MODEL_PATH": "model_deep.npz",
    "IMAGES_DIR": "images",
}
CSV_COLUMNS = ["student", "exercise", "title", "status", "detail"]


class NotGradable(Exception):
    """The submission cannot be graded; the message says why."""


@dataclass
class Prepared:
    """A submission ready to run: the notebook, and the index of each exercise's learner cell in it."""

    nb: nbformat.NotebookNode
    learner_cells: dict  # exercise number -> cell index
    missing: dict = field(default_factory=dict)  # exercise number -> why it has no learner's cell


def position(cells, cell):
    """Index of this very cell object (cells equal in content are different cells)."""
    return next(i for i, c in enumerate(cells) if c is cell)


def first_line(text, width=50):
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


# ---------------------------------------------------------------------------------------------- preparing


def read_submission(path):
    """The submission as a notebook (nbformat 4.5, every cell with an id), or NotGradable saying why not."""
    if path.suffix.lower() != ".ipynb":
        kind = f"a {path.suffix} file" if path.suffix else "a file without an extension"
        raise NotGradable(f"not a notebook ({kind}): hand in the .ipynb file (File > Download > .ipynb)")
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
    """Index of the first cell that passes the first test any cell passes, or None."""
    for test in tests:
        for i, cell in enumerate(cells):
            if test(cell):
                return i
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
        return text  # it runs as written and fails: "did not run", with the SyntaxError
    call = last.value if isinstance(last, ast.Expr) else None
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == ex.check_name:
        if ast.get_source_segment(python, last) == ex.check_call:
            return text
        if len(python.splitlines()) == len(text.splitlines()):  # same lines: replace the call with the master's
            lines = text.splitlines()
            return "\n".join(lines[: last.lineno - 1] + [ex.check_call] + lines[last.end_lineno :])
    return text.rstrip() + "\n\n" + ex.check_call


def prepare(path, edition, master, data_dir, as_submitted=False):
    """The submission at path, ready to run (Prepared), or NotGradable.

    Unless as_submitted, the notebook's own functions (the master's cells tagged `reference`) are put back for the
    run, so that each exercise is graded on its own: a wrong exercise 1 does not hold up the cells exercise 6
    needs, and exercise 9's check trains with the notebook's `train`, not with the student's functions.
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
                lambda c, ex=ex, check=check: (
                    c is not (cells[check] if check is not None else None)
                    and code_matching(rf"(?<!def )\b{ex.check_name}\(")(c)
                ),
            ],
        )
        found[n] = (check, answer)
    if all(check is None and answer is None for check, answer in found.values()):
        raise NotGradable(
            f"a different notebook: none of the {len(exercises)} exercises of this lesson is in it "
            "(no cell checks or answers one)"
        )

    # restore the protected cells from the student edition; cells are found again by identity as indices move
    answers = {n: cells[a] for n, (_, a) in found.items() if a is not None}
    for n, (check, answer) in found.items():
        protected = copy.deepcopy(ecells[exercises[n].check])
        if check is not None:
            cells[check] = protected
        elif answer is not None:
            cells.insert(position(cells, answers[n]), protected)
    helper = ecells[se.helper_index(edition)]
    at = find_cell(cells, [same_id(helper.id), code_matching(r"^def run_check\(")])
    if at is None:
        at = min((i for i, c in enumerate(cells) if "check" in se.tags(c)), default=0)
        cells.insert(at, None)
    cells[at] = copy.deepcopy(helper)
    for cell_id, after in [(se.PLUMBING_ID, at), (se.RESET_ID, None)]:
        protected = copy.deepcopy(next(c for c in ecells if c.id == cell_id))
        title = re.escape(protected.source.splitlines()[0])
        found_at = find_cell(cells, [same_id(cell_id), code_matching(f"^{title}$")])
        if found_at is not None:
            cells[found_at] = protected
        elif after is not None:
            cells.insert(after + 1, protected)
    for n, cell in answers.items():
        cell.source = with_check_call(se.source(cell), exercises[n])
        cell.metadata["grading"] = {"exercise": n}
    if not as_submitted:
        restore_references(cells, exercises, edition, master, answers)

    # small settings after the parameters cell (found by its tag, its id, or its first line)
    master_parameters = next((c for c in ecells if "parameters" in se.tags(c)), None)
    parameters = find_cell(
        cells,
        [lambda c: "parameters" in se.tags(c)]
        + (
            [same_id(master_parameters.id), code_matching(f"^{re.escape(master_parameters.source.splitlines()[0])}$")]
            if master_parameters and master_parameters.source.strip()
            else []
        ),
    )
    settings_cells = [se.source(c) for c in ecells if {"parameters", "settings"} & set(se.tags(c))]
    names = set(re.findall(r"^(\w+) *=", "\n".join(settings_cells), re.M))
    settings = {**SMALL_SETTINGS, **SCRATCH_PATHS, "DATA_DIR": str(Path(data_dir).resolve())}
    lines = [f"{name} = {value!r}" for name, value in settings.items() if name in names]
    injected = nbformat.v4.new_code_cell(  # "# Parameters" first, like papermill's cell: the notebook looks for it
        "# Parameters (injected by teacher/grade.py: small settings, files into the scratch folder)\n"
        + "\n".join(lines)
    )
    injected.metadata["tags"] = ["injected-parameters"]
    cells.insert(0 if parameters is None else parameters + 1, injected)

    nb.cells = cells
    ClearOutputPreprocessor(remove_metadata_fields={"collapsed", "scrolled", "execution"}).preprocess(nb, {})
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    learner_cells = {c.metadata["grading"]["exercise"]: i for i, c in enumerate(cells) if "grading" in c.metadata}
    missing = {
        n: f"the submission has no cell for it (the one defining {ex.learner_name} and calling {ex.check_name})"
        for n, ex in exercises.items()
        if n not in learner_cells
    }
    return Prepared(nb, learner_cells, missing)


def restore_references(cells, exercises, edition, master, answers):
    """Put the master's reference cells (the notebook's own functions) in place of the student edition's."""
    for n, ex in exercises.items():
        for i in ex.references:
            cell = edition.cells[i]
            plumbing = re.escape(f"require_exercise({n}, ")
            at = find_cell(cells, [same_id(cell.id), lambda c, n=n: marked(n, "reference")(c), code_matching(plumbing)])
            original = copy.deepcopy(next(c for c in master.cells if c.id == cell.id))
            if at is not None:
                cells[at] = original
            elif n in answers:
                cells.insert(position(cells, answers[n]) + 1, original)


# ---------------------------------------------------------------------------------------------- running


def run_one(notebook, progress, cell_timeout):
    """In the child process: execute the notebook cell by cell, appending each cell's result to `progress`."""
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        timeout=cell_timeout,
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": os.getcwd()}},
    )
    with open(progress, "a", encoding="utf-8") as log:

        def record(**event):
            log.write(json.dumps(event) + "\n")
            log.flush()

        try:
            with client.setup_kernel():
                provisioner = client.km.provisioner
                record(event="kernel", pid=getattr(provisioner, "pid", None), pgid=getattr(provisioner, "pgid", None))
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    record(event="start", cell=index)
                    start = time.monotonic()
                    try:
                        client.execute_cell(cell, index)
                    except DeadKernelError:
                        record(event="died", cell=index)
                        break
                    seconds = time.monotonic() - start
                    error = next((o for o in cell.outputs if o.output_type == "error"), None)
                    stdout = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
                    record(
                        event="done",
                        cell=index,
                        seconds=round(seconds, 3),
                        error=f"{error.ename}: {error.evalue}" if error else None,
                        timed_out=bool(error) and error.ename == "KeyboardInterrupt" and seconds >= cell_timeout,
                        verdicts=[m.group(0) for m in VERDICT.finditer(stdout)],
                        skipped=next((m.group(0) for m in SKIPPED.finditer(stdout)), None),
                    )
        except Exception as e:  # the kernel did not start, or nbclient failed
            record(event="failed", reason=f"{type(e).__name__}: {e}")
        nbformat.write(nb, "executed.ipynb")
        record(event="finished")


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass


def run_submission(prepared, folder, records, cell_timeout, notebook_timeout, env):
    """Run one prepared submission in a child process in `folder`; return (events, seconds, stopped_by)."""
    folder.mkdir(parents=True)
    nbformat.write(prepared.nb, folder / "submission.ipynb")
    progress = records.with_suffix(".jsonl")
    start = time.monotonic()
    with open(records.with_suffix(".log"), "w") as log:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--run-one", str(progress), str(cell_timeout)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one
        )
        stopped_by = None
        try:
            child.wait(timeout=notebook_timeout)
        except subprocess.TimeoutExpired:
            stopped_by = "time limit"
    # kill what is left: the child's group and the kernel's (jupyter_client starts the kernel in a session of its
    # own), with anything the submission started in them; after a normal end, only leftovers
    kernel = next((e for e in read_events(progress) if e["event"] == "kernel"), None)
    if kernel:
        kill_group(kernel.get("pgid") or kernel.get("pid"))
    kill_group(child.pid)
    child.wait()
    return read_events(progress), time.monotonic() - start, stopped_by


def read_events(progress):
    if not progress.exists():
        return []
    events = []
    for line in progress.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by the kill
            pass
    return events


def verdict_rows(student, exercises, prepared, events, stopped_by, limits):
    """The rows of one graded submission."""
    done = {e["cell"]: e for e in events if e["event"] == "done"}
    started = [e["cell"] for e in events if e["event"] == "start"]
    died = next((e for e in events if e["event"] == "died"), None)
    failed = next((e for e in events if e["event"] == "failed"), None)
    cells = prepared.nb.cells
    if died:
        why = f"the kernel died in the cell starting {first_line(cells[died['cell']].source)!r}"
    elif stopped_by:
        running = f" while the cell starting {first_line(cells[started[-1]].source)!r} ran" if started else ""
        why = f"the notebook time limit ({limits['notebook']:g} s) passed{running}"
    elif failed:
        why = f"the notebook could not run: {failed['reason']}"
    else:
        why = "the run stopped before this cell (see the log)"
    rows = []
    for n, ex in exercises.items():
        status, detail = "did not run", why
        if n in prepared.missing:
            status, detail = "not attempted", prepared.missing[n]
        elif prepared.learner_cells[n] in done:
            result = done[prepared.learner_cells[n]]
            verdicts = [VERDICT.match(v) for v in result["verdicts"]]
            verdicts = [m for m in verdicts if int(m.group(1)) == n]
            if result["timed_out"]:
                detail = f"the cell ran longer than the {limits['cell']:g} s limit and was interrupted"
            elif result["error"]:
                detail = result["error"]
            elif result.get("skipped") and not verdicts:
                detail = "skipped (the student edition's rule): " + SKIPPED.match(result["skipped"]).group(1)
                detail += ", which is not right"
            elif not verdicts:
                detail = f"the cell ran but printed no verdict (its last line must be {ex.check_call})"
            else:
                word, detail = verdicts[-1].group(2), verdicts[-1].group(3)
                status = "not attempted" if word == "not attempted yet" else word
                if status == "not attempted" and detail.startswith("(") and detail.endswith(")"):
                    detail = detail[1:-1]
        rows.append([student, n, ex.title, status, detail])
    return rows


def total_row(student, rows, prepared, events, limits):
    """The student's total, and what went wrong outside the exercises' cells (cells that raised or ran too long)."""
    counts = {s: sum(1 for r in rows if r[3] == s) for s in STATUSES}
    notes = [", ".join(f"{counts[s]} {s}" for s in STATUSES[1:] if counts[s])]
    learner = set(prepared.learner_cells.values())
    done = [e for e in events if e["event"] == "done" and e["cell"] not in learner]
    for kind, found in [
        (f"ran over the {limits['cell']:g} s limit (interrupted)", [e for e in done if e["timed_out"]]),
        ("raised an error", [e for e in done if e["error"] and not e["timed_out"]]),
    ]:
        if found:
            cell = prepared.nb.cells[found[0]["cell"]]
            first = f"{first_line(cell.source)!r}" + (f": {found[0]['error']}" if "raised" in kind else "")
            many = f"{len(found)} other cells {kind}, the first" if len(found) > 1 else f"another cell {kind}"
            notes.append(f"{many} {first}")
    return [student, "total", "", f"{counts['right']}/{len(rows)} right", "; ".join(n for n in notes if n)]


def summary(rows, exercises, seconds):
    """A short table: one line per student, one column per exercise (R right, W wrong, - not attempted, ! did not
    run), the total and the time it took."""
    mark = {"right": "R", "wrong": "W", "not attempted": "-", "did not run": "!"}
    students = list(dict.fromkeys(r[0] for r in rows))
    width = max([len(s) for s in students] + [7])
    numbers = list(exercises)
    lines = [f"{'student':<{width}}  " + " ".join(f"{n:>2}" for n in numbers) + "  total    time"]
    for student in students:
        mine = {r[1]: r for r in rows if r[0] == student}
        if "all" in mine:
            lines.append(f"{student:<{width}}  not gradable: {mine['all'][4]}")
            continue
        marks = " ".join(f"{mark[mine[n][3]]:>2}" for n in numbers)
        lines.append(f"{student:<{width}}  {marks}  {mine['total'][3].split()[0]:>5}  {seconds[student]:5.0f} s")
    lines.append("R right, W wrong, - not attempted, ! did not run (the CSV says why)")
    return "\n".join(lines)


def grade(
    submissions,
    master,
    output,
    cell_timeout,
    notebook_timeout,
    jobs=1,
    data_dir=None,
    executed=None,
    as_submitted=False,
):
    """Grade every file in `submissions`; write the CSV to `output`; return its rows."""
    master_nb = nbformat.read(master, as_version=4)
    edition = se.build(master_nb)
    exercises = se.find_exercises(edition)
    data_dir = Path(data_dir) if data_dir else Path(master).resolve().parent / "data"
    files = sorted(p for p in Path(submissions).iterdir() if p.is_file() and not p.name.startswith("."))
    stems = [p.stem for p in files]
    names = {p: p.stem if stems.count(p.stem) == 1 else p.name for p in files}
    limits = {"cell": cell_timeout, "notebook": notebook_timeout}
    env = dict(os.environ, MPLBACKEND="Agg")
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, threads)
    scratch = Path(tempfile.mkdtemp(prefix="grading-"))
    (scratch / "records").mkdir()
    seconds = {}

    def one(index_path):
        index, path = index_path
        student = names[path]
        try:
            prepared = prepare(path, edition, master_nb, data_dir, as_submitted)
        except NotGradable as e:
            return [[student, "all", "", "not gradable", str(e)]]
        safe = f"{index:03d}-" + re.sub(r"[^\w.-]", "_", student)
        events, seconds[student], stopped_by = run_submission(
            prepared, scratch / safe, scratch / "records" / safe, cell_timeout, notebook_timeout, env
        )
        if executed and (scratch / safe / "executed.ipynb").exists():
            Path(executed).mkdir(parents=True, exist_ok=True)
            shutil.copy(scratch / safe / "executed.ipynb", Path(executed) / f"{student}.ipynb")
        rows = verdict_rows(student, exercises, prepared, events, stopped_by, limits)
        print(f"graded {student} in {seconds[student]:.1f} s", file=sys.stderr, flush=True)
        return [*rows, total_row(student, rows, prepared, events, limits)]

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            rows = [row for result in pool.map(one, enumerate(files)) for row in result]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    with open(output, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    print(summary(rows, exercises, seconds))
    print(f"wrote {output}: {len(files)} submissions")
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-one"]:  # the child process: run ./submission.ipynb
        return run_one("submission.ipynb", argv[1], float(argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", help="folder of submitted notebooks, one file per student")
    parser.add_argument("-o", "--output", default="grades.csv", help="the CSV to write (default: %(default)s)")
    parser.add_argument("--master", default=str(se.MASTER), help="the master notebook (default: %(default)s)")
    parser.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default: %(default)s)")
    parser.add_argument(
        "--notebook-timeout", type=float, default=600, help="seconds per notebook (default: %(default)s)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: %(default)s)")
    parser.add_argument("--data-dir", help="the MNIST CSVs' folder (default: data/ next to the master)")
    parser.add_argument("--executed", help="also save each executed notebook in this folder")
    parser.add_argument(
        "--as-submitted",
        action="store_true",
        help="run the student's functions as the student edition does (a later exercise that needs an earlier one "
        "not right is skipped: 'did not run'); by default each exercise is graded on its own, with the notebook's "
        "own functions restored for the run",
    )
    args = parser.parse_args(argv)
    grade(
        args.submissions,
        args.master,
        args.output,
        args.cell_timeout,
        args.notebook_timeout,
        jobs=args.jobs,
        data_dir=args.data_dir,
        executed=args.executed,
        as_submitted=args.as_submitted,
    )


if __name__ == "__main__":
    sys.exit(main())
