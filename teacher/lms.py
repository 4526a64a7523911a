"""The LMS's own files, filled in: Canvas's gradebook export, Moodle's grading worksheet, Moodle's feedback zip.

The teacher exports the file from their LMS, the grader writes a copy with this assignment's scores filled in by
id, and the teacher imports the copy back. Every other cell is kept as it was (the importers skip unchanged cells).

- Canvas, Grades > Export (instructure/canvas-lms, lib/gradebook_exporter.rb): `Student, ID, [SIS User ID,] SIS
  Login ID, [Integration ID, Root Account,] Section`, custom columns, one column per assignment titled
  `<title> (<assignment id>)`, then read-only totals; a `Manual Posting` row when an assignment posts manually, a
  `    Points Possible` row, then one row per student, `ID` being the Canvas user id (the one in the submissions
  download's file names). The importer (app/models/gradebook_importer.rb) finds the assignment by the id in the
  header and the student by ID, then SIS User ID, then SIS Login ID. Cells: a score, `EX` (excused), `N/A` (not
  assigned to the student). The separator and decimal mark follow the user's CSV settings (`,` or `;`).
- Moodle, the assignment's "Download grading worksheet" (moodle/moodle, mod/assign/gradingtable.php, downloading):
  `Identifier` ("Participant 123456", the same number as in the submissions download), `Full name`, the identity
  fields (`Email address`), `Status`, [`Group`, `Marker`], `Grade`, `Maximum grade` (`Maximum Grade` in older
  versions), [`Marking workflow state`], `Grade can be changed`, `Last modified (submission)`, [`Online text`],
  `Last modified (grade)`, `Feedback comments`. The importer (mod/assign/feedback/offline/importgradeslib.php and
  locallib.php) needs `Identifier`, `Grade` and `Last modified (grade)`, skips a grade above the maximum, an empty
  one, a grade locked, and one changed in Moodle since the worksheet was downloaded (unless "ignore last modified
  date" is ticked); it sets `Feedback comments` as the feedback text.
- Moodle's feedback files, "Upload multiple feedback files in a zip" (mod/assign/feedback/file/importziplib.php):
  each file sits in a folder named as in the submissions download, `<Full Name>_<participant id>_assignsubmission_
  file` (the importer reads the id and the plugin from the folder name, `_` separated), under any file name.
"""

import csv
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*) \((?P<id>[0-9]+)\)$")


class LmsFileError(Exception):
    """The LMS file is not one this module knows, or lacks what it needs; the message says which and why."""


@dataclass
class Table:
    rows: list
    delimiter: str
    newline: str
    bom: bool


@dataclass
class Filled:
    kind: str  # canvas or moodle
    column: str
    filled: list = field(default_factory=list)  # (name, id, value written)
    left: list = field(default_factory=list)  # (name, why): rows of the LMS file left as they were
    missing: list = field(default_factory=list)  # (student, id, why): graded here, no row in the LMS file
    scale: str = ""  # how the points were scaled to the LMS's maximum, if they were


def read_table(path):
    """The CSV as the LMS wrote it: its rows, separator, line ending and byte-order mark."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LmsFileError("not UTF-8 text (export the CSV again, as UTF-8)") from None
    if not text.strip():
        raise LmsFileError("empty")
    first = text.splitlines()[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return Table(rows, delimiter, "\r\n" if "\r\n" in text else "\n", raw.startswith(b"\xef\xbb\xbf"))


def write_table(path, table):
    """Write the rows in the file's own dialect, atomically (a failure leaves no half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8-sig" if table.bom else "utf-8") as f:
            csv.writer(f, delimiter=table.delimiter, lineterminator=table.newline).writerows(table.rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def kind_of(header):
    """canvas or moodle, from the header row; else LmsFileError."""
    folded = [h.strip().casefold() for h in header]
    if len(folded) > 2 and (folded[0] == "student" or folded[:2] == ["lastname", "firstname"]) and "id" in folded[1:3]:
        return "canvas"
    if "identifier" in folded and "grade" in folded:
        return "moodle"
    raise LmsFileError(
        "neither a Canvas gradebook export (Student, ID, ..., Section, then the assignments) nor a Moodle grading "
        "worksheet (Identifier, Full name, ..., Grade, ...): its header is " + ", ".join(header[:6])
    )


def number(text):
    """A number written by the LMS ("11", "11.00", "11,00"), or None."""
    text = (text or "").strip()
    if re.fullmatch(r"-?[0-9]+([.,][0-9]+)?", text):
        return float(text.replace(",", "."))
    return None


def score_text(value, comma):
    text = f"{round(value, 2):g}"
    return text.replace(".", ",") if comma else text


def find_column(header, wanted, candidates, what):
    """The index of the column named `wanted` (exactly, or ignoring case, or by a Canvas assignment's title or id)."""
    folded = [h.strip().casefold() for h in header]
    for i in candidates:
        match = CANVAS_ASSIGNMENT.match(header[i].strip())
        names = {folded[i]} | ({match.group("title").casefold(), match.group("id")} if match else set())
        if wanted.strip().casefold() in names:
            return i
    listed = "; ".join(header[i] for i in candidates) or "none"
    raise LmsFileError(f"no {what} column named {wanted!r} (its columns: {listed})")


def fill(lms_file, output, book, column=None, feedback=None):
    """Write to `output` the LMS file `lms_file` with the scores of `book` (gradebook.csv's rows, as dicts) filled in
    by id, in `column` (Canvas: the assignment's column, found when it is the only one; Moodle: Grade). `feedback`:
    {student: HTML} for Moodle's Feedback comments. Returns a Filled saying what was written and what was not."""
    table = read_table(lms_file)
    header = table.rows[0]
    kind = kind_of(header)
    folded = [h.strip().casefold() for h in header]
    by_id = {}
    for row in book:
        if row.get("id"):
            by_id.setdefault(row["id"], row)
    if kind == "canvas":
        sections = [i for i, h in enumerate(folded) if h == "section"]
        if not sections:
            raise LmsFileError("a Canvas export has a Section column after the student's columns")
        assignments = [i for i in range(sections[0] + 1, len(header)) if CANVAS_ASSIGNMENT.match(header[i].strip())]
        if column:
            at = find_column(header, column, assignments, "assignment")
        elif len(assignments) == 1:
            at = assignments[0]
        else:
            listed = "; ".join(header[i] for i in assignments) or "none"
            raise LmsFileError(f"name the assignment's column with --lms-column (its columns: {listed})")
        id_at, name_at = folded.index("id"), 0
        possible = next((r for r in table.rows[1:] if r and r[0].strip() == "Points Possible"), None)
        maximum_of = lambda row: number(possible[at]) if possible and len(possible) > at else None  # noqa: E731
        skip = lambda row: not row[id_at].strip()  # noqa: E731  the Points Possible and Manual Posting rows
        locked = lambda row: "not assigned to the student (N/A)" if row[at].strip() == "N/A" else ""  # noqa: E731
        comment_at = None
    else:
        at = find_column(header, column or "Grade", range(len(header)), "grade")
        id_at = folded.index("identifier")
        name_at = folded.index("full name") if "full name" in folded else id_at
        maximum_at = folded.index("maximum grade") if "maximum grade" in folded else None
        change_at = folded.index("grade can be changed") if "grade can be changed" in folded else None
        comment_at = folded.index("feedback comments") if "feedback comments" in folded and feedback else None
        maximum_of = lambda row: number(row[maximum_at]) if maximum_at is not None else None  # noqa: E731
        skip = lambda row: not row[id_at].strip()  # noqa: E731
        locked = (  # noqa: E731
            lambda row: (
                "its grade is locked in Moodle (Grade can be changed: No)"
                if change_at is not None and row[change_at].strip().casefold() == "no"
                else ""
            )
        )
    result = Filled(kind, header[at])
    matched = set()
    for row in table.rows[1:]:
        if len(row) <= max(at, id_at) or skip(row):
            continue
        lms_id = row[id_at].strip()
        if kind == "moodle":
            participant = re.search(r"([0-9]+)$", lms_id)  # "Participant 123456"
            lms_id = participant.group(1) if participant else lms_id
        name = row[name_at].strip()
        mine = by_id.get(lms_id)
        if mine is None:
            result.left.append((name, "no submission graded here"))
            continue
        matched.add(lms_id)
        why = locked(row)
        if not why and mine.get("note", "").startswith("not gradable"):
            why = mine["note"]
        if why:
            result.left.append((name, why))
            continue
        total, most = float(mine["total"]), float(mine["max"])
        lms_most = maximum_of(row)
        value = total
        if lms_most and most and abs(lms_most - most) > 1e-9:
            value = total * lms_most / most
            result.scale = f"scaled from {most:g} points to the LMS's {lms_most:g}"
        comma = bool(re.fullmatch(r"[0-9]+,[0-9]+", (row[at] or "").strip())) or table.delimiter == ";"
        row[at] = score_text(value, comma)
        if comment_at is not None and len(row) > comment_at and mine["student"] in feedback:
            row[comment_at] = feedback[mine["student"]]
        result.filled.append((name, lms_id, row[at]))
    for row in book:
        if not row.get("id"):
            result.missing.append(
                (row["student"], "", "no LMS id (its file or folder is not named as the LMS names it)")
            )
        elif row["id"] not in matched:
            result.missing.append((row["student"], row["id"], f"no row with this id in {Path(lms_file).name}"))
    if output is not None:  # None: only check that the file can be filled (before a long grading run)
        write_table(output, table)
    return result


def target(lms_file, output, grades):
    """Where the filled LMS file goes: `output` (--lms-output), else <its name>-graded.csv next to grades.csv."""
    source = Path(lms_file)
    return Path(output or Path(grades).with_name(f"{source.stem}-graded{source.suffix}"))


def fill_from_gradebook(lms_file, output, gradebook, page_of, column=None):
    """Fill the LMS file from gradebook.csv (all students, after a re-grade too) and each student's HTML feedback
    (`page_of(student)`: its path); return what to tell the teacher: what was written, what was left as it was,
    who was not found."""
    with open(gradebook, newline="", encoding="utf-8") as f:
        book = list(csv.DictReader(f))
    pages = {}
    for row in book:
        page = Path(page_of(row["student"]))
        if page.exists():
            pages[row["student"]] = feedback_body(page.read_text(encoding="utf-8"))
    filled = fill(lms_file, output, book, column, pages)
    lines = [f"wrote {output}: {len(filled.filled)} scores in {filled.kind}'s column {filled.column!r}: import it"]
    lines += [f"  the points are {filled.scale}"] if filled.scale else []
    lines += [f"  left as it was: {name}: {why}" for name, why in filled.left]
    lines += [f"  graded here, not filled in: {student} {lms_id}: {why}" for student, lms_id, why in filled.missing]
    return "\n".join(lines)


def feedback_body(page):
    """The inside of a feedback page's <body>, on one line: what goes into Moodle's Feedback comments (an HTML editor
    field; one line, so that a spreadsheet opened in between keeps the CSV's rows whole)."""
    match = re.search(r"<body>(.*)</body>", page, re.S)
    return "".join(line.strip() for line in (match.group(1) if match else page).splitlines())


def moodle_folder(entry, name, participant):
    """The folder of a student in Moodle's download, as the feedback importer reads it."""
    match = re.match(r"^([^_/]+_[0-9]+_assignsubmission_file)", entry or "")
    return match.group(1) if match else f"{name.replace('_', ' ')}_{participant}_assignsubmission_file"


def moodle_feedback_zip(path, pages, update):
    """Write (or, when `update`, change in place) Moodle's feedback zip: {folder: HTML} as <folder>/feedback.html."""
    path = Path(path)
    kept = {}
    if update and path.exists():
        with zipfile.ZipFile(path) as old:
            for info in old.infolist():
                if info.filename.split("/")[0] not in pages:
                    kept[info.filename] = old.read(info)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in kept.items():
                archive.writestr(name, data)
            for folder, page in sorted(pages.items()):
                archive.writestr(f"{folder}/feedback.html", page)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
