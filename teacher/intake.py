"""The submissions as the LMS hands them over: which file is whose (Canvas, Moodle and Gradescope names)."""

import re
from dataclasses import dataclass
from pathlib import Path

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
