"""From the LMS download to the LMS gradebook (teacher/intake.py, teacher/lms.py, teacher/grade.py): the three export
layouts graded end to end with the real notebook, the LMS's own gradebook files filled in and compared cell by cell
with what a teacher expects, one student re-graded in each layout; and, without running anything, the names, the
zips, the choice among several files and the filled files' edge cases.
"""

import csv
import io
import os
import re
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from test_grader import answered, needs_bwrap, read_csv, run_grader

from notebook_module import NOTEBOOK, ROOT

sys.path.insert(0, str(ROOT / "teacher"))
import intake  # noqa: E402
import lms  # noqa: E402
import student_edition as se  # noqa: E402

FIXTURES = Path(__file__).parent / "lms_fixtures"
LIMITS = ["--cell-timeout", "30", "--notebook-timeout", "400", "--jobs", "2"]
DAY = 86400


def secret_home(tmp):  # noqa: N802
    """The teacher's secret made (on first use) in the test's folder, not in the home folder's ~/.config."""
    return {"XDG_CONFIG_HOME": str(tmp / "config")}


CANVAS_FILE = ["--lms-gradebook", FIXTURES / "canvas_gradebook_export.csv"]

# ---------------------------------------------------------------------------------------------- names, no run


@pytest.mark.parametrize(
    "name, student, lms_id, layout, late",
    [
        # Canvas: the sortable name downcased, every character that is not [[:word:]] dropped (letters of any script
        # stay), [_LATE], the user id, the attachment id, the file name as uploaded (any characters)
        ("müllerjosé_LATE_1001_5002_final.zip", "müllerjosé", "1001", "canvas", True),
        ("obrienseán_1002_5003_neural_network_from_scratch (1).ipynb", "obrienseán", "1002", "canvas", False),
        ("smithjonesann_1003_5004_nn_v2_3.ipynb", "smithjonesann", "1003", "canvas", False),
        ("lǐléi_1006_5007_作业.ipynb", "lǐléi", "1006", "canvas", False),
        ("mu\u0308llerjose\u0301_1001_5001_a.ipynb", "müllerjosé", "1001", "canvas", False),  # unzipped on macOS (NFD)
        ("hopper_late_222_333_x.ipynb", "hopper", "222", "canvas", True),  # older Canvas downcased everything
        ("LATE_anon_Xy3Zq_789_lesson.ipynb", "anon_Xy3Zq", "anon_Xy3Zq", "canvas", True),  # anonymous grading
        ("smithjonesann_1003_text.html", "smithjonesann", "1003", "canvas", False),  # a text entry
        # Moodle: the full name ("_" made " ", apostrophes dropped by clean_filename), the participant id
        ("José Müller_5550001_assignsubmission_file", "José Müller", "5550001", "moodle", False),  # 4.1 and later
        ("Seán OBrien_5550002_assignsubmission_file_", "Seán OBrien", "5550002", "moodle", False),  # 3.1 to 4.0
        ("Anne-Marie Dupont_5550003_assignsubmission_file_nn.ipynb", "Anne-Marie Dupont", "5550003", "moodle", False),
        ("Participant_5550009_assignsubmission_file", "Participant 5550009", "5550009", "moodle", False),  # blind
    ],
)
def test_lms_names_of_any_letters_map_to_their_ids(name, student, lms_id, layout, late):
    parsed = intake.parse_lms_name(name)
    assert (parsed.student, parsed.id, parsed.layout, parsed.late) == (student, lms_id, layout, late)
    assert intake.student_of(name) == (student, lms_id)


def test_other_names_are_the_student_with_no_id():
    assert intake.student_of("ada.ipynb") == ("ada", "")
    assert intake.student_of("Ada Lovelace") == ("Ada Lovelace", "")
    assert intake.parse_lms_name("notes_2024.ipynb") is None


# ---------------------------------------------------------------------------------------------- zips, no run


def zip_of(path, members, **kwargs):
    """A zip holding {name: bytes}; a value (bytes, ZipInfo settings) sets the member's flags."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 12, 1, 10, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(data, tuple):
                data, settings = data
                for key, value in settings.items():
                    setattr(info, key, value)
            archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "members, why",
    [
        ({"../../evil.ipynb": b"{}"}, "a member outside its folder ('../../evil.ipynb')"),
        ({"/etc/cron.d/x": b"x"}, "a member outside its folder"),
        ({"C:/Windows/x.ipynb": b"x"}, "a member outside its folder"),
        ({"work\\..\\..\\x.ipynb": b"x"}, "a member outside its folder"),
        ({f"f{i}.txt": b"x" for i in range(501)}, "501 members (at most 500 are read)"),
        ({"big.bin": b"\0" * (3 * 2**20)}, "compressed"),  # 3 MB of zeros: a thousand to one
        ({"a.ipynb": b"{}", "./a.ipynb": b"{}"}, "the member './a.ipynb' twice"),
    ],
)
def test_a_zip_that_could_escape_or_swell_is_refused_and_leaves_nothing(tmp_path, members, why):
    archive = zip_of(tmp_path / "hand-in.zip", members)
    dest = tmp_path / "out"
    with pytest.raises(intake.NotGradable, match=f"^a zip archive .*{re.escape(why)}"):
        intake.extract_zip(archive, dest, intake.STUDENT_LIMITS)
    assert not dest.exists() or not any(dest.iterdir())
    assert not (tmp_path.parent / "evil.ipynb").exists()


def test_a_zip_is_read_with_links_skipped_names_decoded_and_file_times_kept(tmp_path):
    link = (b"/etc/passwd", {"external_attr": 0o120777 << 16, "create_system": 3})
    utf8 = "müllerjosé_1001_5001_a.ipynb".encode()
    placeholder = "x" * len(utf8)
    archive = zip_of(tmp_path / "x.zip", {"work/nn.ipynb": b"{}", "work/link.ipynb": link, placeholder: b"{}"})
    archive.write_bytes(archive.read_bytes().replace(placeholder.encode(), utf8))  # UTF-8 without the flag, as
    with zipfile.ZipFile(archive) as z:  # rubyzip writes it: Python's zipfile reads the name as CP437
        assert utf8.decode("cp437") in z.namelist()
    dest = tmp_path / "out"
    skipped = intake.extract_zip(archive, dest, intake.STUDENT_LIMITS)
    assert skipped == ["work/link.ipynb (a link)"]
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "müllerjosé_1001_5001_a.ipynb",
        "work/nn.ipynb",
    ]
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    assert time.localtime((dest / "work" / "nn.ipynb").stat().st_mtime)[:6] == (2026, 12, 1, 10, 0, 0)


def test_a_corrupt_zip_says_so(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(intake.NotGradable, match="^a corrupt zip archive"):
        intake.extract_zip(tmp_path / "x.zip", tmp_path / "out", intake.STUDENT_LIMITS)


# ---------------------------------------------------------------------------------------------- intake, no run


def touch(path, data=b"{}", when=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if when is not None:
        os.utime(path, (when, when))
    return path


def test_two_canvas_attachments_give_one_row_the_latest_attachment_with_the_other_named(tmp_path):
    touch(tmp_path / "müllerjosé_LATE_1001_5002_old.ipynb", when=2 * DAY)  # newer on disk, older attachment
    zip_of(tmp_path / "müllerjosé_LATE_1001_5009_final.zip", {"work/nn.ipynb": b"{}"})
    touch(tmp_path / "obrienseán_1002_5003_nn.ipynb")
    notes = []
    got = intake.read(tmp_path, notes.append)
    assert (got.layout, got.single) == ("canvas", False)
    subs = {s.student: s for s in got.submissions}
    assert sorted(subs) == ["müllerjosé", "obrienseán"]
    jose = subs["müllerjosé"]
    assert (jose.id, jose.late, jose.path.name) == ("1001", True, "nn.ipynb")
    assert jose.notes == [
        "2 notebooks handed in: graded müllerjosé_LATE_1001_5009_final.zip/work/nn.ipynb (the latest attachment), "
        "set aside müllerjosé_LATE_1001_5002_old.ipynb"
    ]
    assert any("set aside" in n for n in notes)


def test_a_moodle_folder_with_two_notebooks_gives_the_latest_by_file_time(tmp_path):
    folder = tmp_path / "José Müller_5550001_assignsubmission_file"
    touch(folder / "nn.ipynb", when=3 * DAY)
    touch(folder / "nn (1).ipynb", when=DAY)
    touch(tmp_path / "Seán OBrien_5550002_assignsubmission_file" / "sub" / "a.ipynb", when=DAY)
    touch(tmp_path / "Seán OBrien_5550002_assignsubmission_file" / "sub" / "b.ipynb", when=DAY)
    got = intake.read(tmp_path, lambda text: None)
    subs = {s.student: s for s in got.submissions}
    assert got.layout == "moodle" and subs["José Müller"].path.name == "nn.ipynb"
    assert subs["José Müller"].notes == ["2 notebooks handed in: graded nn.ipynb (the latest), set aside nn (1).ipynb"]
    assert subs["Seán OBrien"].notes == [
        "2 notebooks handed in: graded sub/b.ipynb (the last by name: they have the same time), set aside "
        "sub/a.ipynb: to grade another, pass its file"
    ]


def test_moodles_download_zip_keeps_its_upload_order_though_every_file_has_the_same_time(tmp_path):
    folder = "José Müller_5550001_assignsubmission_file"
    members = {f"{folder}/z-first.ipynb": b"{}", f"{folder}/a-second.ipynb": b"{}"}  # upload order, not name order
    got = intake.read(zip_of(tmp_path / "COURSE-Assignment-12.zip", members), lambda text: None)
    (jose,) = got.submissions
    assert (got.layout, jose.student, jose.path.name) == ("moodle", "José Müller", "a-second.ipynb")
    assert jose.notes == ["2 notebooks handed in: graded a-second.ipynb (the latest), set aside z-first.ipynb"]


GRADESCOPE_METADATA = """submission_9001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '111'
    :email: ada@example.edu
  - :name: 李雷
    :sid: '112'
    :email: lilei@example.edu
  :created_at: 2026-12-01 10:00:00.000000000 -08:00
  :score:
submission_9002:
  :submitters:
  - :name: Grace Hopper
    :sid: '113'
    :email: grace@example.edu
  :created_at: 2026-12-02 09:00:00.000000000 -08:00
"""


def test_a_gradescope_group_gives_every_member_and_a_file_inside_an_export_is_named_as_in_it(tmp_path):
    (tmp_path / "submission_metadata.yml").write_text(GRADESCOPE_METADATA, encoding="utf-8")
    touch(tmp_path / "submission_9001" / "nn.ipynb")
    touch(tmp_path / "submission_9002" / "nn.py", b"print(1)")
    got = intake.read(tmp_path, lambda text: None)
    group = got.submissions[0]
    assert (group.student, group.id, group.members) == ("Ada Lovelace", "111", [("李雷", "112")])
    assert got.submissions[1].student == "Grace Hopper" and got.submissions[1].path.name == "nn.py"
    # one student's file or folder, inside any layout: named as in the whole export, and "single" (rows updated)
    one = intake.read(tmp_path / "submission_9001" / "nn.ipynb", lambda text: None)
    assert one.single and [(s.student, s.members) for s in one.submissions] == [("Ada Lovelace", [("李雷", "112")])]
    moodle = touch(tmp_path.parent / "m" / "José Müller_5550001_assignsubmission_file" / "deep" / "nn.ipynb")
    for path in (moodle, moodle.parent.parent):
        sub = intake.read(path, lambda text: None).submissions[0]
        assert (sub.student, sub.id, sub.path) == ("José Müller", "5550001", moodle)


def test_the_zip_the_lms_hands_over_is_read_as_the_export(tmp_path):
    export = zip_of(
        tmp_path / "course-neural_network_submissions.zip",
        {
            "müllerjosé_LATE_1001_5002_nn.ipynb": b"{}",
            "smithjonesann_1003_5004_nn.py": b"print(1)",
        },
    )
    got = intake.read(export, lambda text: None)
    assert not got.single and [(s.student, s.id, s.late) for s in got.submissions] == [
        ("müllerjosé", "1001", True),
        ("smithjonesann", "1003", False),
    ]


# ---------------------------------------------------------------------------------------------- LMS files, no run


def book_row(student, lms_id, total, most=11, note=""):
    return {"student": student, "id": lms_id, "late": "", "total": str(total), "max": str(most), "note": note}


def test_canvas_file_in_its_users_dialect_and_the_column_named_or_found(tmp_path):
    text = (FIXTURES / "canvas_gradebook_export.csv").read_text(encoding="utf-8")
    semicolons = "\ufeff" + text.replace(",", ";").replace("\n", "\r\n")  # the CSV setting "semicolon", with a BOM
    (tmp_path / "export.csv").write_text(semicolons, encoding="utf-8", newline="")
    with pytest.raises(lms.LmsFileError, match=r"name the assignment's column with --lms-column .*Quiz 1 \(778\)"):
        lms.fill(tmp_path / "export.csv", None, [])
    book = [book_row("müllerjosé", "1001", 8.5), book_row("nobody", "999", 3), book_row("ada", "", 1)]
    filled = lms.fill(tmp_path / "export.csv", tmp_path / "out.csv", book, column="777")
    out = (tmp_path / "out.csv").read_bytes()
    assert out.startswith(b"\xef\xbb\xbf") and b"\r\n" in out
    rows = list(csv.reader(out.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert rows[2][6] == "8,5"  # the decimal comma of a semicolon CSV
    assert filled.missing == [
        ("nobody", "999", "no row with this id in export.csv"),
        ("ada", "", "no LMS id (its file or folder is not named as the LMS names it)"),
    ]
    assert ("Zhang; Wei", "no submission graded here") in filled.left  # its commas made semicolons above


def test_moodle_locked_grades_are_left_and_unknown_files_refused(tmp_path):
    text = (FIXTURES / "moodle_grading_worksheet.csv").read_text(encoding="utf-8")
    (tmp_path / "w.csv").write_text(text.replace("100.00,Yes", "100.00,No", 1), encoding="utf-8")
    filled = lms.fill(tmp_path / "w.csv", tmp_path / "out.csv", [book_row("José Müller", "5550001", 11)])
    assert filled.left[0] == ("José Müller", "its grade is locked in Moodle (Grade can be changed: No)")
    (tmp_path / "other.csv").write_text("name,score\nada,3\n", encoding="utf-8")
    with pytest.raises(lms.LmsFileError, match="neither a Canvas gradebook export .* nor a Moodle grading worksheet"):
        lms.fill(tmp_path / "other.csv", None, [])


# ---------------------------------------------------------------------------------------------- three layouts, run


@pytest.fixture(scope="module")
def notebooks():
    """Honest notebooks from the student edition: every answer (the master's solutions), exercises 1 and 2 only,
    and the edition untouched."""
    master = nbformat.read(NOTEBOOK, as_version=4)
    edition = se.build(master)
    right = {n: se.solution_code(master, e) for n, e in se.find_exercises(master).items()}
    return {
        "right": nbformat.writes(answered(edition, right)).encode(),
        "two": nbformat.writes(answered(edition, {1: right[1], 2: right[2]})).encode(),
        "none": nbformat.writes(edition).encode(),
    }


def by_key(rows):
    return {(r["student"], r["exercise"]): r for r in rows}


def statuses(grades, student):
    return [grades[student, str(n)]["status"] for n in range(1, 12)]


RIGHT, NONE = ["right"] * 11, ["not attempted"] * 11


@pytest.fixture(scope="module")
def classes(tmp_path_factory, notebooks):
    """The three exports, built as the LMSs lay them out, each graded end to end (5 notebooks run)."""
    tmp = tmp_path_factory.mktemp("lms")
    # Canvas: handed over as the download zip; José attached two files (the later a zip), late; Ann a .py
    canvas = tmp / "canvas"
    touch(canvas / "müllerjosé_LATE_1001_5001_neural_network_from_scratch.ipynb", notebooks["none"])
    zip_of(
        canvas / "müllerjosé_LATE_1001_5002_final.zip", {"work/neural_network_from_scratch.ipynb": notebooks["right"]}
    )
    touch(canvas / "obrienseán_1002_5003_neural_network_from_scratch.ipynb", notebooks["two"])
    touch(canvas / "smithjonesann_1003_5004_neural_network_from_scratch.py", b"# %%\nprint('a .py export')\n")
    download = tmp / "course-neural_network_from_scratch_submissions.zip"
    zip_of(download, {p.name: p.read_bytes() for p in sorted(canvas.iterdir())})
    # Moodle: its download zip, every member stamped with the download's time, each student's files in upload order:
    # José's two notebooks (the later right), Seán's notebook in a zip, Anne-Marie's a PDF
    moodle = tmp / "moodle"
    zip_of(tmp / "work.zip", {"neural_network_from_scratch.ipynb": notebooks["none"]})
    moodle_zip = zip_of(
        tmp / "COURSE-Neural network-1234.zip",
        {
            "José Müller_5550001_assignsubmission_file/neural_network_from_scratch.ipynb": notebooks["none"],
            "José Müller_5550001_assignsubmission_file/neural_network_from_scratch (1).ipynb": notebooks["right"],
            "Seán OBrien_5550002_assignsubmission_file/work.zip": (tmp / "work.zip").read_bytes(),
            "Anne-Marie Dupont_5550003_assignsubmission_file/notes.pdf": b"%PDF-1.4\n",
        },
    )
    with zipfile.ZipFile(moodle_zip) as archive:  # the teacher's unzipped copy, to re-grade one student from
        archive.extractall(moodle)
    # Gradescope: a group of two (exercises 1 and 2), Grace's .py
    gradescope = tmp / "gradescope"
    touch(gradescope / "submission_metadata.yml", GRADESCOPE_METADATA.encode())
    touch(gradescope / "submission_9001" / "neural_network_from_scratch.ipynb", notebooks["two"])
    touch(gradescope / "submission_9002" / "nn.py", b"print(1)\n")

    runs = {}
    for name, submissions, extra in [
        ("canvas", download, [*CANVAS_FILE, "--lms-column", "Neural network from scratch"]),
        ("moodle", moodle_zip, ["--lms-gradebook", FIXTURES / "moodle_grading_worksheet.csv"]),
        ("gradescope", gradescope, []),
    ]:
        out = tmp / f"out-{name}" / "grades.csv"
        start = time.monotonic()
        result = run_grader(submissions, "-o", out, *LIMITS, *extra, cwd=tmp, env=secret_home(tmp))
        assert result.returncode == 0, result.stderr
        runs[name] = (out, result, time.monotonic() - start)
    return tmp, runs


@needs_bwrap
def test_a_canvas_download_graded_end_to_end_into_its_gradebook_export(classes):
    tmp, runs = classes
    out, result, seconds = runs["canvas"]
    print(result.stdout, f"\n{seconds:.0f} s")
    grades = by_key(read_csv(out))
    assert statuses(grades, "müllerjosé") == RIGHT  # the later attachment, a zip
    assert statuses(grades, "obrienseán") == ["right", "right"] + NONE[2:]
    assert grades["smithjonesann", "all"]["status"] == "not gradable"
    total = grades["müllerjosé", "total"]["detail"]
    assert "graded müllerjosé_LATE_1001_5002_final.zip/work/neural_network_from_scratch.ipynb (the latest" in total
    assert "set aside müllerjosé_LATE_1001_5001_neural_network_from_scratch.ipynb" in total
    assert "handed in late (the LMS's marker)" in total
    book = {r["student"]: r for r in read_csv(out.with_name("gradebook.csv"))}
    assert [(book[s]["id"], book[s]["late"], book[s]["total"]) for s in ("müllerjosé", "obrienseán")] == [
        ("1001", "late", "11"),
        ("1002", "", "2"),
    ]
    assert_same_cells(out.with_name("canvas_gradebook_export-graded.csv"), FIXTURES / "canvas_gradebook_expected.csv")
    assert "left as it was: Smith-Jones, Ann: not gradable: a Python script" in result.stdout
    assert "left as it was: Zhang, Wei: no submission graded here" in result.stdout


@needs_bwrap
def test_a_moodle_download_graded_end_to_end_into_its_worksheet_and_feedback_zip(classes):
    tmp, runs = classes
    out, result, seconds = runs["moodle"]
    print(result.stdout, f"\n{seconds:.0f} s")
    grades = by_key(read_csv(out))
    assert statuses(grades, "José Müller") == RIGHT  # the later upload of the folder's two notebooks
    assert "set aside neural_network_from_scratch.ipynb" in grades["José Müller", "total"]["detail"]
    assert statuses(grades, "Seán OBrien") == NONE  # the edition, handed in inside a zip
    assert grades["Anne-Marie Dupont", "all"]["detail"].startswith("a PDF, not the notebook")
    # value exercises are worded as values, function exercises as functions
    assert (
        grades["Seán OBrien", "6"]["detail"]
        == "dW1_11 is still None: put your answer in place of the None, then run the cell"
    )
    assert "still returns None" in grades["Seán OBrien", "2"]["detail"]
    filled = assert_same_cells(
        out.with_name("moodle_grading_worksheet-graded.csv"), FIXTURES / "moodle_worksheet_expected.csv"
    )
    assert filled[1][9].startswith("<h1>Feedback for José Müller</h1><p><strong>Points: 11 of 11 (11/11 right)")
    assert "the points are scaled from 11 points to the LMS's 100" in result.stdout
    with zipfile.ZipFile(out.with_name("moodle-feedback.zip")) as archive:
        names = sorted(archive.namelist())
        page = archive.read("José Müller_5550001_assignsubmission_file/feedback.html").decode()
    assert names == [
        "Anne-Marie Dupont_5550003_assignsubmission_file/feedback.html",
        "José Müller_5550001_assignsubmission_file/feedback.html",
        "Seán OBrien_5550002_assignsubmission_file/feedback.html",
    ]
    for name in names:  # Moodle's importer: the path part split on "_" gives the participant id and the plugin
        folder = name.split("/")[0].split("_", 4)
        assert folder[1].isdigit() and folder[2:4] == ["assignsubmission", "file"]
    assert "Points: 11 of 11" in page and (out.parent / "feedback" / "José_Müller.txt").exists()


@needs_bwrap
def test_a_gradescope_export_graded_end_to_end_every_group_member_a_row(classes):
    tmp, runs = classes
    out, result, seconds = runs["gradescope"]
    print(result.stdout, f"\n{seconds:.0f} s")
    grades = read_csv(out)
    ada = [r for r in grades if r["student"] == "Ada Lovelace"]
    lei = [r for r in grades if r["student"] == "李雷"]
    assert [r["status"] for r in ada] == [r["status"] for r in lei] == ["right", "right"] + NONE[2:] + ["2/11 right"]
    assert [r["detail"] for r in ada] == [r["detail"] for r in lei]
    assert {r["id"] for r in ada} == {"111"} and {r["id"] for r in lei} == {"112"}
    book = {r["student"]: r for r in read_csv(out.with_name("gradebook.csv"))}
    assert [book[s]["total"] for s in ("Ada Lovelace", "李雷", "Grace Hopper")] == ["2", "2", "0"]
    assert (out.parent / "feedback" / "李雷.html").exists()


def assert_same_cells(path, expected_path):
    """Every cell of the filled file against the expected one (`<feedback>`: any non-empty HTML feedback)."""
    got = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    want = list(csv.reader(io.StringIO(expected_path.read_text(encoding="utf-8"), newline="")))
    assert len(got) == len(want)
    for i, (row, expected) in enumerate(zip(got, want)):
        assert len(row) == len(expected), i
        for j, (cell, cell_expected) in enumerate(zip(row, expected)):
            if cell_expected == "<feedback>":
                assert cell.startswith("<h1>Feedback for "), (i, j, cell)
            else:
                assert cell == cell_expected, (i, j, got[0][j], cell, cell_expected)
    return got


@needs_bwrap
def test_regrading_one_student_in_each_layout_updates_their_rows_in_place(classes, notebooks):
    tmp, runs = classes
    # Canvas: O'Brien uploads again; the teacher passes the new file of the unzipped download
    canvas = tmp / "canvas"
    fixed = canvas / "obrienseán_1002_5003_neural_network_from_scratch.ipynb"
    fixed.write_bytes(notebooks["right"])
    # Moodle: Anne-Marie hands in the notebook; the teacher passes her folder
    moodle = tmp / "moodle" / "Anne-Marie Dupont_5550003_assignsubmission_file"
    touch(moodle / "neural_network_from_scratch.ipynb", notebooks["right"])
    # Gradescope: the group's folder, its notebook now right
    gradescope = tmp / "gradescope" / "submission_9001"
    (gradescope / "neural_network_from_scratch.ipynb").write_bytes(notebooks["right"])
    for name, path, who, extra in [
        ("canvas", fixed, ["obrienseán"], [*CANVAS_FILE, "--lms-column", "777"]),
        ("moodle", moodle, ["Anne-Marie Dupont"], ["--lms-gradebook", FIXTURES / "moodle_grading_worksheet.csv"]),
        ("gradescope", gradescope, ["Ada Lovelace", "李雷"], []),
    ]:
        out = runs[name][0]
        before, book_before = read_csv(out), read_csv(out.with_name("gradebook.csv"))
        result = run_grader(path, "-o", out, *LIMITS, *extra, cwd=tmp, env=secret_home(tmp))
        assert result.returncode == 0, result.stderr
        after, book_after = read_csv(out), read_csv(out.with_name("gradebook.csv"))
        assert "updated" in result.stdout and "student" not in {r["student"] for r in after}, name
        assert [r for r in after if r["student"] not in who] == [r for r in before if r["student"] not in who]
        assert [r["student"] for r in book_after] == [r["student"] for r in book_before], name  # in their places
        for student in who:
            assert [r["status"] for r in after if r["student"] == student] == RIGHT + ["11/11 right"], name
            assert next(r for r in book_after if r["student"] == student)["total"] == "11"
    canvas_filled = list(csv.reader(runs["canvas"][0].with_name("canvas_gradebook_export-graded.csv").open()))
    assert [row[6] for row in canvas_filled[2:5]] == ["11", "11", ""]  # José kept, O'Brien now 11, Ann blank
    moodle_filled = list(csv.reader(runs["moodle"][0].with_name("moodle_grading_worksheet-graded.csv").open()))
    assert [row[4] for row in moodle_filled[1:5]] == ["100", "0", "100", ""]
    with zipfile.ZipFile(runs["moodle"][0].with_name("moodle-feedback.zip")) as archive:
        assert len(archive.namelist()) == 3
        assert (
            "Points: 11 of 11" in archive.read("Anne-Marie Dupont_5550003_assignsubmission_file/feedback.html").decode()
        )
