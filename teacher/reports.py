"""What the grader writes: the rows of grades.csv and gradebook.csv, the feedback files and the summary."""

import csv
import html
import re
import sys
from pathlib import Path

import judge
from execute import why_no_values
from prepare import first_line

STATUSES = ["right", "wrong", "not attempted", "did not run", "not gradable"]


GRADES_COLUMNS = ["student", "id", "exercise", "title", "status", "points", "detail"]


def verdict_rows(sub, exercises, checks, prepared, run, hidden, points, options):
    """The rows of one graded submission: [student, id, exercise, title, status, points, detail]."""
    why = why_no_values(prepared, run, options) if run.values is None else ""
    rows = []
    for n, ex in exercises.items():
        if run.values is None:
            status, detail = "did not run", why
        else:
            status, detail = judge.judge(checks, n, run.values.get(n), hidden.get(n))
            detail = value_wording(ex, status, detail)
        rows.append([sub.student, sub.id, n, ex.title, status, points[n] if status == "right" else 0, detail])
    return rows


def value_wording(ex, status, detail):
    """judge's "not attempted" words are a function's ("dW1_11 still returns None ... ending in a return"); a value
    exercise (dW1_11 = None, first_wrong = None) is not written with a return: say so in its own words."""
    if ex.function_name or status != "not attempted":
        return detail
    if detail.startswith(f"{ex.learner_name} still returns None"):
        return f"{ex.learner_name} is still None: put your answer in place of the None, then run the cell"
    return detail


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


def gradebook_columns(exercises):
    """gradebook.csv's columns: one row per student, `late` from the LMS's marker (Canvas's LATE)."""
    return ["student", "id", "late", *[f"exercise {n}" for n in exercises], "total", "max", "note"]


def gradebook_row(sub, rows, exercises, points, note=""):
    got = {r[2]: r[5] for r in rows if r[2] in exercises}
    total = sum(got.values())
    late = "late" if sub.late else ""
    return [sub.student, sub.id, late, *[got.get(n, 0) for n in exercises], total, sum(points.values()), note]


def feedback_parts(sub, rows, total, points):
    """The feedback's content: (title, points line, [(heading, status, reason)], notes), in the checks' words."""
    most = sum(points.values())
    title = f"Feedback for {sub.student}"
    if rows and rows[0][2] == "all":
        return title, f"Not graded: {rows[0][6]}. Points: 0 of {most:g}", [], ""
    sections = [(f"Exercise {r[2]}: {r[3]} ({r[5]:g}/{points[r[2]]:g} points)", r[4], r[6]) for r in rows]
    return title, f"Points: {total[5]:g} of {most:g} ({total[4]})", sections, total[6]


def feedback_text(sub, rows, total, points, exercises=None):
    """The student's feedback as plain text: each verdict and its reason (the checks' words; never reference code)."""
    title, score, sections, notes = feedback_parts(sub, rows, total, points)
    lines = [title, "=" * len(title), "", score, ""]
    for heading, status, reason in sections:
        lines += [heading, f"  {status}: {reason}", ""]
    if notes:
        lines += ["Notes", f"  {notes}", ""]
    return "\n".join(lines)


def feedback_html(sub, rows, total, points, exercises=None):
    """The same feedback as a small HTML page (a Moodle feedback file, or a message pasted into any LMS)."""
    title, score, sections, notes = feedback_parts(sub, rows, total, points)
    colour = {"right": "#1a7f37", "wrong": "#b42318", "did not run": "#b42318"}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><strong>{html.escape(score)}</strong></p>",
    ]
    for heading, status, reason in sections:
        style = f' style="color: {colour[status]}"' if status in colour else ""
        parts += [
            f"<h2>{html.escape(heading)}</h2>",
            f"<p><strong{style}>{html.escape(status)}</strong>: {html.escape(reason)}</p>",
        ]
    if notes:
        parts += ["<h2>Notes</h2>", f"<p>{html.escape(notes)}</p>"]
    return "\n".join(parts + ["</body></html>", ""])


def write_feedback(folder, sub, rows, total, points):
    """feedback/<student>.txt and .html; returns the HTML (for Moodle's feedback zip and worksheet)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = feedback_text(sub, rows, total, points)
    page = feedback_html(sub, rows, total, points)
    (folder / f"{safe_name(sub.student)}.txt").write_text(text, encoding="utf-8")
    (folder / f"{safe_name(sub.student)}.html").write_text(page, encoding="utf-8")
    return page


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
