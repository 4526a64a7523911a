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

Where each step lives: teacher/intake.py (which file is whose), teacher/prepare.py (step 1), teacher/execute.py and
teacher/sandbox.py (step 2), teacher/judge.py (step 3), teacher/reports.py (the files written).
"""

import argparse
import os
import re
import secrets
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import judge  # noqa: E402
import sandbox  # noqa: E402
import student_edition as se  # noqa: E402
from execute import run_submission  # noqa: E402
from intake import NotGradable, find_submissions, student_of  # noqa: E402, F401 (student_of: the tests use it)
from prepare import SCRATCH_PATHS, SMALL_SETTINGS, final_cell, hidden_for, load_hidden_tests, prepare  # noqa: E402
from reports import (  # noqa: E402
    GRADES_COLUMNS,
    feedback_text,
    gradebook_row,
    merge_rows,
    notes_of,
    parse_points,
    safe_name,
    summary,
    total_row,
    verdict_rows,
    write_csv,
)


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


def main(argv=None, isolation=None):
    """The command line; `isolation` (teacher/fallback.py) confines each run where bubblewrap cannot start."""
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
    options.isolation = isolation
    if isolation:  # the paths the kernel sees are the real ones, as without bubblewrap; the confinement is its own
        options.no_sandbox = True
        print(f"isolation: no bubblewrap; {isolation.describe()}", file=sys.stderr, flush=True)
    elif options.no_sandbox:
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
