"""Grade submitted notebooks: per exercise a verdict and points, a gradebook row and a feedback file per student.

    python teacher/grade.py SUBMISSIONS [-o grades.csv] [--points 1] [--only STUDENT] [--jobs N]
                            [--cell-timeout S] [--notebook-timeout S] [--memory BYTES] [--executed DIR]
                            [--master NOTEBOOK] [--hidden-tests FILE] [--secret FILE] [--data-dir DIR] [--no-sandbox]
                            [--lms-gradebook CSV [--lms-column NAME] [--lms-output CSV]]
    python teacher/grade.py --make-secret [--secret FILE]

SUBMISSIONS is one notebook, or a folder holding one file per student or one folder per student, or an LMS's
download as it comes (Canvas, Moodle, Gradescope; the folder or its zip: teacher/intake.py), or one student's file
or folder inside it (re-grading that student in place). --lms-gradebook: the LMS's gradebook export (Canvas) or
grading worksheet (Moodle), written back with the scores filled in (teacher/lms.py). For each submission:

1. Prepare it, like nbgrader's "overwrite cells" step: the cells a student should not change (the exercises'
   checks, the helper they share, the student edition's plumbing) are put back from the student edition built
   from the master, found by exercise number, cell id or title; each learner's cell ends with its check's call.
   Small settings go in after the `parameters` cell (1 epoch on 2,000 images, the optional parts off, every file
   written into the scratch folder, the data read from the data folder). The student's functions carry the run,
   as in the student edition.
2. Run it in a sandbox (teacher/sandbox.py: bubblewrap, no network, no view of your files, a cleared
   environment, a read-only file system but for sized folders in memory, a cgroup's limits on the submission's
   memory, processes and CPU) with nbclient (teacher/sandbox_runner.py): errors allowed, a time limit per cell
   (the kernel is interrupted) and per notebook (the sandbox is killed). Then one last cell of the grader's own
   (teacher/collect.py) collects, for each exercise, the values of the learner's final answer (the last
   definition, as after Run all) on the public cases and on hidden ones (teacher/hidden_tests.py), as data.
3. Judge outside the kernel (teacher/judge.py), in a process of its own: the values read back as hostile input
   (no link followed, bounded in size and nesting, under a time limit), then the master's verdict_N on them.
   Nothing the kernel prints decides a grade. A file that is not a notebook of this lesson is "not gradable", with why.
   On the hidden cases the student's rows name the kinds of case that fail, never a case; teacher-notes.csv says
   more, for the teacher.

The hidden inputs are drawn from the teacher's secret (teacher/hidden_key.py; made on first use, or with
--make-secret): a student cannot compute them from the public repository. A public seed (--seed) with the
repository's own hidden tests is refused unless --public-hidden-tests-ok says so.

Where each step lives: teacher/intake.py (which file is whose), teacher/prepare.py (step 1), teacher/execute.py and
teacher/sandbox.py (step 2), teacher/judge.py (step 3), teacher/reports.py (the files written), teacher/lms.py (the
LMS's own files).
"""

import argparse
import dataclasses
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import hidden_key  # noqa: E402
import judge  # noqa: E402
import lms  # noqa: E402
import sandbox  # noqa: E402
import student_edition as se  # noqa: E402
from execute import Failed, executed_notebook, in_child, judged, run_submission, stop_all  # noqa: E402
from hidden_key import HiddenKey, SecretError, is_public_hidden_tests, make_secret, secret_key  # noqa: E402
from intake import NotGradable, student_of  # noqa: E402, F401 (student_of: the tests use it)
from intake import read as read_submissions  # noqa: E402
from prepare import SCRATCH_PATHS, SMALL_SETTINGS, final_cell, hidden_for, load_hidden_tests, prepare  # noqa: E402
from reports import (  # noqa: E402
    GRADES_COLUMNS,
    NOTES_COLUMNS,
    gradebook_columns,
    gradebook_row,
    merge_rows,
    notes_of,
    parse_points,
    replace_file,
    safe_name,
    summary,
    total_row,
    verdict_rows_and_notes,
    write_csv,
    write_feedback,
)


def grade(submissions, options, only=None):
    """Grade the submissions; write grades.csv, gradebook.csv and the feedback files; return grades.csv's rows.

    Each student's files are written as soon as they are graded; whatever fails in one student's pipeline (the
    sandbox, reading back, judging, writing their files) is that student's "did not run", with why.
    """
    master = nbformat.read(options.master, as_version=4)
    edition = se.build(master)
    exercises = se.find_exercises(edition)
    checks = judge.MasterChecks(master)
    points = parse_points(options.points, exercises)
    hidden_tests = None if options.hidden_tests == "none" else load_hidden_tests(options.hidden_tests)
    if options.lms_gradebook:  # a wrong LMS file is said before the class is graded, not after
        try:
            lms.fill(options.lms_gradebook, None, [], options.lms_column)
        except (lms.LmsFileError, OSError) as e:
            raise SystemExit(f"grade.py: --lms-gradebook {options.lms_gradebook}: {e}") from None
    intake = read_submissions(submissions, lambda text: print(text, file=sys.stderr, flush=True))
    found, single = intake.submissions, intake.single
    output = Path(options.output)
    gradebook = Path(options.gradebook) if options.gradebook else output.with_name("gradebook.csv")
    feedback = Path(options.feedback) if options.feedback else output.with_name("feedback")
    teacher_notes = Path(options.notes) if options.notes else output.with_name("teacher-notes.csv")
    filled = lms.target(options.lms_gradebook, options.lms_output, output) if options.lms_gradebook else None
    written = [output.with_name("moodle-feedback.zip"), teacher_notes, *([filled] if filled else [])]
    ours = [p.resolve() for p in (output, gradebook, feedback, Path(options.executed or feedback), *written)]
    found = [  # the grader's own outputs, when written into the submissions folder, are no submission
        s for s in found if not (s.path and any(s.path.resolve() == p or p in s.path.resolve().parents for p in ours))
    ]
    if only:
        found = [
            s
            for s in found
            if {s.student, *(m[0] for m in s.members), s.entry} & set(only) or (s.path and s.path.name in only)
        ]
        if not found:
            raise SystemExit(f"grade.py: no submission of {', '.join(only)} in {submissions}")
    if not found:
        print(f"warning: {submissions} holds no submission", file=sys.stderr)
    settings = {**SMALL_SETTINGS, **SCRATCH_PATHS}
    settings["DATA_DIR"] = str(Path(options.data_dir).resolve()) if options.no_sandbox else sandbox.DATA
    limits = None
    if not options.no_sandbox:
        limits, why = sandbox.Cgroups.open(options.memory, cpus=options.threads)
        disk = (
            f"home {sandbox.HOME_SIZE // 2**20} MB, /tmp {sandbox.TMP_SIZE // 2**20} MB, /dev/shm "
            f"{sandbox.SHM_SIZE // 2**20} MB (in memory), the rest read-only"
        )
        if limits:
            print(f"limits: {limits.describe()}; {disk}", file=sys.stderr, flush=True)
        else:
            print(
                f"note: cgroups are not writable here ({why}): the limits are per process (address space; "
                f"{sandbox.FALLBACK_PROCESSES} processes of your user), not per submission; {disk}",
                file=sys.stderr,
                flush=True,
            )
    scratch = Path(tempfile.mkdtemp(prefix="grading-")).resolve()
    seconds, results, pages, lock, stopping = {}, {}, {}, threading.Lock(), threading.Event()
    update = single or bool(only)
    book_columns = gradebook_columns(exercises)

    def one(index, sub):
        try:
            if sub.path is None:
                raise NotGradable(sub.problem)
            prepared = prepare(sub.path, edition, settings)
        except NotGradable as e:
            return [[sub.student, sub.id, "all", "", "not gradable", 0, "; ".join([str(e), *sub.notes])]], None, []
        token = secrets.token_hex(16)
        folder = scratch / f"{index:03d}-{safe_name(sub.student)}"
        home = str(folder / "home") if options.no_sandbox else sandbox.HOME
        hidden = hidden_for(sub.student, checks, hidden_tests, options.hidden_key)
        values_path = f"{home}/.grader-{token}.json"
        final = final_cell(checks, hidden, values_path, options.answer_timeout, edition)
        cgroup = limits.create(f"{index:03d}") if limits else None
        try:
            run = run_submission(prepared, folder, final, values_path, options, cgroup)
        finally:
            if cgroup:
                cgroup.close()  # every process still in it is killed
        seconds[sub.student] = run.seconds
        args = (sub, exercises, checks, prepared, run, hidden, points, options)
        rows, notes = in_child(judged, (verdict_rows_and_notes, args))
        if options.executed:
            data = executed_notebook(run)
            if data:
                Path(options.executed).mkdir(parents=True, exist_ok=True)
                replace_file(Path(options.executed) / f"{safe_name(sub.student)}.ipynb", data)
        final = next((e for e in run.events if e["event"] == "final"), {})
        peak = (
            f" (memory peak {run.peak_memory / 2**20:.0f} MB)"  # the whole submission's, from its cgroup
            if run.peak_memory
            else f" (the kernel's address space peaked at {final['peak']} MB)"
            if isinstance(final.get("peak"), int)
            else ""
        )
        print(f"graded {sub.student} in {run.seconds:.1f} s{peak}", file=sys.stderr, flush=True)
        return rows, total_row(sub, rows, intake_notes(sub) + notes_of(prepared, run, options), points), notes

    def failed(sub, why):
        rows = [[sub.student, sub.id, n, ex.title, "did not run", 0, why] for n, ex in exercises.items()]
        return rows, total_row(sub, rows, [], points), []

    def graded(index, sub):
        """One student graded and their files written; any failure is theirs."""
        folder = scratch / f"{index:03d}-{safe_name(sub.student)}"
        try:
            result = one(index, sub)
        except Exception as e:  # noqa: BLE001 (whatever it is, it is this student's row, not the class's)
            why = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {str(e)[:300]}"
            print(f"grading {sub.student} failed: {why}", file=sys.stderr, flush=True)
            result = failed(sub, f"the grader could not grade this submission: {why}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        with lock:
            if stopping.is_set():  # the grader was stopped while this student ran: no verdict
                return
            mine, total, noted = result
            members = []
            try:
                for member in [sub, *members_of(sub)]:  # a group: every member gets the same rows
                    theirs = [[member.student, member.id, *r[2:]] for r in mine]
                    their_total = [member.student, member.id, *total[2:]] if total else None
                    their_notes = [[member.student, member.id, *r[2:]] for r in noted]
                    page = write_feedback(feedback, member, theirs, their_total, points)
                    if sub.layout == "moodle" and member.id:
                        pages[lms.moodle_folder(sub.entry, member.student, member.id)] = page
                    seconds[member.student] = seconds.get(sub.student, 0)
                    members.append((member, theirs, their_total, their_notes))
            except Exception as e:  # noqa: BLE001
                print(f"writing the feedback of {sub.student} failed: {e}", file=sys.stderr, flush=True)
                mine, total, noted = failed(sub, f"the grader could not write this student's feedback file: {e}")
                members = [(sub, mine, total, noted)]
            results[index] = members
            try:
                write_tables()
            except Exception as e:  # noqa: BLE001 (a full disk, say: tried again after the next student)
                print(f"writing {output} or {gradebook} failed: {e}", file=sys.stderr, flush=True)

    def write_tables():
        """grades.csv, gradebook.csv and teacher-notes.csv with every student graded so far (and, updating, the
        others as they were)."""
        done = [member for i in sorted(results) for member in results[i]]
        rows = [row for _, mine, total, _ in done for row in mine + ([total] if total else [])]
        notes = [row for _, _, _, noted in done for row in noted]
        book = [
            gradebook_row(s, mine, exercises, points, f"not gradable: {mine[0][6]}" if total is None else "")
            for s, mine, total, _ in done
        ]
        students = {s.student for s, *_ in done}
        for path, columns, new in [
            (output, GRADES_COLUMNS, rows),
            (gradebook, book_columns, book),
            (teacher_notes, NOTES_COLUMNS, notes),
        ]:
            write_csv(path, columns, merge_rows(path, columns, new, students, update))  # whole, or not at all

    pool = ThreadPoolExecutor(max_workers=options.jobs)
    try:
        for future in [pool.submit(graded, index, sub) for index, sub in enumerate(found)]:
            future.result()
    finally:  # also when told to stop: the running sandboxes killed first, their students left ungraded
        stopping.set()
        stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        if limits:
            limits.close()
        shutil.rmtree(scratch, ignore_errors=True)
    write_tables()  # once more: the last write may have failed, and a class of none writes the headers
    if pages:
        lms.moodle_feedback_zip(output.with_name("moodle-feedback.zip"), pages, update)
        print(f"Moodle feedback files: {output.with_name('moodle-feedback.zip')} (Upload multiple feedback files)")
    if options.lms_gradebook:
        try:
            page_of = lambda student: feedback / f"{safe_name(student)}.html"  # noqa: E731
            print(lms.fill_from_gradebook(options.lms_gradebook, filled, gradebook, page_of, options.lms_column))
        except (lms.LmsFileError, OSError) as e:
            raise SystemExit(f"grade.py: --lms-gradebook {options.lms_gradebook}: {e}") from None
    rows = [
        row for i in sorted(results) for _, mine, total, _ in results[i] for row in mine + ([total] if total else [])
    ]
    print(summary(rows, exercises, seconds, sum(points.values())))
    how = "updated" if update else "wrote"
    print(f"{how} {output} and {gradebook} ({len(found)} submissions), feedback in {feedback}/")
    print(f"{how} {teacher_notes}: for you, not the students (it may quote hidden cases and what their code said)")
    return rows


def intake_notes(sub):
    """What intake decided that the teacher and the student should read: the file graded, what was set aside, late."""
    return [*sub.notes, *(["handed in late (the LMS's marker)"] if sub.late else [])]


def members_of(sub):
    """A group's other members, as submissions of their own (same file, same verdicts)."""
    return [dataclasses.replace(sub, student=name, id=lms_id, members=[]) for name, lms_id in sub.members]


def main(argv=None, isolation=None):
    """The command line; `isolation` (teacher/fallback.py) confines each run where bubblewrap cannot start."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "submissions", nargs="?", help="a notebook, or a folder of submissions (a file or a folder each)"
    )
    parser.add_argument("-o", "--output", default="grades.csv", help="per-exercise CSV (default: %(default)s)")
    parser.add_argument("--gradebook", help="one row per student (default: gradebook.csv next to --output)")
    parser.add_argument("--feedback", help="folder of feedback files (default: feedback/ next to --output)")
    parser.add_argument("--notes", help="the teacher's notes (default: teacher-notes.csv next to --output)")
    parser.add_argument("--points", help='points per exercise: "1" each (default), "2=3,9=2", or a file of N=points')
    parser.add_argument("--only", action="append", help="grade only this student (repeatable): updates the CSVs")
    parser.add_argument("--master", default=str(se.MASTER), help="the master notebook (default: %(default)s)")
    parser.add_argument(
        "--hidden-tests", default=str(HERE / "hidden_tests.py"), help='hidden tests ("none": public cases only)'
    )
    parser.add_argument(
        "--secret",
        help="the teacher's secret that draws the hidden cases (default: "
        f"{hidden_key.default_secret_path()}, made there on first use)",
    )
    parser.add_argument("--make-secret", action="store_true", help="make the secret file (--secret, or the default)")
    parser.add_argument(
        "--seed",
        type=int,
        help="draw the hidden cases from this public seed instead of the secret: anyone with the hidden tests' file "
        "can compute them (with the repository's own file: refused without --public-hidden-tests-ok)",
    )
    parser.add_argument(
        "--public-hidden-tests-ok",
        action="store_true",
        help="grade with hidden cases anyone can compute from this repository (practice runs only)",
    )
    parser.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default: %(default)s)")
    parser.add_argument("--notebook-timeout", type=float, default=600, help="seconds per notebook (default: 600)")
    parser.add_argument("--answer-timeout", type=float, default=20, help="seconds per exercise's values (default: 20)")
    parser.add_argument("--memory", default="3G", help="address space per process, e.g. 3G (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: %(default)s)")
    parser.add_argument("--data-dir", help="the MNIST CSVs' folder (default: data/ next to the master)")
    parser.add_argument("--executed", help="also save each executed notebook in this folder")
    parser.add_argument("--lms-gradebook", help="the LMS's gradebook export (Canvas) or grading worksheet (Moodle)")
    parser.add_argument(
        "--lms-column", help="its column for this assignment (Canvas: found if only one; Moodle: Grade)"
    )
    parser.add_argument("--lms-output", help="the filled copy (default: <its name>-graded.csv next to --output)")
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run without bubblewrap: the student's code runs as you, see README"
    )
    options = parser.parse_args(argv)
    for name in (
        "submissions",
        "output",
        "gradebook",
        "feedback",
        "master",
        "data_dir",
        "executed",
        "points",
        "secret",
        "notes",
    ):
        value = getattr(options, name)  # absolute paths: nothing depends on the working directory later
        if value and (name != "points" or Path(value).is_file()):
            setattr(options, name, os.path.abspath(value))
    if options.hidden_tests != "none":
        options.hidden_tests = os.path.abspath(options.hidden_tests)
    if options.make_secret:
        try:
            path = make_secret(options.secret or hidden_key.default_secret_path())
        except SecretError as e:
            raise SystemExit(f"grade.py: {e}") from None
        print(f"made {path}: keep it with your course files, out of any repository and handout")
        return 0
    if options.submissions is None:
        parser.error("give the submissions (a notebook or a folder), or --make-secret")
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
    # told to stop (SIGTERM, as at a job's time limit): end as after Ctrl-C, the sandboxes, cgroups and scratch
    # folders removed on the way out
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    options.hidden_key = choose_hidden_key(options)  # after the sandbox's check: a refused run makes no secret
    grade(options.submissions, options, only=options.only)


PUBLIC_REFUSED = (
    "grade.py: refused: --seed draws the hidden cases from a public seed, and {tests} is the repository's own "
    "hidden tests' file: anyone can run it for their own name, precompute their hidden cases and hand in lookup "
    "tables that are right on them (tests/test_grading_secrets.py shows one). Leave --seed out (the hidden cases then "
    "come from your secret, {secret}), or use a changed copy of the hidden tests kept out of reach "
    "(--hidden-tests FILE), or, for a practice run only, add --public-hidden-tests-ok."
)


def choose_hidden_key(options):
    """The HiddenKey of this run: the teacher's secret, or (--seed) a public seed, refused with the repository's own
    hidden tests unless --public-hidden-tests-ok; says on stderr which it is."""

    def say(text):
        print(text, file=sys.stderr, flush=True)

    if options.hidden_tests == "none":
        return HiddenKey(seed=0, where="no hidden tests")
    if options.seed is not None and options.secret:
        raise SystemExit("grade.py: give --secret (your secret draws the hidden cases) or --seed (public), not both")
    if options.seed is None:
        try:
            key = secret_key(options.secret, make=options.secret is None, say=say)
        except SecretError as e:
            raise SystemExit(f"grade.py: {e}") from None
        say(f"hidden cases: drawn with {key.describe()} (a re-grade with the same secret draws the same cases)")
        return key
    key = HiddenKey(seed=options.seed)
    if is_public_hidden_tests(options.hidden_tests):
        if not options.public_hidden_tests_ok:
            secret = options.secret or hidden_key.default_secret_path()
            raise SystemExit(PUBLIC_REFUSED.format(tests=options.hidden_tests, secret=secret))
        say(
            "WARNING: --public-hidden-tests-ok: the hidden cases come from the repository's public "
            f"{options.hidden_tests} and the public seed {options.seed}: any student can compute theirs and hand in "
            "lookup tables that are right on them. Not for marks."
        )
    else:
        say(f"hidden cases: drawn with {key.describe()}; they are as secret as {options.hidden_tests}")
    return key


def parse_bytes(text):
    """3G, 512M, 2000000000 -> bytes (0: no limit)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", str(text).strip(), re.I)
    if not match:
        raise SystemExit(f"grade.py: --memory {text!r}: give a size such as 3G")
    return int(float(match.group(1)) * 1024 ** "_KMGT".index(match.group(2).upper() or "_"))


if __name__ == "__main__":
    sys.exit(main())
