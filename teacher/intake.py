"""The submissions as the LMS hands them over: which file is whose (Canvas, Moodle and Gradescope names), zips
opened safely, one row per student however many files they handed in, every member of a group.

What the LMSs put in their names (read from their source, so that any name maps back to its student):

- Canvas, "Download Submissions" (instructure/canvas-lms, lib/content_zipper.rb, `get_filename`,
  `sanitize_file_name`, `sanitize_user_name`, `add_upload_submission`): each uploaded file is
  `<sortable name>[_LATE]_<user id>_<attachment id>_<file name as uploaded>`, where the sortable name ("Müller,
  José") is downcased and stripped of every character that is not `[[:word:]]`, a Unicode class: letters of any
  script stay, spaces, commas, apostrophes and hyphens go ("müllerjosé", "obrienseán", "smithjonesann"). `LATE`
  marks a late submission (older Canvas wrote the whole name downcased: `_late_`). With anonymous grading the name
  is left out and the id is `anon_<anonymous id>`. A text entry or a URL is `<name>[_LATE]_<user id>_text.html` or
  `_link.html`. Canvas's own re-upload parser (app/models/assignment.rb, `infer_comment_context_from_filename`)
  takes the first two all-digit `_` fields as user id and attachment id: so do we. The zip holds the attachments of
  each student's latest submission, so two files of one student are two attachments of that submission; the
  attachment id (Canvas's database sequence) orders them.
- Moodle, "Download all submissions" (moodle/moodle, mod/assign/classes/downloader.php, `get_student_prefix`,
  `load_submissionplugin_filelist`): the prefix is `clean_filename(<full name with "_" replaced by " ">_<participant
  id>)`; clean_filename (lib/moodlelib.php, PARAM_FILE) keeps letters of any script, spaces and hyphens and drops
  `&<>"`|':\\/` and control characters ("Seán OBrien", "José Müller"). With "download submissions in folders" (the
  default since 3.1) each student's files sit in `<prefix>_assignsubmission_file` (4.1 and later) or
  `<prefix>_assignsubmission_file_` (3.1 to 4.0), kept under their own names; otherwise each file is
  `<prefix>_assignsubmission_file_<file name>`. The participant id is the number of the grading worksheet's
  `Participant 123456`. Blind marking writes `Participant` as the name.
- Gradescope, "Export Submissions": one folder per submission, and `submission_metadata.yml` mapping each folder
  to its `:submitters`, every member of a group with `:name`, `:sid` and `:email`.
"""

import atexit
import os
import re
import shutil
import stat
import sys
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

NOT_NOTEBOOKS = {
    ".py": "a Python script (a .py export of the notebook), not the notebook",
    ".html": "an HTML export of the notebook, not the notebook",
    ".pdf": "a PDF, not the notebook",
    ".zip": "a zip archive, not the notebook",
    ".md": "a Markdown export of the notebook, not the notebook",
}

DIGITS = re.compile(r"[0-9]+")
CANVAS_NAME = re.compile(r"[\w-]+")  # [[:word:]] after Canvas's sanitizing; older Canvas kept hyphens
CANVAS_ANONYMOUS = re.compile(r"^(?:(?P<late>LATE|late)_)?(?P<id>anon_[A-Za-z0-9]+)_(?P<attachment>[0-9]+)_.+$")
CANVAS_TEXT = re.compile(r"^(?P<name>[\w-]+?)(?:_(?P<late>LATE|late))?_(?P<id>[0-9]+)_(?:text|link)\.html$")
MOODLE = re.compile(r"^(?P<name>[^_/]+)_(?P<id>[0-9]+)_assignsubmission_(?:file|onlinetext)(?:_(?P<original>.*))?$")

# A zip is read as hostile input: no member outside its folder, no links, bounded count, size and compression ratio.
EXPORT_LIMITS = {"members": 20000, "bytes": 4 * 2**30, "ratio": 200}  # the whole LMS download
STUDENT_LIMITS = {"members": 500, "bytes": 200 * 2**20, "ratio": 200}  # one student's zip


class NotGradable(Exception):
    """The submission cannot be graded; the message says why."""


@dataclass
class Submission:
    student: str
    id: str
    path: Path | None  # None: nothing to grade (`problem` says why)
    problem: str = ""
    late: bool = False
    notes: list = field(default_factory=list)  # what intake decided: the file graded among several, what was set aside
    members: list = field(default_factory=list)  # a group's other members, (name, id) each: they get the same rows
    entry: str = ""  # the file or folder name in the export (Moodle's feedback zip names its folder the same)
    layout: str = ""  # canvas, moodle, gradescope or "" (a file or folder named after the student)


@dataclass
class LmsName:
    student: str
    id: str
    layout: str
    late: bool = False
    order: int = 0  # Canvas's attachment id: the larger, the later upload


def nfc(name):
    """Names as the LMS wrote them: macOS unzips to decomposed letters (NFD), the LMS writes composed ones."""
    return unicodedata.normalize("NFC", name)


def parse_lms_name(name):
    """An LmsName from a Canvas or Moodle file or folder name, or None."""
    name = nfc(name)
    match = MOODLE.match(name)
    if match:
        student = match.group("name").strip()
        if student == "Participant":  # blind marking: the participant id is all there is
            student = f"Participant {match.group('id')}"
        return LmsName(student, match.group("id"), "moodle")
    match = CANVAS_ANONYMOUS.match(name)
    if match:
        anonymous = match.group("id")
        return LmsName(anonymous, anonymous, "canvas", bool(match.group("late")), int(match.group("attachment")))
    match = CANVAS_TEXT.match(name)
    if match:
        return LmsName(match.group("name").lower(), match.group("id"), "canvas", bool(match.group("late")))
    parts = name.split("_")
    for i in range(1, len(parts) - 2):  # Canvas's own parser: the first two all-digit fields
        if DIGITS.fullmatch(parts[i]) and DIGITS.fullmatch(parts[i + 1]):
            before = parts[:i]
            late = before[-1] in ("LATE", "late") and len(before) > 1
            student = "_".join(before[:-1] if late else before)
            if CANVAS_NAME.fullmatch(student):
                return LmsName(student.lower(), parts[i], "canvas", late, int(parts[i + 1]))
            return None
    return None


def student_of(name):
    """(student, LMS id) from a file or folder name: Canvas's and Moodle's patterns, else the name itself."""
    parsed = parse_lms_name(name)
    if parsed:
        return parsed.student, parsed.id
    name = nfc(name)
    stem = name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else Path(name).stem if "." in name else name
    return stem, ""


# ---------------------------------------------------------------------------------------------- zips


def member_name(info):
    """A zip member's name as its writer meant it: UTF-8 when flagged, else CP437, else (a common case: UTF-8
    written without the flag, as rubyzip and Windows tools do) UTF-8 after all."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return nfc(name.replace("\\", "/"))


def extract_zip(path, dest, limits):
    """Extract the zip at `path` into the folder `dest`, refusing what could escape or swell; returns the skipped
    members (links, hidden files). Raises NotGradable saying what is wrong; nothing is left half-written."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise NotGradable(f"a corrupt zip archive ({e})") from None
    dest = Path(dest)
    skipped = []
    try:
        with archive:
            infos = archive.infolist()
            if len(infos) > limits["members"]:
                raise NotGradable(f"a zip archive with {len(infos)} members (at most {limits['members']} are read)")
            declared = sum(i.file_size for i in infos)
            if declared > limits["bytes"]:
                most = limits["bytes"] // 2**20
                raise NotGradable(f"a zip archive of {declared / 2**20:.0f} MB unpacked (at most {most} MB are read)")
            written = 0
            for index, info in enumerate(infos):
                name = member_name(info)
                parts = [p for p in name.split("/") if p not in ("", ".")]
                if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                    raise NotGradable(f"a zip archive with a member outside its folder ({name!r})")
                if not parts or name.startswith("__MACOSX/"):
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    skipped.append(f"{name} (a link)")
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                ratio = info.file_size / info.compress_size if info.compress_size else 0
                if ratio > limits["ratio"] and info.file_size > 2**20:  # a zip bomb, or nothing a notebook needs
                    raise NotGradable(f"a zip archive whose member {name!r} is compressed {ratio:.0f} to 1")
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    raise NotGradable(f"a zip archive with the member {name!r} twice")
                with archive.open(info) as source, open(target, "wb") as out:
                    size = 0
                    while chunk := source.read(2**20):
                        size += len(chunk)
                        written += len(chunk)
                        if size > info.file_size or written > limits["bytes"]:  # the sizes it declared were false
                            raise NotGradable(f"a zip archive whose member {name!r} is larger than it declares")
                        out.write(chunk)
                # The zip's time, and its order within one time: Moodle stamps every member with the time of the
                # download but adds each student's files in upload order (assignsubmission_file's get_files sorts
                # by timemodified), so one nanosecond per member keeps that order as the files' times.
                stamp = int(datetime(*info.date_time).timestamp()) * 10**9 + index
                os.utime(target, ns=(stamp, stamp))
    except NotGradable:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError) as e:  # encrypted, truncated, ...
        shutil.rmtree(dest, ignore_errors=True)
        raise NotGradable(f"a zip archive that cannot be read ({type(e).__name__}: {e})") from None
    return skipped


_SCRATCH = []


def scratch_folder():
    """A private folder for unpacked zips, removed when the grader exits."""
    if not _SCRATCH:
        folder = tempfile.mkdtemp(prefix="grading-intake-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SCRATCH.append(Path(folder))
    return Path(tempfile.mkdtemp(dir=_SCRATCH[0]))


# ---------------------------------------------------------------------------------------------- one student's files


def visible_files(folder):
    """The files in a student's folder, at any depth (no hidden files or folders, no .ipynb_checkpoints)."""
    return [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def notebooks_in(folder):
    """The notebooks in a student's folder, at any depth (no hidden folders, no .ipynb_checkpoints)."""
    return [p for p in visible_files(folder) if p.suffix.lower() == ".ipynb"]


def candidates(files, shown):
    """(notebooks, notes): the notebooks among `files`, those inside zips unpacked; `shown(path)` names a file."""
    notebooks, notes = [], []
    for file in files:
        if file.suffix.lower() == ".ipynb":
            notebooks.append((file, shown(file)))
        elif file.suffix.lower() == ".zip":
            inside = scratch_folder()
            try:
                skipped = extract_zip(file, inside, STUDENT_LIMITS)
            except NotGradable as e:
                notes.append(f"{shown(file)}: {e}")
                continue
            if skipped:
                notes.append(f"{shown(file)}: skipped {', '.join(skipped)}")
            for inner in notebooks_in(inside):
                notebooks.append((inner, f"{shown(file)}/{inner.relative_to(inside).as_posix()}"))
    return notebooks, notes


def choose(notebooks, order):
    """The notebook to grade among several: the largest `order` (the LMS's own order, else the file time), and a
    note naming the others, set aside."""
    ranked = sorted(notebooks, key=lambda nb: (order(nb[0]), nb[1]))
    graded, others = ranked[-1], ranked[:-1]
    if not others:
        return graded[0], []
    tie = order(others[-1][0]) == order(graded[0])
    how = "the last by name: they have the same time" if tie else "the latest"
    names = ", ".join(shown for _, shown in others)
    again = ": to grade another, pass its file" if tie else ""
    return graded[0], [f"{len(notebooks)} notebooks handed in: graded {graded[1]} ({how}), set aside {names}{again}"]


def mtime(path):
    return path.stat().st_mtime_ns


# ---------------------------------------------------------------------------------------------- a whole export


@dataclass
class Intake:
    submissions: list
    single: bool  # one student's file or folder: the class's CSVs are updated, not rewritten
    layout: str  # canvas, moodle, gradescope, or ""


def gradescope_names(folder, warn):
    """{submission folder: [(name, id), ...] every submitter} from a Gradescope export's submission_metadata.yml."""
    metadata = folder / "submission_metadata.yml"
    if not metadata.is_file():
        return {}
    try:
        import yaml  # PyYAML: installed with jupyter (jupyter-events needs it)
    except ImportError:
        warn(f"warning: {metadata} not read (no PyYAML: pip install pyyaml): the folder names stand for the students")
        return {}
    try:
        if metadata.stat().st_size > 64 * 2**20:
            raise ValueError("larger than 64 MB")
        data = yaml.safe_load(metadata.read_text(encoding="utf-8")) or {}
        names = {}
        for key, entry in data.items():
            members = []
            for submitter in entry.get(":submitters") or []:
                name = str(submitter.get(":name") or submitter.get(":email") or key)
                members.append((nfc(name), str(submitter.get(":sid") or submitter.get(":email") or "")))
            names[str(key)] = members or [(str(key), "")]
        return names
    except Exception as e:  # another layout: the folder names stand for the students, and the teacher is told
        warn(f"warning: {metadata} not read ({type(e).__name__}: {e}): the folder names stand for the students")
        return {}


def is_export(folder):
    """True for a folder laid out as an LMS export (Gradescope's metadata, or Canvas or Moodle names)."""
    if (folder / "submission_metadata.yml").is_file():
        return True
    return any(parse_lms_name(p.name) for p in folder.iterdir() if not p.name.startswith("."))


def unwrap(folder):
    """An unpacked download often holds one folder holding the export: that folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not is_export(folder):
        return entries[0]
    return folder


def read(path, warn):
    """The submissions at `path`: an LMS export (a folder, or the zip the LMS hands over), or one student's file or
    folder (anywhere inside an export: the student is named as in the whole export)."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"grade.py: {path} does not exist")
    if path.is_file() and path.suffix.lower() == ".zip":
        inside = scratch_folder()
        try:
            extract_zip(path, inside, EXPORT_LIMITS)
        except NotGradable as e:
            raise SystemExit(f"grade.py: {path}: {e}") from None
        folder = unwrap(inside)
        if is_export(folder):
            return read_export(folder, warn)
        return Intake(one_student(path, path.parent, {}, warn)[:1], True, "")  # one student's zip
    export, entry = export_of(path)
    if entry is None:
        return read_export(path, warn)
    subs = one_student(entry, export, gradescope_names(export, warn), warn, chosen=path if path != entry else None)
    return Intake(subs, True, subs[0].layout if subs else "")


def export_of(path):
    """(export folder, the entry holding path) for a path inside an export (its own name, or a folder up to three
    levels above it, names a student as the export does); (path, None) for a class folder."""
    path = path.resolve()
    for candidate in [path, *path.parents][:4]:
        if (candidate.parent / "submission_metadata.yml").is_file() or parse_lms_name(candidate.name):
            return candidate.parent, candidate
    if path.is_dir():
        return path, None
    return path.parent, path  # a file named after the student


def one_student(entry, export, gradescope, warn, chosen=None):
    """The submission (one per group member) of one entry of an export: a file, or a folder of the student's files.
    `chosen`: the file to grade, when the teacher names one inside the entry."""
    name = nfc(entry.name)
    layout = "gradescope" if name in gradescope else ""
    late = False
    if layout:
        members = gradescope[name]
    else:
        parsed = parse_lms_name(name)
        if parsed:
            layout, late = parsed.layout, parsed.late
            members = [(parsed.student, parsed.id)]
        else:
            members = [student_of(name)]
    (student, lms_id), others = members[0], members[1:]
    sub = Submission(student, lms_id, None, late=late, members=others, entry=name, layout=layout)
    if len(members) > 1:
        sub.notes.append("a group submission of " + ", ".join(m[0] for m in members) + ": every member gets these rows")
    if entry.is_file():
        files, shown = [entry], lambda p: p.name
    else:
        files, shown = visible_files(entry), lambda p: p.relative_to(entry).as_posix()
    if chosen is not None:
        files = [chosen]
    notebooks, notes = candidates(files, shown)
    sub.notes += notes
    if notebooks:
        sub.path, picked = choose(notebooks, lambda p: mtime(p))
        sub.notes += picked
        parsed = parse_lms_name(sub.path.name) if not sub.id else None
        if parsed:  # a folder named after the student holding a file the LMS named: its id
            sub.id, sub.late = parsed.id, parsed.late
    elif len(files) == 1:
        sub.path = files[0]  # not a notebook: prepare() says what it is
        if files[0].suffix.lower() == ".zip" and notes:
            sub.path, sub.problem = None, notes[0].split(": ", 1)[1]
        elif files[0].suffix.lower() == ".zip":
            sub.path, sub.problem = None, f"a zip archive with no notebook inside ({shown(files[0])})"
    else:
        listed = ", ".join(shown(p) for p in files[:5]) or "it is empty"
        sub.problem = f"no notebook in the folder {name}/ ({listed}): hand in one .ipynb file"
        warn(f"warning: {name}/: no notebook in the folder {name}/")
    for note in sub.notes:
        warn(f"note: {student}: {note}")
    return [sub]


def read_export(folder, warn):
    """Every student of an export folder, one Submission each: several files of one student (Canvas attachments,
    Moodle files downloaded without folders) give one, the latest by the LMS's own order; a group gives one with
    its members."""
    folder = unwrap(folder)
    gradescope = gradescope_names(folder, warn)
    found, lms_files = [], {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in ("submission_metadata.yml", "__MACOSX") or entry.is_symlink():
            continue
        parsed = parse_lms_name(entry.name) if entry.is_file() else None
        if parsed:
            lms_files.setdefault((parsed.layout, parsed.id), []).append((entry, parsed))
            continue
        found += one_student(entry, folder, gradescope, warn)
    for files in lms_files.values():
        found.append(files_of_one_student(files, warn))
    found.sort(key=lambda s: s.entry.lower())
    layouts = {s.layout for s in found} - {""}
    seen = {}
    for sub in found:  # two students with the same name and different ids: named apart
        seen[sub.student] = seen.get(sub.student, 0) + 1
        if seen[sub.student] > 1:
            sub.student = f"{sub.student}-{seen[sub.student]}"
    return Intake(found, False, layouts.pop() if len(layouts) == 1 else "")


def files_of_one_student(files, warn):
    """One student's files named by the LMS (Canvas: the attachments of their latest submission): one Submission,
    the latest notebook graded (Canvas: the largest attachment id; Moodle: the file time), the others named as set
    aside."""
    canvas = files[0][1].layout == "canvas"
    files.sort(key=lambda f: f[1].order if canvas else mtime(f[0]))
    entry, parsed = files[-1]
    late = any(p.late for _, p in files)
    sub = Submission(parsed.student, parsed.id, None, late=late, entry=entry.name, layout=parsed.layout)
    order, entries, notebooks = {}, {}, []
    for file, name in files:
        found, notes = candidates([file], lambda p: p.name)
        sub.notes += notes
        for path, _ in found:
            order[path] = name.order if canvas else mtime(file)
            entries[path] = file.name
        notebooks += found
    if notebooks:
        sub.path, picked = choose(notebooks, lambda p: order[p])
        how = "(the latest attachment)" if canvas else "(the latest)"
        sub.notes += [n.replace("(the latest)", how) for n in picked]
        sub.entry = entries[sub.path]
    elif len(files) == 1 and not sub.notes:
        sub.path = entry  # not a notebook: prepare() says what it is
    elif len(files) == 1:
        sub.problem = sub.notes.pop(0).split(": ", 1)[1]
    else:
        listed = ", ".join(f.name for f, _ in files[:5])
        sub.problem = f"no notebook among {listed}: hand in the .ipynb file"
    for note in sub.notes:
        warn(f"note: {sub.student}: {note}")
    return sub


def find_submissions(path, warn=lambda text: print(text, file=sys.stderr)):
    """The submissions at `path` (a file, a folder of files and folders, or an LMS's zip), each with its student."""
    return read(path, warn).submissions
