"""What the grader writes: the rows of grades.csv and gradebook.csv, the feedback files and the summary."""

import csv
import dataclasses
import html
import io
import os
import re
import sys
from pathlib import Path

import judge
from execute import why_no_values
from prepare import first_line

STATUSES = ["right", "wrong", "not attempted", "did not run", "not gradable"]


GRADES_COLUMNS = ["student", "id", "exercise", "title", "status", "points", "detail"]
NOTES_COLUMNS = ["student", "id", "exercise", "note"]


def verdict_rows(sub, exercises, checks, prepared, run, hidden, points, options):
    """The rows of one graded submission: [student, id, exercise, title, status, points, detail]."""
    return verdict_rows_and_notes(sub, exercises, checks, prepared, run, hidden, points, options)[0]


def error_type(error):
    """'ValueError' of 'ValueError: ...': the type only, when it is a plain name; else None. An OS error keeps the
    standard words of its number ('OSError: No space left on device'), from the system's table, not its message."""
    match = re.match(r"(\w{1,40})(:|$)", str(error or ""))
    if not match:
        return None
    number = re.match(r"\w+: \[Errno (\d{1,4})\]", str(error))
    return f"{match.group(1)}: {os.strerror(int(number.group(1)))}" if number else match.group(1)


def without_final_error_text(run):
    """The run with the grader's last cell's error cut to its type: that cell runs the learner's code on the hidden
    cases, and the message of an exception raised there is the learner's (it can carry a hidden input)."""
    events = []
    for event in run.events:
        if event.get("event") == "final" and event.get("error"):
            event = {**event, "error": error_type(event["error"]) or "an exception"}
        events.append(event)
    return dataclasses.replace(run, events=events)


def verdict_rows_and_notes(sub, exercises, checks, prepared, run, hidden, points, options):
    """(rows, the teacher's notes): the rows as verdict_rows; the notes [student, id, exercise, note] say what the
    student's rows leave out (the master's verdict on hidden cases, the full error of the grader's last cell) and
    the answers redefined after their exercise's cell."""
    notes = []
    if run.values is None:
        why = why_no_values(prepared, without_final_error_text(run), options)
        final = next((e for e in run.events if e.get("event") == "final" and e.get("error")), None)
        if final:
            notes.append([sub.student, sub.id, "all", f"the grader's last cell failed: {final['error']}"])
    rows = []
    for n, ex in exercises.items():
        if run.values is None:
            status, detail = "did not run", why
        else:
            status, detail, note = judge.judge_with_notes(checks, n, run.values.get(n), hidden.get(n))
            if note:
                notes.append([sub.student, sub.id, n, note])
        rows.append([sub.student, sub.id, n, ex.title, status, points[n] if status == "right" else 0, detail])
    for n, (name, cells) in getattr(prepared, "redefinitions", {}).items():
        notes.append([sub.student, sub.id, n, redefinition_words(name, n, cells)])
    return rows, [[*row[:3], sheet_safe(row[3])] for row in notes]


def sheet_safe(text, limit=1000):
    """A note as a spreadsheet shows it and no more: cut at `limit` characters, and a leading =, +, - or @ (a
    formula to a spreadsheet; the text may be the student's) quoted with an apostrophe."""
    text = str(text)[:limit]
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def redefinition_words(name, n, cells):
    """The note on an answer defined again after its exercise's cell: which cells, and what is graded."""
    where = "; ".join(f"cell {position} ({first!r})" for position, first in cells)
    last = "the last of them" if len(cells) > 1 else "that one"
    return (
        f"{name} (exercise {n}) is defined again after its exercise's cell, in {where}: {last} is what was graded "
        "(the last definition, as after Run all)"
    )


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
    for n, (name, cells) in getattr(prepared, "redefinitions", {}).items():
        notes.append(redefinition_words(name, n, cells))
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
    """The CSV, written whole through replace_file: a crash never leaves half a file, and a link is not followed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(rows)
    replace_file(path, text.getvalue().encode("utf-8"))


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
    replace_file(folder / f"{safe_name(sub.student)}.txt", text.encode("utf-8"))
    replace_file(folder / f"{safe_name(sub.student)}.html", page.encode("utf-8"))
    return page


def replace_file(path, data):
    """Write data to path through a new file renamed over it: never into a link or half-written."""
    partial = path.with_name(f".{path.name}.part")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # left only if the rename failed


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
