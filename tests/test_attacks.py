"""A class that attacks the grader (teacher/grade.py) from inside its sandbox, graded in one run with honest students.

Each attacker answers exercise 1 right (1 point earned), exercise 2 wrong and exercise 3 not at all, then attacks:
what the grader reads back (the values file replaced by a folder, a FIFO, a link to /dev/zero or to a file of the
teacher's, a 1 GB file, JSON nested 100,000 deep; the executed notebook made a link to a folder or to the hidden
tests), or the machine (a process that outlives the notebook and keeps writing, 6 processes each near the memory
limit, GBs written into the home folder, / and /tmp, 1,000 processes, CPU hogs in sessions of their own). For each:
no attacker gets a point it did not earn; every honest student's grades and feedback are the same as when the honest
students are graded alone; the grader exits 0 with every output, its own memory stays small, and nothing is left
behind (no scratch folder, no process, no cgroup).

Bounded: the grader runs with --memory 1500M (all of a submission's processes and in-memory files; bwrap's tmpfs
folders are 512 + 256 + 64 MB), 256 processes and 1 CPU per submission, a 90 s notebook limit, under a 20-minute
timeout. The test needs writable cgroups (root, as CI runs), without which the memory attacks would not be bounded.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from test_grader import SOLUTIONS, answered, by_student, options_for, read_csv, synthetic_master

from notebook_module import ROOT

sys.path.insert(0, str(ROOT / "teacher"))
import sandbox  # noqa: E402
import student_edition as se  # noqa: E402

MEMORY = "1500M"
TIMEOUT = 20 * 60  # seconds for one grader run (about 4 minutes here)

# replaces the file the grader's last cell writes its values to, as soon as it is written: collect.py calls json.dump
REPLACE_VALUES = """import json as _json
import os as _os

_dump = _json.dump


def _replace(obj, f, **kw):
    path = getattr(f, "name", "")
    if ".grader-" not in str(path):
        return _dump(obj, f, **kw)
    _dump(obj, f, **kw)
    f.flush()
    ATTACK
    print("replaced", path)


_json.dump = _replace
"""

VALUES_ATTACKS = {
    "values_folder": "_os.remove(path); _os.mkdir(path)",
    "values_fifo": "_os.remove(path); _os.mkfifo(path)",
    "values_dev_zero": "_os.remove(path); _os.symlink('/dev/zero', path)",
    "values_teacher_file": "_os.remove(path); _os.symlink(HIDDEN, path)",
    # 1 GB (sparse); where the sandbox's limit on a file's size (RLIMIT_FSIZE, 512 MB) refuses it, 500 MB
    "values_1_gb": "try:\n        _os.truncate(path, 2**30)\n    except OSError as e:\n        print(e)\n"
    "        _os.truncate(path, 500 * 2**20)",
    "values_deep": "open(path, 'w').write('[' * 100_000 + ']' * 100_000)",
    # a process of its own (a new session) that keeps appending to the values file after the notebook
    "values_keeps_growing": "import subprocess as _sp, time as _t\n"
    "    _sp.Popen(['sh', '-c', f'while :; do echo 1 >> {path}; done  # MARK'], start_new_session=True)\n"
    "    _t.sleep(0.5)",
}

# cells appended after the learner's cell of exercise 3 (they run before the grader's last cell)
MACHINE_ATTACKS = {
    "executed_folder": "import os\n\nos.symlink('/grader', 'executed.ipynb')",
    "executed_teacher_file": "import os\n\nos.symlink(HIDDEN, 'executed.ipynb')",
    "outlives_writing": "import subprocess\n\n"
    "subprocess.Popen(['sh', '-c', ': MARK; while :; do echo x >> ~/keep; sleep 0.01; done'], "
    "start_new_session=True)",
    "memory_hogs": "import subprocess, sys\n\nhogs = [subprocess.Popen([sys.executable, '-c', "
    "'import numpy as np, time; a = np.ones(110_000_000); a += 1; time.sleep(10)  # MARK']) for _ in range(6)]\n"
    "for hog in hogs:\n    try:\n        hog.wait(timeout=15)\n    except subprocess.TimeoutExpired:\n        pass\n"
    "print([hog.returncode for hog in hogs])",
    "fills_disks": "written = {}\nfor folder in ['/home/student', '/tmp', '/', '/dev/shm', '/dev']:\n"
    "    written[folder] = 0\n    try:\n        with open(f'{folder}/fill', 'wb') as f:\n"
    "            while written[folder] < 4 * 2**30:\n                f.write(b'x' * 2**20)\n"
    "                written[folder] += 2**20\n    except OSError as e:\n        print(folder, type(e).__name__, e)\n"
    "print({k: v // 2**20 for k, v in written.items()})",
    "forks_1000": "import os, time\n\nstarted = 0\nfor _ in range(1000):\n    try:\n        pid = os.fork()\n"
    "    except OSError as e:\n        print('fork refused:', e)\n        break\n    if pid == 0:\n"
    "        time.sleep(120)\n        os._exit(0)\n    started += 1\nprint('started', started)",
    "cpu_hogs": "import subprocess, sys\n\nfor _ in range(4):\n"
    "    subprocess.Popen([sys.executable, '-c', 'while True: pass  # MARK'], start_new_session=True)",
}

HONEST = {
    "ada": SOLUTIONS,
    "ben": {1: SOLUTIONS[1], 2: "threshold = 3"},
    "cleo": {1: "def my_double(x):\n    return x + 1", 3: SOLUTIONS[3]},
}
EARNED = {1: SOLUTIONS[1], 2: "threshold = 3"}  # what each attacker answers: 1 point's worth


def grader_run(folder, out, tmp, marker):
    """grade.py as a subprocess, under a timeout; (result, the grader's own peak RSS in MB and pid, its scratch
    folder)."""
    scratch = tmp / f"scratch-{out.parent.name}"
    scratch.mkdir()
    peak_file = tmp / f"peak-{out.parent.name}.txt"
    # grade.py's own peak memory: measured in its process (RUSAGE_SELF), not its children's (the sandboxes)
    wrapper = (
        "import os, resource, runpy, sys\n"
        f"sys.argv = [{str(ROOT / 'teacher' / 'grade.py')!r}] + sys.argv[1:]\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nfinally:\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        f"    open({str(peak_file)!r}, 'w').write(f'{{peak}} {{os.getpid()}}')\n"
    )
    args = [folder, "-o", out, "--memory", MEMORY, "--jobs", "2", "--cell-timeout", "30", "--notebook-timeout", "90"]
    args += ["--executed", out.parent / "executed", *options_for(tmp)]
    env = dict(os.environ, TMPDIR=str(scratch), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
        timeout=TIMEOUT,
    )
    peak, pid = map(int, peak_file.read_text().split())
    return result, (peak, pid), scratch


def processes_with(marker):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(pid)
        except OSError:
            pass
    return found


def grader_cgroups(pid):
    """The cgroups the grader of this pid made (teacher/sandbox.py names them grader-<pid>) that still exist."""
    return [p for p in Path("/sys/fs/cgroup").glob(f"**/grader-{pid}") if p.is_dir()]


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """The attack class graded in one run with the honest students, and the honest students graded alone."""
    limits, why = sandbox.Cgroups.open(2**30)
    if limits is None:
        pytest.skip(f"cgroups are not writable here ({why}): the memory attacks would not be bounded")
    limits.close()
    tmp = tmp_path_factory.mktemp("attacks")
    master = synthetic_master()
    nbformat.write(master, tmp / "master.ipynb")
    from test_grader import HIDDEN_TESTS

    (tmp / "hidden.py").write_text(HIDDEN_TESTS)
    edition = se.build(master)
    ex = se.find_exercises(edition)
    marker = f"attack-{os.getpid()}-{time.time_ns()}"
    hidden = repr(str(tmp / "hidden.py"))
    honest, attacks = tmp / "honest", tmp / "class"
    honest.mkdir()
    attacks.mkdir()
    for name, code in HONEST.items():
        for folder in (honest, attacks):
            nbformat.write(answered(edition, code), folder / f"{name}.ipynb")
    for name, attack in VALUES_ATTACKS.items():
        code = REPLACE_VALUES.replace("ATTACK", attack).replace("HIDDEN", hidden).replace("MARK", marker)
        nbformat.write(answered(edition, {**EARNED, 3: code}), attacks / f"{name}.ipynb")
    for name, attack in MACHINE_ATTACKS.items():
        nb = answered(edition, EARNED)
        cell = attack.replace("HIDDEN", hidden).replace("MARK", marker)
        nb.cells.insert(ex[3].answer + 1, nbformat.v4.new_code_cell(cell))
        nbformat.write(nb, attacks / f"{name}.ipynb")
    nbformat.write(answered(edition, SOLUTIONS), attacks / "blocked.ipynb")
    (tmp / "class-out" / "feedback" / "blocked.txt").mkdir(parents=True)  # its feedback file cannot be written
    start = time.monotonic()
    result, peak, scratch = grader_run(attacks, tmp / "class-out" / "grades.csv", tmp, marker)
    seconds = time.monotonic() - start
    alone, alone_peak, alone_scratch = grader_run(honest, tmp / "honest-out" / "grades.csv", tmp, marker)
    return {
        "tmp": tmp,
        "result": result,
        "alone": alone,
        "peaks": (peak, alone_peak),
        "scratch": (scratch, alone_scratch),
        "marker": marker,
        "seconds": seconds,
    }


def test_the_grader_finishes_with_every_output_and_leaves_nothing_behind(attacked):
    tmp = attacked["tmp"]
    for result in (attacked["result"], attacked["alone"]):
        assert result.returncode == 0, result.stderr[-3000:]
        assert "limits: cgroup v" in result.stderr, result.stderr[:2000]
    print(attacked["result"].stdout, attacked["result"].stderr, f"{attacked['seconds']:.0f} s", sep="\n")
    students = set(HONEST) | set(VALUES_ATTACKS) | set(MACHINE_ATTACKS) | {"blocked"}
    out = tmp / "class-out"
    assert {r["student"] for r in read_csv(out / "grades.csv")} == students
    assert {r["student"] for r in read_csv(out / "gradebook.csv")} == students
    assert {p.stem for p in (out / "feedback").iterdir() if p.is_file()} == students - {"blocked"}
    assert not [p for p in (out / "feedback").iterdir() if p.name.startswith(".")]  # no half-written file
    for scratch in attacked["scratch"]:
        assert list(scratch.iterdir()) == [], list(scratch.iterdir())  # the scratch folders removed
    time.sleep(1)
    assert processes_with(attacked["marker"]) == []  # no process outlived its sandbox
    (peak, pid), (alone_peak, alone_pid) = attacked["peaks"]
    assert grader_cgroups(pid) == [] and grader_cgroups(alone_pid) == []
    # the grader's own memory: it never parses what a submission handed back (a process of its own does)
    print(f"grader peak RSS: {peak} MB with the attackers, {alone_peak} MB with the honest students alone")
    assert peak < 400, peak


def test_no_attacker_gets_a_point_it_did_not_earn(attacked):
    grades = by_student(read_csv(attacked["tmp"] / "class-out" / "grades.csv"))
    for name in [*VALUES_ATTACKS, *MACHINE_ATTACKS]:
        print(name, *[f"{n}: {grades[name, n]['status']}: {grades[name, n]['detail']}" for n in ("1", "total")])
    for name in [*VALUES_ATTACKS, *MACHINE_ATTACKS]:
        assert grades[name, "2"]["status"] != "right" and grades[name, "3"]["status"] != "right", name
        assert float(grades[name, "total"]["points"]) <= 1, (name, grades[name, "total"])
    for name in VALUES_ATTACKS:  # the values could not be read: did not run, and why
        assert grades[name, "1"]["status"] == "did not run", (name, grades[name, "1"])
        assert "could not be read" in grades[name, "1"]["detail"], (name, grades[name, "1"])
    detail = {name: grades[name, "1"]["detail"] for name in VALUES_ATTACKS}
    assert "not a regular file" in detail["values_folder"] and "not a regular file" in detail["values_fifo"]
    assert "symbolic link" in detail["values_dev_zero"] and "symbolic link" in detail["values_teacher_file"]
    assert "larger than 64 MB" in detail["values_1_gb"]
    assert "nested more than 50 levels" in detail["values_deep"]
    for name in ["executed_folder", "executed_teacher_file", "outlives_writing", "cpu_hogs"]:
        assert grades[name, "1"]["status"] == "right", (name, grades[name, "1"])  # graded as usual
    # its home folder full, the grader's last cell cannot write the values there: its own doing, said in words
    assert grades["fills_disks", "1"]["status"] == "did not run"
    assert "No space left on device" in grades["fills_disks", "1"]["detail"]
    # a student whose feedback file cannot be written (a folder in its place): their row says so, the rest go on
    assert grades["blocked", "1"]["status"] == "did not run"
    assert "could not write this student's feedback file" in grades["blocked", "1"]["detail"]


def test_the_attacks_were_contained(attacked):
    executed = attacked["tmp"] / "class-out" / "executed"
    hidden = (attacked["tmp"] / "hidden.py").read_text()
    for name in ["executed_folder", "executed_teacher_file"]:  # the executed notebook, not what the link named
        text = (executed / f"{name}.ipynb").read_text()
        assert hidden not in text and nbformat.reads(text, as_version=4).cells, name

    def printed(name):
        nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        return "".join(o.get("text", "") + str(o.get("evalue", "")) for c in nb.cells for o in c.get("outputs", []))

    fills = printed("fills_disks")
    assert "/home/student OSError [Errno 2" in fills and "'/home/student': 512," in fills, fills  # 28 or 27 (FSIZE)
    assert "/tmp OSError [Errno 28]" in fills and "/dev/shm OSError [Errno 28]" in fills, fills
    assert "/ OSError [Errno 30] Read-only file system" in fills and "/dev OSError [Errno 30]" in fills, fills
    forks = printed("forks_1000")
    assert "fork refused" in forks and "started 1000" not in forks, forks
    # six hogs of 880 MB each (5.2 GB): the submission's memory in all stayed within its limit (its cgroup's peak)
    peaks = dict(re.findall(r"^graded (\w+) in [\d.]+ s \(memory peak (\d+) MB\)", attacked["result"].stderr, re.M))
    assert int(peaks["memory_hogs"]) <= 1500 and int(peaks["fills_disks"]) <= 1500, peaks
    print("memory_hogs printed:", printed("memory_hogs")[-200:])


def test_honest_students_get_the_same_grades_and_feedback_as_without_the_attackers(attacked):
    tmp = attacked["tmp"]
    together = [r for r in read_csv(tmp / "class-out" / "grades.csv") if r["student"] in HONEST]
    alone = read_csv(tmp / "honest-out" / "grades.csv")
    assert together == alone
    assert [r["status"] for r in alone if r["student"] == "ada"] == ["right"] * 3 + ["3/3 right"]
    book = [r for r in read_csv(tmp / "class-out" / "gradebook.csv") if r["student"] in HONEST]
    assert book == read_csv(tmp / "honest-out" / "gradebook.csv")
    for name in HONEST:
        feedback = (tmp / "class-out" / "feedback" / f"{name}.txt").read_text()
        assert feedback == (tmp / "honest-out" / "feedback" / f"{name}.txt").read_text(), name


# ---------------------------------------------------------------------------------------------- fast, in-process


def test_what_comes_back_is_read_as_hostile_input(tmp_path):
    import judge

    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "secret").write_text("the teacher's")
    os.symlink(tmp_path / "secret", tmp_path / "link")
    os.symlink("/dev/zero", tmp_path / "zero")
    with open(tmp_path / "big", "wb") as f:
        f.truncate(2**30)  # sparse
    (tmp_path / "deep").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "digits").write_text('{"1": {"public": ' + "9" * 5000 + "}}")
    (tmp_path / "folder" / "values.json").write_text("{}")
    os.symlink(tmp_path / "folder", tmp_path / "linked")  # a link in the path's folder
    for name, why in [
        ("folder", "not a regular file"),
        ("fifo", "not a regular file"),  # opened without blocking: no writer needed
        ("link", "a symbolic link"),
        ("zero", "a symbolic link"),
        ("big", "larger than 64 MB"),
        ("deep", "nested more than 50 levels deep"),
        ("digits", "cannot be parsed"),
        ("missing", "wrote no values"),
        ("linked/values.json", "a symbolic link"),
    ]:
        with pytest.raises(judge.Garbled, match=why):
            judge.load_values(tmp_path / name)
    assert judge.nesting('{"a": [[1], "[[[[\\" ]]"]}') == 3  # brackets in strings do not count


def test_without_writable_cgroups_the_limits_fall_back_to_per_process_ones(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "hierarchies", lambda: [])
    limits, why = sandbox.Cgroups.open(2**30)
    assert limits is None and "no cgroup hierarchy with the memory controller" in why
    command = sandbox.command(tmp_path, tmp_path, 2**30, [])
    assert f"--nproc={sandbox.FALLBACK_PROCESSES}" in command and f"--as={2**30}" in command
    assert command[command.index("--remount-ro", command.index("--chdir")) + 1] == "/"  # the root read-only
    assert os.path.isabs(sandbox.PYTHON)


def test_a_kernel_killed_for_memory_is_said_in_words():
    import execute
    import nbformat as nbf
    from prepare import Prepared

    nb = nbf.v4.new_notebook(cells=[nbf.v4.new_code_cell("hog = bytearray(2**32)")])
    options = type("Options", (), {"memory": 1500 * 2**20, "notebook_timeout": 90, "final_timeout": 660})
    run = execute.Run([{"event": "start", "cell": 0}, {"event": "died", "cell": 0}], 3.0, None, None)
    run.out_of_memory = True
    why = execute.why_no_values(Prepared(nb), run, options)
    expected = "out of memory in the cell starting 'hog = bytearray(2**32)': the submission's processes used more"
    assert why == f"{expected} than the 1.46 GB limit in all", why


# ---------------------------------------------------------------------------------------------- stopping, paths


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stopped")
    master = synthetic_master()
    nbformat.write(master, tmp / "master.ipynb")
    from test_grader import HIDDEN_TESTS

    (tmp / "hidden.py").write_text(HIDDEN_TESTS)
    return tmp, se.build(master)


def test_a_relative_interpreter_path_works(small_class):
    """`../venv/bin/python teacher/grade.py`: sys.executable is then relative; the sandbox needs it absolute."""
    tmp, edition = small_class
    nbformat.write(answered(edition, SOLUTIONS), tmp / "ada.ipynb")
    python = os.path.relpath(sys.executable, tmp)
    assert not os.path.isabs(python)
    result = subprocess.run(
        [python, os.path.relpath(ROOT / "teacher" / "grade.py", tmp), "ada.ipynb", "-o", "out/grades.csv"]
        + [str(a) for a in options_for(tmp)],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert [r["status"] for r in read_csv(tmp / "out" / "grades.csv")] == ["right"] * 3 + ["3/3 right"]


def test_a_grader_stopped_mid_class_keeps_the_students_graded_and_leaves_nothing_behind(small_class):
    tmp, edition = small_class
    folder = tmp / "class"
    folder.mkdir()
    nbformat.write(answered(edition, SOLUTIONS), folder / "a_first.ipynb")
    marker = f"stopped-{os.getpid()}-{time.time_ns()}"
    slow = answered(edition, SOLUTIONS)
    sleep = f"import subprocess\n\nsubprocess.run(['sh', '-c', 'sleep 300  # {marker}'])"
    slow.cells.append(nbformat.v4.new_code_cell(sleep))
    nbformat.write(slow, folder / "b_slow.ipynb")
    scratch = tmp / "scratch"
    scratch.mkdir()
    out = tmp / "stopped-out" / "grades.csv"
    command = [sys.executable, str(ROOT / "teacher" / "grade.py"), str(folder), "-o", str(out), "--jobs", "1"]
    command += ["--memory", MEMORY, *map(str, options_for(tmp))]
    grader = subprocess.Popen(command, cwd=tmp, env=dict(os.environ, TMPDIR=str(scratch)), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (out.exists() and "a_first" in out.read_text()):
            time.sleep(0.5)
        while time.monotonic() < deadline and not processes_with(marker):  # b_slow's sandbox is running now
            time.sleep(0.5)
        assert processes_with(marker), "b_slow's notebook was not running"
        grader.terminate()  # SIGTERM, as a job scheduler sends at its time limit
        grader.wait(timeout=60)
    finally:
        grader.kill()
        stderr = grader.stderr.read().decode()
    assert grader.returncode == 128 + 15, stderr
    assert [r["status"] for r in read_csv(out) if r["student"] == "a_first"] == ["right"] * 3 + ["3/3 right"]
    assert (out.parent / "feedback" / "a_first.txt").exists()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]
    assert list(scratch.iterdir()) == []
    time.sleep(1)
    assert processes_with(marker) == [] and grader_cgroups(grader.pid) == []
