"""The grader as a Gradescope autograder: one container per submission, the same verdicts as teacher/grade.py.

Make the autograder zip (then, on Gradescope: the assignment's Configure Autograder page, upload it):

    python teacher/gradescope.py zip -o autograder.zip [--points 1] [--hidden-tests FILE] [--secret FILE]
                                 [--seed N] [--master NOTEBOOK] [--data-dir DIR] [--memory 2G]
                                 [--cell-timeout 120] [--notebook-timeout 420] [--answer-timeout 20]
                                 [--visibility visible] [--hidden-visibility visible]

The zip holds setup.sh and run_autograder at its root (teacher/gradescope/), the pinned requirements, the grader
(teacher/*.py), the master, the hidden tests, the teacher's secret that draws the hidden cases (--secret, or the one
teacher/grade.py uses by default, made there if there is none yet: the same cases as grading on your own machine),
the points, the settings and the data the notebook reads. A public --seed instead of the secret is refused with the
repository's own hidden tests unless --public-hidden-tests-ok says so, as in teacher/grade.py.

For each submission Gradescope runs `run_autograder` as root; it calls `gradescope.py run`, which:

1. writes a results.json that says grading did not finish (a crash or a kill still tells the student something);
2. makes /autograder/source, /autograder/results and the submission readable by root only (the data stays
   readable);
3. finds the notebook (the one .ipynb handed in, or the one inside a handed-in zip);
4. grades it with teacher/grade.py's main() (the same code path as grading a class), in bubblewrap's sandbox where
   it starts, else confined by teacher/fallback.py (Gradescope's Docker forbids namespaces); the mode is printed in
   the autograder's log, which only instructors see;
5. kills every process of the student's user, then converts grades.csv's rows and the feedback file into
   results.json: one test per exercise (points, the verdict and its reason as Markdown), the total, the feedback
   as the top-level output, stdout hidden, every string clipped to a bounded length.
"""

import argparse
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import judge  # noqa: E402
import sandbox  # noqa: E402
import student_edition as se  # noqa: E402
from intake import NotGradable, notebooks_in  # noqa: E402
from prepare import load_hidden_tests  # noqa: E402
from reports import feedback_text, parse_points, safe_name  # noqa: E402

ROOT = Path("/autograder")
TEMPLATES = HERE / "gradescope"
VISIBILITY = ["visible", "after_due_date", "after_published", "hidden"]
# Gradescope documents no size limit for results.json's strings; these keep the file far below a megabyte and each
# text readable (a runaway message is clipped, with a note saying so)
NAME_CHARS, TEST_CHARS, OUTPUT_CHARS = 200, 8_000, 60_000
NOTEBOOK_BYTES = 64 * 2**20  # a notebook inside a handed-in zip, at most
DID_NOT_FINISH = (
    "The autograder did not finish grading this submission (it ran out of time or memory, or failed). "
    "Your notebook is not graded yet: check that it runs from top to bottom, then submit it again; "
    "if this message stays, tell your teacher (the autograder's log says why)."
)


# ---------------------------------------------------------------------------------------------- making the zip


def make_zip(options):
    """Write the autograder zip; return its path. Everything is checked before anything is written."""
    master = Path(options.master)
    try:
        nb = nbformat.read(master, as_version=4)
        exercises = se.find_exercises(se.build(nb))
        checks = judge.MasterChecks(nb)
    except (OSError, ValueError, nbformat.reader.NotJSONError) as e:
        raise SystemExit(f"gradescope.py: the master {master}: {e}") from None
    points = parse_points(options.points, exercises)
    hidden_exercises = []
    if options.hidden_tests != "none":
        try:
            module = load_hidden_tests(options.hidden_tests)
        except (OSError, SyntaxError, ImportError) as e:
            raise SystemExit(f"gradescope.py: --hidden-tests {options.hidden_tests}: {e}") from None
        import numpy as np

        rng = np.random.default_rng(0)
        hidden_exercises = [n for n, c in checks.checks.items() if module.hidden_cases(c.answer_name, rng)]
    import hidden_key

    secret = None
    if options.seed is None:
        try:  # the teacher's secret, read (and checked) now: a zip that cannot grade is never written
            secret = hidden_key.secret_key(options.secret, make=options.secret is None, say=print).secret
        except hidden_key.SecretError as e:
            raise SystemExit(f"gradescope.py: {e}") from None
    elif options.secret:
        raise SystemExit("gradescope.py: give --secret (your secret draws the hidden cases) or --seed, not both")
    elif (
        hidden_exercises
        and hidden_key.is_public_hidden_tests(options.hidden_tests)
        and not options.public_hidden_tests_ok
    ):
        raise SystemExit(
            "gradescope.py: refused: --seed with the repository's own hidden tests lets any student compute their "
            "hidden cases; leave --seed out (your secret draws them), or add --public-hidden-tests-ok (practice only)"
        )
    data = sorted(Path(options.data_dir).glob("*.csv.gz"))
    if not data:
        raise SystemExit(f"gradescope.py: --data-dir {options.data_dir} holds no *.csv.gz (the MNIST CSVs)")
    settings = {
        "seed": options.seed,  # None: the secret in grader/secret
        "memory": options.memory,
        "cell_timeout": options.cell_timeout,
        "notebook_timeout": options.notebook_timeout,
        "answer_timeout": options.answer_timeout,
        "visibility": options.visibility,
        "hidden_visibility": options.hidden_visibility,
        "points": {str(n): p for n, p in points.items()},
        "titles": {str(n): ex.title for n, ex in exercises.items()},
        "hidden_exercises": hidden_exercises,
    }
    out = Path(options.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("setup.sh", "run_autograder"):
            z.write(TEMPLATES / name, name)
            z.getinfo(name).external_attr = 0o100755 << 16
        z.write(TEMPLATES / "requirements.txt", "requirements.txt")
        for path in sorted(HERE.glob("*.py")):
            z.write(path, f"grader/teacher/{path.name}")
        z.write(master, "grader/master.ipynb")
        if options.hidden_tests != "none":
            z.write(options.hidden_tests, "grader/hidden_tests.py")
        if secret is not None:
            z.writestr("grader/secret", secret + b"\n")
        z.writestr("grader/points.txt", "".join(f"{n}={p:g}\n" for n, p in points.items()))
        z.writestr("grader/settings.json", json.dumps(settings, indent=1))
        for path in data:
            z.write(path, f"data/{path.name}", compress_type=zipfile.ZIP_STORED)  # gzip already
    partial.replace(out)
    return out


# ---------------------------------------------------------------------------------------------- in the container


def write_results(path, results):
    """results.json, replaced in one step (a reader never sees half of it)."""
    partial = path.with_name(".results.json.partial")
    partial.write_text(json.dumps(results, indent=1), encoding="utf-8")
    os.replace(partial, path)


def lock_down(root):
    """Root only: the grader's files, the results and the submission. Readable by all: the data and the folders
    on the way to it (passable, not listable)."""
    source, data = root / "source", root / "source" / "data"
    (root / "results").mkdir(exist_ok=True)
    for folder in (root, source):
        folder.chmod(0o711)
    for path in [source, *source.rglob("*")]:
        if path == source or path.is_symlink():
            continue
        readable = path == data or data in path.parents
        path.chmod((0o755 if path.is_dir() else 0o644) if readable else (0o700 if path.is_dir() else 0o600))
    for path in (root / "results", root / "submission"):
        if path.exists():
            path.chmod(0o700)
    metadata = root / "submission_metadata.json"
    if metadata.exists():
        metadata.chmod(0o600)


def student_name(root):
    """The submitter's name from submission_metadata.json, as a file name ("student" if there is none)."""
    try:
        users = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8")).get("users") or []
        name = str(users[0].get("name") or users[0].get("email") or "")
    except (OSError, ValueError, AttributeError, IndexError):
        name = ""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:60] or "student"


def notebook_from_zip(archive, target):
    """The one notebook inside a handed-in zip, written to target (read bounded: a zip may lie about sizes)."""
    try:
        with zipfile.ZipFile(archive) as z:
            inside = [
                i
                for i in z.infolist()
                if not i.is_dir()
                and i.filename.lower().endswith(".ipynb")
                and not any(p.startswith((".", "__MACOSX")) for p in Path(i.filename).parts)
            ]
            if len(inside) != 1:
                listed = ", ".join(i.filename for i in inside[:5])
                raise NotGradable(
                    f"{'several notebooks' if inside else 'no notebook'} in the zip {archive.name}"
                    + (f" ({listed})" if listed else "")
                    + ": hand in one .ipynb file"
                )
            with z.open(inside[0]) as f:
                data = f.read(NOTEBOOK_BYTES + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as e:
        raise NotGradable(f"the zip {archive.name} does not open ({e}): hand in the .ipynb file") from None
    if len(data) > NOTEBOOK_BYTES:
        raise NotGradable(f"the notebook in {archive.name} is larger than {NOTEBOOK_BYTES // 2**20} MB")
    target.write_bytes(data)
    return target


def submitted_file(submission, work, name):
    """The file to grade, copied into work/ under the student's name (grade.py names the student by the file)."""
    if not submission.is_dir():
        raise NotGradable("nothing was handed in")
    notebooks = notebooks_in(submission)
    files = sorted(p for p in submission.rglob("*") if p.is_file() and not p.is_symlink())
    if len(notebooks) > 1:
        listed = ", ".join(p.relative_to(submission).as_posix() for p in notebooks[:5])
        raise NotGradable(f"several notebooks were handed in ({listed}): hand in one .ipynb file")
    if notebooks:
        return Path(shutil.copyfile(notebooks[0], work / f"{name}.ipynb"))
    zips = [p for p in files if p.suffix.lower() == ".zip"]
    if len(zips) == 1:
        return notebook_from_zip(zips[0], work / f"{name}.ipynb")
    if len(files) == 1:  # a .py or HTML export, a PDF: grade.py says why it is not gradable, in its words
        return Path(shutil.copyfile(files[0], work / f"{name}{files[0].suffix}"))
    listed = ", ".join(p.relative_to(submission).as_posix() for p in files[:5]) or "nothing"
    raise NotGradable(f"no notebook was handed in (the submission holds {listed}): hand in the .ipynb file")


def clip(text, limit):
    """text cut to at most `limit` characters, saying so; never ending inside a Markdown escape."""
    text = str(text)
    if len(text) <= limit:
        return text
    note = f"\n\n*(cut here: longer than {limit:,} characters)*"
    cut = text[: limit - len(note)]
    if (len(cut) - len(cut.rstrip("\\"))) % 2:
        cut = cut[:-1]
    return cut + note


def markdown(text):
    """Plain text (a verdict's reason) shown as such in Markdown: its special characters escaped."""
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", str(text))


def results_from(rows, feedback, settings, seconds):
    """results.json's content from grades.csv's rows of one student and the feedback file's text."""
    points = {int(n): p for n, p in settings["points"].items()}
    hidden = set(settings["hidden_exercises"])
    tests = []
    for row in rows:
        if row["exercise"] == "total":
            continue
        if row["exercise"] == "all":  # not gradable: one test that says why
            tests.append(
                {
                    "name": "Your submission",
                    "score": 0.0,
                    "max_score": float(sum(points.values())),
                    "output": clip(f"**not gradable**: {markdown(row['detail'])}", TEST_CHARS),
                    "output_format": "md",
                    "visibility": "visible",
                }
            )
            continue
        n = int(row["exercise"])
        tests.append(
            {
                "name": clip(f"Exercise {n}: {row['title']}", NAME_CHARS),
                "number": str(n),
                "score": float(row["points"]),
                "max_score": float(points[n]),
                "output": clip(f"**{row['status']}**: {markdown(row['detail'])}", TEST_CHARS),
                "output_format": "md",
                "visibility": settings["hidden_visibility"] if n in hidden else settings["visibility"],
            }
        )
    return {
        "score": float(sum(t["score"] for t in tests)),
        "execution_time": round(seconds),
        "output": clip(feedback, OUTPUT_CHARS),
        "output_format": "text",  # the feedback file is plain text (teacher/reports.py)
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def shown_feedback(rows, feedback, settings):
    """The feedback file as the student sees it: whole, unless exercises with hidden cases are shown later, whose
    sections are then left out (reports.feedback_text on the other rows) with a line saying when they come."""
    hidden = set(settings["hidden_exercises"])
    if settings["hidden_visibility"] == "visible" or not hidden or rows[0]["exercise"] == "all":
        return feedback
    points = {int(n): p for n, p in settings["points"].items()}

    def number(text):
        value = float(text)
        return int(value) if value == int(value) else value

    listed = [
        [r["student"], r["id"], int(r["exercise"]), r["title"], r["status"], number(r["points"]), r["detail"]]
        for r in rows
        if r["exercise"] != "total"
    ]
    total = next(r for r in rows if r["exercise"] == "total")
    total = [total["student"], total["id"], "total", "", total["status"], number(total["points"]), total["detail"]]
    exercises = {n: None for n in points}
    shown = [r for r in listed if r[2] not in hidden]
    when = settings["hidden_visibility"].replace("_", " ")
    later = ", ".join(str(n) for n in sorted(hidden))
    text = feedback_text(SimpleNamespace(student=rows[0]["student"]), shown, total, points, exercises)
    return f"{text}\nExercises {later} are also graded on hidden cases: their results are shown {when}.\n"


def run(root=ROOT):
    """Grade /autograder/submission into /autograder/results/results.json (Gradescope's run_autograder)."""
    start = time.monotonic()
    results = root / "results" / "results.json"
    (root / "results").mkdir(exist_ok=True)
    write_results(results, {"score": 0.0, "output": DID_NOT_FINISH, "stdout_visibility": "hidden", "tests": []})
    isolation = None
    try:
        lock_down(root)
        grader = root / "source" / "grader"
        settings = json.loads((grader / "settings.json").read_text(encoding="utf-8"))
        work = Path(tempfile.mkdtemp(prefix="autograder-"))  # root only (0700)
        name = student_name(root)
        try:
            notebook = submitted_file(root / "submission", work, name)
        except NotGradable as e:
            rows = [{"student": name, "id": "", "exercise": "all", "title": "", "status": "not gradable"}]
            rows[0].update(points="0", detail=str(e))
            write_results(results, results_from(rows, f"Not graded: {e}.", settings, time.monotonic() - start))
            print(f"not gradable: {e}")
            return 0
        with tempfile.TemporaryDirectory(prefix="bwrap-check-") as tmp:
            problem = sandbox.check(tmp)
        if problem:
            import fallback

            isolation = fallback.Fallback(
                cpu_seconds=settings["notebook_timeout"] + 60, memory=parse_memory(settings["memory"])
            )
            print(f"isolation: teacher/fallback.py, because {problem}")
        else:
            print("isolation: bubblewrap (teacher/sandbox.py)")
        hidden = grader / "hidden_tests.py"
        argv = [str(notebook), "-o", str(work / "out" / "grades.csv"), "--points", str(grader / "points.txt")]
        argv += ["--master", str(grader / "master.ipynb"), "--hidden-tests", str(hidden) if hidden.exists() else "none"]
        if settings["seed"] is None:
            argv += ["--secret", str(grader / "secret")]
        else:  # the teacher chose a public seed when making the zip (and, with public hidden tests, said so)
            argv += ["--seed", str(settings["seed"]), "--public-hidden-tests-ok"]
        argv += ["--data-dir", str(root / "source" / "data")]
        argv += ["--memory", str(settings["memory"]), "--cell-timeout", str(settings["cell_timeout"])]
        argv += ["--notebook-timeout", str(settings["notebook_timeout"])]
        argv += ["--answer-timeout", str(settings["answer_timeout"])]
        import grade

        sys.stdout.flush()
        grade.main(argv, isolation=isolation)
        if isolation:
            isolation.kill_all()
            print(f"killed {isolation.killed} leftover processes of {isolation.user}")
        with open(work / "out" / "grades.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        feedback = (work / "out" / "feedback" / f"{safe_name(rows[0]['student'])}.txt").read_text(encoding="utf-8")
        graded = results_from(rows, shown_feedback(rows, feedback, settings), settings, time.monotonic() - start)
        write_results(results, graded)
        print(f"score {graded['score']:g}; results.json written after {time.monotonic() - start:.1f} s")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    except BaseException:  # noqa: BLE001 (whatever happened, the student gets the fallback results and the log why)
        traceback.print_exc(file=sys.stdout)
        if isolation:
            isolation.kill_all()
        return 1


def parse_memory(text):
    import grade

    return grade.parse_bytes(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("zip", help="make the autograder zip to upload to Gradescope")
    make.add_argument("-o", "--output", default="autograder.zip", help="the zip (default: %(default)s)")
    make.add_argument("--points", help='points per exercise: "1" each (default), "2=3,9=2", or a file of N=points')
    make.add_argument("--master", default=str(se.MASTER), help="the master notebook (default: %(default)s)")
    make.add_argument("--hidden-tests", default=str(HERE / "hidden_tests.py"), help='"none": public cases only')
    make.add_argument(
        "--secret", help="the secret that draws the hidden cases (default: grade.py's own, made there if missing)"
    )
    make.add_argument("--seed", type=int, help="a public seed instead of the secret (see --public-hidden-tests-ok)")
    make.add_argument(
        "--public-hidden-tests-ok",
        dest="public_ok",
        action="store_true",
        help="allow --seed with the repository's own hidden tests (anyone can compute the cases: practice only)",
    )
    make.add_argument("--data-dir", help="the MNIST CSVs' folder (default: data/ next to the master)")
    make.add_argument("--memory", default="2G", help="address space per process (default: %(default)s)")
    make.add_argument("--cell-timeout", type=float, default=120, help="seconds per cell (default: %(default)s)")
    make.add_argument("--notebook-timeout", type=float, default=420, help="seconds per notebook (default: 420)")
    make.add_argument("--answer-timeout", type=float, default=20, help="seconds per exercise's values (default: 20)")
    for flag, what in [("--visibility", "each exercise"), ("--hidden-visibility", "exercises with hidden cases")]:
        make.add_argument(flag, choices=VISIBILITY, default="visible", help=f"when students see {what}'s result")
    commands.add_parser("run", help="grade /autograder/submission (run_autograder calls this, in the container)")
    options = parser.parse_args(argv)
    if options.command == "run":
        return run()
    options.data_dir = options.data_dir or str(Path(options.master).resolve().parent / "data")
    parse_memory(options.memory)
    if options.hidden_tests == str(HERE / "hidden_tests.py"):
        print(
            "note: the hidden tests are this public repository's (teacher/hidden_tests.py): your secret keeps "
            "their inputs unpredictable, but what kinds of cases they are is public; pass --hidden-tests YOUR_COPY",
            file=sys.stderr,
        )
    out = make_zip(options)
    size = out.stat().st_size
    print(f"wrote {out} ({size / 2**20:.1f} MB): upload it on Gradescope (Configure Autograder), see teacher/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
