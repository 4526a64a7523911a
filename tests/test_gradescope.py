"""The grader as a Gradescope autograder (teacher/gradescope.py), run as Gradescope runs it, without Docker.

Each submission gets a container of its own, built with bubblewrap as root: the /autograder tree laid out as
Gradescope lays it out (the zip unpacked in /autograder/source, run_autograder next to it, the submission and its
metadata, an empty results folder), the machine's system read-only, a disk-backed /tmp, a Python 3.10 environment
made from the zip's own pinned requirements (Gradescope's Ubuntu 22.04 has Python 3.10), and Gradescope's default
resources: 768 MB of memory (a cgroup's memory limit on the whole run) and
half a CPU (its CPU quota), the 10-minute time limit. It runs once with namespaces allowed (the grader's bubblewrap
sandbox starts) and once with namespace creation blocked as Docker's default seccomp profile blocks it (unshare,
setns and clone with a CLONE_NEW* flag fail with EPERM, clone3 with ENOSYS): bubblewrap then fails as it does on
Gradescope and teacher/fallback.py confines the student's code. After run_autograder exits, the container's
"harness" waits, as Gradescope's reads results.json only then, and records whether anything changed it and, with
namespaces blocked, which processes other than root's are left (the student's user id is drawn per run).

The class: honest submissions, graded also by teacher/grade.py directly (same verdicts, points and words), and
attacks, each with no point gained and results.json intact and valid against the documented format.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import nbformat
import pytest
from test_grader import HIDDEN_TESTS, SOLUTIONS, answered, by_student, read_csv, run_grader, synthetic_master

from notebook_module import ROOT

sys.path.insert(0, str(ROOT / "teacher"))
import grade  # noqa: E402
import gradescope  # noqa: E402
import student_edition as se  # noqa: E402

MEMORY = 768 * 2**20  # Gradescope's defaults
CPU_QUOTA = 0.5
TIME_LIMIT = 600
# Python 3.10 itself (pyenv's shims are scripts that uv cannot inspect)
PYTHON_310 = next(
    (
        str(p)
        for p in [*sorted(Path("/root/.pyenv/versions").glob("3.10*/bin/python3.10")), Path("/usr/bin/python3.10")]
        if p.exists()
    ),
    None,
)
NEEDS = shutil.which("bwrap") and os.geteuid() == 0 and PYTHON_310
pytestmark = pytest.mark.skipif(not NEEDS, reason="needs root, bubblewrap (apt-get install bubblewrap) and Python 3.10")

# the documented results.json (gradescope/autograder_samples, docs/specs.md): the keys it lists, the values it allows
FORMATS = ["text", "html", "simple_format", "md", "ansi"]
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": {"enum": FORMATS},
        "test_output_format": {"enum": FORMATS},
        "test_name_format": {"enum": FORMATS},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "leaderboard": {"type": "array"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": {"enum": FORMATS},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": {"enum": FORMATS},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}

# the container's first process: Docker's seccomp rules for namespaces (when blocked), run_autograder, then the
# harness's wait before it reads results.json
HARNESS = r"""
import errno, hashlib, json, os, subprocess, sys, time
if sys.argv[1] == "blocked":
    import pyseccomp as seccomp
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.CTL_NNP, 0)  # Docker sets no "no new privileges" by default
    for flag in (0x80, 0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    for name in ("unshare", "setns"):
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.load()
start = time.monotonic()
with open("/harness/stdout", "wb") as log:
    try:
        code = subprocess.run(["/autograder/run_autograder"], stdout=log, stderr=subprocess.STDOUT,
                              timeout=int(sys.argv[2])).returncode
    except subprocess.TimeoutExpired:
        code = "time limit"
seconds = time.monotonic() - start
results = "/autograder/results/results.json"
digest = lambda: hashlib.sha256(open(results, "rb").read()).hexdigest() if os.path.exists(results) else None
before = digest()
time.sleep(3)
def left():
    if sys.argv[1] != "blocked":
        return None  # the machine's /proc: the sandbox's process tree is its own, and ends with it
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        uids = next(l.split()[1:] for l in status.splitlines() if l.startswith("Uid:"))
        state = next(l.split()[1] for l in status.splitlines() if l.startswith("State:"))
        if uids != ["0"] * 4 and state != "Z":
            found.append(int(pid))
    return found
json.dump({"returncode": code, "seconds": seconds, "changed_after_exit": digest() != before,
           "left": left()}, open("/harness/harness.json", "w"))
"""


class Cgroup:
    """Gradescope's container resources on the whole run: memory (no swap) and CPU quota; v1 or v2 hierarchy."""

    def __init__(self, name):
        base = Path("/sys/fs/cgroup")
        self.v2 = (base / "cgroup.controllers").exists()
        self.dirs = [base / name] if self.v2 else [base / "memory" / name, base / "cpu" / name]
        for d in self.dirs:
            d.mkdir()
        period = 100_000
        if self.v2:
            (self.dirs[0] / "memory.max").write_text(str(MEMORY))
            if (self.dirs[0] / "memory.swap.max").exists():
                (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "cpu.max").write_text(f"{int(period * CPU_QUOTA)} {period}")
        else:
            (self.dirs[0] / "memory.limit_in_bytes").write_text(str(MEMORY))
            if (self.dirs[0] / "memory.memsw.limit_in_bytes").exists():
                (self.dirs[0] / "memory.memsw.limit_in_bytes").write_text(str(MEMORY))
            (self.dirs[1] / "cpu.cfs_period_us").write_text(str(period))
            (self.dirs[1] / "cpu.cfs_quota_us").write_text(str(int(period * CPU_QUOTA)))

    def enter(self):  # in the child, before exec
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def peak_mb(self):
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        path = self.dirs[0] / name
        return int(path.read_text()) // 2**20 if path.exists() else None

    def oom_kills(self):
        path = self.dirs[0] / ("memory.events" if self.v2 else "memory.oom_control")
        for line in path.read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def remove(self):
        """Kill what is left and remove the cgroup (exiting processes can take seconds on a loaded machine)."""
        for d in self.dirs:
            for _ in range(600):
                pids = (d / "cgroup.procs").read_text().split()
                for pid in pids:
                    try:
                        os.kill(int(pid), 9)
                    except ProcessLookupError:
                        pass
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
            assert not d.exists(), f"the test's cgroup {d} could not be removed"


def container(tmp, name, autograder_zip, files, python, blocked, metadata=None):
    """Run the autograder on one submission (files: {name: bytes}) as Gradescope would; return what it left."""
    top = tmp / name
    auto, harness, scratch = top / "autograder", top / "harness", top / "tmp"
    for d in (auto / "source", auto / "submission", auto / "results", harness, scratch):
        d.mkdir(parents=True)
    scratch.chmod(0o1777)  # as a system's /tmp
    with zipfile.ZipFile(autograder_zip) as z:
        z.extractall(auto / "source")
    for path in (auto / "source").rglob("*"):  # zipfile drops the mode bits Gradescope's unzip keeps
        if path.name in ("setup.sh", "run_autograder"):
            path.chmod(0o755)
    shutil.copy(auto / "source" / "run_autograder", auto / "run_autograder")
    for file_name, data in files.items():
        (auto / "submission" / file_name).write_bytes(data)
    users = [{"email": f"{name}@example.edu", "id": 1, "name": name}]
    (auto / "submission_metadata.json").write_text(json.dumps(metadata or {"users": users, "previous_submissions": []}))
    (harness / "harness.py").write_text(HARNESS)
    pyenv = Path(os.path.realpath(PYTHON_310)).parents[1]
    cmd = ["bwrap"]
    for entry in sorted(Path("/").iterdir()):  # the machine's system, read-only, on a root of the container's own
        if entry.name in ("proc", "dev", "tmp", "root", "autograder", "harness"):
            continue
        cmd += ["--symlink", os.readlink(entry), str(entry)] if entry.is_symlink() else ["--ro-bind", *[str(entry)] * 2]
    # blocked: a /proc of its own, as Docker's; allowed: the machine's, since a fresh /proc comes with bubblewrap's
    # read-only covers (/proc/sys...), under which the kernel lets no nested sandbox mount a /proc of its own
    cmd += ["--dev", "/dev", *(["--proc", "/proc"] if blocked else ["--bind", "/proc", "/proc"])]
    cmd += ["--bind", str(scratch), "/tmp"]
    cmd += ["--perms", "0755", "--tmpfs", "/root"]  # the base interpreter (pyenv's, under /root here), readable by all
    for folder in reversed(pyenv.parents[: len(pyenv.relative_to("/root").parts) - 1]):
        cmd += ["--perms", "0755", "--dir", str(folder)]
    cmd += ["--ro-bind", str(pyenv), str(pyenv)]
    cmd += ["--ro-bind", str(python), "/tmp/gradescope-python"]
    cmd += ["--bind", str(auto), "/autograder", "--bind", str(harness), "/harness"]
    cmd += [*(["--unshare-pid"] if blocked else []), "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    cmd += ["--chdir", "/autograder"]
    cmd += ["--clearenv", "--setenv", "PATH", "/tmp/gradescope-python/bin:/usr/local/bin:/usr/bin:/bin"]
    cmd += ["--setenv", "HOME", "/root", "--setenv", "LANG", "C.UTF-8"]
    cmd += ["/tmp/gradescope-python/bin/python3", "/harness/harness.py"]
    cmd += ["blocked" if blocked else "allowed", str(TIME_LIMIT)]
    group = Cgroup(f"nn-gradescope-{os.getpid()}-{name}")
    start = time.monotonic()
    try:
        subprocess.run(cmd, preexec_fn=group.enter, timeout=TIME_LIMIT + 60, check=False)
        seconds = time.monotonic() - start
        peak, ooms = group.peak_mb(), group.oom_kills()
    finally:
        group.remove()
    results_path = auto / "results" / "results.json"
    return {
        "results": json.loads(results_path.read_text()) if results_path.exists() else None,
        "results_bytes": results_path.stat().st_size if results_path.exists() else 0,
        "harness": json.loads((harness / "harness.json").read_text()),
        "log": (harness / "stdout").read_text(errors="replace"),
        "seconds": seconds,
        "peak_mb": peak,
        "oom_kills": ooms,
    }


# ---------------------------------------------------------------------------------------------- fast, in-process

SETTINGS = {
    "points": {"1": 2.0, "2": 1.0, "3": 3.0},
    "hidden_exercises": [1, 3],
    "visibility": "visible",
    "hidden_visibility": "visible",
}
ROWS = [
    {"student": "ada", "id": "", "exercise": "1", "title": "doubling", "status": "right", "points": "2.0"},
    {"student": "ada", "id": "", "exercise": "2", "title": "a threshold", "status": "wrong", "points": "0"},
    {"student": "ada", "id": "", "exercise": "3", "title": "squares", "status": "wrong", "points": "0"},
    {"student": "ada", "id": "", "exercise": "total", "title": "", "status": "1/3 right", "points": "2.0"},
]
DETAILS = ["matches (and right on 4 hidden cases)", "3 is not above 8: try *more* <b>", "x" * 50_000, "2 wrong"]


def test_results_json_per_exercise_clipped_and_visibility_as_the_teacher_sets():
    rows = [dict(r, detail=d) for r, d in zip(ROWS, DETAILS)]
    results = gradescope.results_from(rows, "# Feedback for ada\n" + "y" * 100_000, SETTINGS, 12.4)
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 2.0 and results["execution_time"] == 12 and results["stdout_visibility"] == "hidden"
    assert [t["max_score"] for t in results["tests"]] == [2.0, 1.0, 3.0]
    assert results["tests"][1]["output"] == "**wrong**: 3 is not above 8: try \\*more\\* \\<b\\>"
    assert len(results["tests"][2]["output"]) <= gradescope.TEST_CHARS and "cut here" in results["tests"][2]["output"]
    assert len(results["output"]) <= gradescope.OUTPUT_CHARS
    later = dict(SETTINGS, hidden_visibility="after_due_date")
    shown = gradescope.shown_feedback(rows, "the feedback file", later)
    results = gradescope.results_from(rows, shown, later, 1)
    assert [t["visibility"] for t in results["tests"]] == ["after_due_date", "visible", "after_due_date"]
    assert "Exercise 2: a threshold" in shown and "Exercise 1:" not in shown and "Exercise 3:" not in shown
    assert "Exercises 1, 3 are also graded on hidden cases: their results are shown after due date." in shown
    assert gradescope.shown_feedback(rows, "the feedback file", SETTINGS) == "the feedback file"


def test_clipping_never_ends_inside_an_escape():
    for n in range(60, 80):
        text = gradescope.clip("\\" * 100, n)
        kept = text.split("\n\n*(cut")[0]
        assert len(text) <= n and (len(kept) - len(kept.rstrip("\\"))) % 2 == 0


def test_the_submitted_notebook_is_found_in_a_folder_or_a_zip(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    one = tmp_path / "one"
    (one / "sub").mkdir(parents=True)
    (one / "sub" / "x.ipynb").write_text("{}")
    assert gradescope.submitted_file(one, work, "ada").read_text() == "{}"
    for name, members, why in [
        ("two", {"a.ipynb": "{}", "b/c.ipynb": "{}"}, "several notebooks in the zip"),
        ("none", {"a.py": ""}, "no notebook in the zip"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        with zipfile.ZipFile(folder / "work.zip", "w") as z:
            for member, text in members.items():
                z.writestr(member, text)
        with pytest.raises(gradescope.NotGradable, match=why):
            gradescope.submitted_file(folder, work, "ada")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "work.zip").write_bytes(b"not a zip")
    with pytest.raises(gradescope.NotGradable, match="does not open"):
        gradescope.submitted_file(bad, work, "ada")
    big = tmp_path / "big"  # a zip that expands far beyond the limit: read bounded, refused
    big.mkdir()
    with zipfile.ZipFile(big / "work.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lesson.ipynb", b"0" * (gradescope.NOTEBOOK_BYTES + 10))
    with pytest.raises(gradescope.NotGradable, match="larger than"):
        gradescope.submitted_file(big, work, "ada")
    several = tmp_path / "several"
    several.mkdir()
    (several / "a.ipynb").write_text("{}")
    (several / "b.ipynb").write_text("{}")
    with pytest.raises(gradescope.NotGradable, match="several notebooks were handed in"):
        gradescope.submitted_file(several, work, "ada")


def test_the_zip_refuses_bad_input_before_writing(tmp_path):
    command = [sys.executable, str(ROOT / "teacher" / "gradescope.py"), "zip", "-o", str(tmp_path / "a.zip")]
    for extra, why in [
        (["--secret", str(tmp_path / "missing")], "--secret"),
        (["--data-dir", str(tmp_path)], "holds no *.csv.gz"),
        (["--master", str(tmp_path / "missing.ipynb")], "the master"),
        (["--points", "99=2"], "exercise 99"),
    ]:
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))  # a default secret made there, not in ~
        result = subprocess.run(command + extra, capture_output=True, text=True, env=env)
        assert result.returncode != 0 and why in result.stderr, (extra, result.stderr)
        assert not (tmp_path / "a.zip").exists() and not (tmp_path / "a.zip.partial").exists()


# ---------------------------------------------------------------------------------------------- in containers


@pytest.fixture(scope="module")
def python310(tmp_path_factory):
    """A Python 3.10 environment from the zip's pinned requirements (what setup.sh installs on Gradescope)."""
    venv = tmp_path_factory.mktemp("python310") / "venv"
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", "-p", str(PYTHON_310), str(venv)], check=True)
    requirements = ROOT / "teacher" / "gradescope" / "requirements.txt"
    python = str(venv / "bin" / "python")
    subprocess.run([*uv, "pip", "install", "-q", "-p", python, "-r", str(requirements)], check=True)
    return venv


class Listener:
    """A TCP server on the machine's loopback: an attack that reaches it is a network connection made."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.server.settimeout(0.5)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.server.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.running = False
        self.thread.join()
        self.server.close()


def attacks(port):
    """{name: (code for some exercises' cells, the most points it may get)}; the others are answered right.

    Exercise 2 (a number above 8): an attack there that works sets threshold = 100 (right), refused it leaves 3
    (wrong); points 1=2, 2=1, 3=3, so 5 of 6 is the most a refused attack gets. The resource attacks answer right
    when they are contained as the student should see it (a MemoryError, a refused process): 6 of 6."""
    fork = (
        "import subprocess\nstarted = []\ntry:\n    for _ in range(1000):\n"
        "        started.append(subprocess.Popen(['sleep', '60']))\nexcept OSError as e:\n"
        "    print('stopped at', len(started), e)\nprint(len(started), 'processes')\nthreshold = 11"
    )
    # exercise 1 wrong (x + 1), and a process that outlives the notebook: it forges exercise 1's values on the
    # notebook's cases in whatever values file appears, and writes results.json, for a minute
    survivor = (
        "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', " + repr(SURVIVOR) + "], "
        "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\n\n"
        "def my_double(x):\n    return x + 1"
    )
    reads = (
        "threshold = 3\nimport os\nfor path in ['/autograder/source/grader/hidden_tests.py', "
        "'/autograder/source/grader/secret', '/autograder/source/grader/settings.json', '/autograder/source']:\n"
        "    try:\n        open(path).read() if not path.endswith('source') else os.listdir(path)\n"
        "        threshold = 100\n    except Exception as e:\n        print('refused:', e)"
    )
    connects = (
        "import socket\nthreshold = 3\nfor family, address in [(socket.AF_INET, ('127.0.0.1', "
        f"{port})), (socket.AF_INET6, ('::1', {port}))]:\n"
        "    try:\n        s = socket.socket(family)\n        s.settimeout(5)\n        s.connect(address)\n"
        "        threshold = 100\n    except Exception as e:\n        print('refused:', e)"
    )
    writes = (
        "threshold = 3\nimport json\ntry:\n    with open('/autograder/results/results.json', 'w') as f:\n"
        "        json.dump({'score': 1000, 'tests': []}, f)\n    threshold = 100\nexcept Exception as e:\n"
        "    print('refused:', e)"
    )
    hog = (
        "threshold = 5\ntry:\n    hog = np.ones((50_000, 100_000))  # 40 GB\nexcept MemoryError:\n"
        "    threshold = 11  # the student sees a MemoryError"
    )
    flood = "for _ in range(100):\n    print('x' * 1_000_000)  # 100 MB of output\nthreshold = 11"
    return {
        "writes_results": ({2: writes}, 5),
        "survivor_rewrites": ({1: survivor}, 4),
        "reads_source": ({2: reads}, 5),
        "connects": ({2: connects}, 5),
        "processes_1000": ({2: fork}, 6),
        "memory_hog": ({2: hog}, 6),
        "output_100mb": ({2: flood}, 6),
    }


SURVIVOR = """
import glob, json, os, time
end = time.time() + 60
while time.time() < end:
    for path in glob.glob(os.path.expanduser('~') + '/.grader-*.json'):
        try:
            data = json.load(open(path))
            data['1']['public'] = {'runs': [{'result': 0.0}, {'result': 2.0}, {'result': 5.0}, {'result': -6.0}]}
            json.dump(data, open(path, 'w'))
        except Exception:
            pass
    try:
        open('/autograder/results/results.json', 'w').write('{"score": 1000, "tests": []}')
    except Exception:
        pass
    time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def gradescope_class(tmp_path_factory, python310):
    """The synthetic lesson's autograder, and a class graded in containers, with and without namespaces."""
    tmp = tmp_path_factory.mktemp("gradescope")
    master = synthetic_master()
    nbformat.write(master, tmp / "master.ipynb")
    (tmp / "hidden.py").write_text(HIDDEN_TESTS)
    (tmp / "secret").write_text("a secret of the teacher's\n")
    edition = se.build(master)
    autograder = tmp / "autograder.zip"
    made = subprocess.run(
        [sys.executable, str(ROOT / "teacher" / "gradescope.py"), "zip", "-o", str(autograder), "--points", "1=2,3=3"]
        + ["--master", str(tmp / "master.ipynb"), "--hidden-tests", str(tmp / "hidden.py"), "--secret"]
        + [str(tmp / "secret"), "--data-dir", str(ROOT / "data"), "--memory", "1G", "--notebook-timeout", "240"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    listener = Listener()
    honest = {
        "ada": answered(edition, SOLUTIONS),
        "cleo": answered(edition, {1: "def my_double(x):\n    return x + 1", 2: "threshold = 3", 3: SOLUTIONS[3]}),
        "ben": edition,
    }
    submissions = {name: {f"{name}.ipynb": nbformat.writes(nb).encode()} for name, nb in honest.items()}
    zipped = tmp / "dev.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("my work/lesson.ipynb", nbformat.writes(honest["ada"]))
        z.writestr("__MACOSX/my work/._lesson.ipynb", "resource fork")
    submissions["dev"] = {"dev.zip": zipped.read_bytes()}
    submissions["gus"] = {"gus.py": b"# %%\ndef my_double(x):\n    return 2 * x\n"}
    expected = {}
    for name, (code, most) in attacks(listener.port).items():
        nb = answered(edition, {**SOLUTIONS, **code})
        submissions[name] = {f"{name}.ipynb": nbformat.writes(nb).encode()}
        expected[name] = most
    runs = {}
    for mode in ("blocked", "allowed"):  # two containers at a time, each with half a CPU; one mode at a time
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = pool.map(
                lambda name, mode=mode: container(
                    tmp / mode, name, autograder, submissions[name], python310, blocked=mode == "blocked"
                ),
                submissions,
            )
            runs.update({(mode, name): result for name, result in zip(submissions, done)})
    listener.close()
    # teacher/grade.py on the same notebooks, as a teacher grades a class (bubblewrap, this machine)
    folder = tmp / "class"
    folder.mkdir()
    for name in ["ada", "cleo", "ben", "gus"]:
        for file_name, data in submissions[name].items():
            (folder / file_name).write_bytes(data)
    (folder / "dev.ipynb").write_text(nbformat.writes(honest["ada"]))
    settings = json.loads(zipfile.ZipFile(autograder).read("grader/settings.json"))
    direct = run_grader(
        folder,
        "-o",
        tmp / "direct" / "grades.csv",
        "--points",
        "1=2,3=3",
        "--secret",
        tmp / "secret",
        "--master",
        tmp / "master.ipynb",
        "--hidden-tests",
        tmp / "hidden.py",
        "--data-dir",
        ROOT / "data",
        cwd=tmp,
    )
    assert direct.returncode == 0, direct.stderr
    return autograder, runs, expected, listener, read_csv(tmp / "direct" / "grades.csv"), settings


def test_the_zip_holds_what_gradescope_needs(gradescope_class):
    autograder, *_ = gradescope_class
    names = zipfile.ZipFile(autograder).namelist()
    assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(names)  # at the root, as Gradescope wants
    assert {"grader/master.ipynb", "grader/hidden_tests.py", "grader/secret", "grader/points.txt"} <= set(names)
    assert {"data/mnist_train.csv.gz", "data/mnist_test.csv.gz", "grader/teacher/grade.py"} <= set(names)
    print(f"autograder zip: {autograder.stat().st_size / 2**20:.1f} MB")


@pytest.mark.parametrize("mode", ["blocked", "allowed"])
def test_every_results_json_is_valid_and_intact_after_the_run(gradescope_class, mode):
    _, runs, *_ = gradescope_class
    for (run_mode, name), run in runs.items():
        if run_mode != mode:
            continue
        jsonschema.validate(run["results"], SCHEMA)
        assert run["results"]["stdout_visibility"] == "hidden", name
        assert run["results_bytes"] < 200_000, name
        assert run["harness"]["returncode"] == 0, (name, run["log"][-3000:])
        assert not run["harness"]["changed_after_exit"], name
        # no process of the student's user outlives run_autograder (with namespaces allowed, the sandbox's own
        # process tree ends with it, as tests/test_grader.py shows)
        assert run["harness"]["left"] == ([] if mode == "blocked" else None), name
        assert run["results"]["output"] != gradescope.DID_NOT_FINISH, (name, run["log"][-3000:])
        expected_mode = "teacher/fallback.py" if mode == "blocked" else "bubblewrap"
        assert f"isolation: {expected_mode}" in run["log"] or name == "gus", (name, run["log"][-2000:])


@pytest.mark.parametrize("mode", ["blocked", "allowed"])
def test_the_same_grades_as_grade_py(gradescope_class, mode):
    _, runs, _, _, direct, _ = gradescope_class
    direct = by_student(direct)
    for name in ["ada", "cleo", "ben", "dev"]:
        results = runs[mode, name]["results"]
        assert results["score"] == float(direct[name, "total"]["points"]), (name, results)
        for test in results["tests"]:
            row = direct[name, test["number"]]
            assert test["score"] == float(row["points"])
            assert test["max_score"] == {"1": 2, "2": 1, "3": 3}[row["exercise"]]
            assert test["output"] == f"**{row['status']}**: {gradescope.markdown(row['detail'])}", (name, test)
            assert test["output_format"] == "md" and test["name"] == f"Exercise {row['exercise']}: {row['title']}"
        assert results["output"].startswith(f"Feedback for {name}\n"), results["output"]  # the plain-text file
        assert results["output_format"] == "text"
    assert runs[mode, "ada"]["results"]["score"] == 6.0 and runs[mode, "ben"]["results"]["score"] == 0.0
    gus = runs[mode, "gus"]["results"]
    assert gus["score"] == 0 and "not gradable" in gus["tests"][0]["output"], gus
    assert direct["gus", "all"]["status"] == "not gradable"


@pytest.mark.parametrize("mode", ["blocked", "allowed"])
def test_attacks_gain_nothing(gradescope_class, mode):
    _, runs, expected, listener, *_ = gradescope_class
    assert listener.connections == 0
    for name, most in expected.items():
        results = runs[mode, name]["results"]
        assert results["score"] <= most, (name, results)
        scores = {t["number"]: t["score"] for t in results["tests"]}
        assert scores["3"] == 3, (name, results)  # the honest answers still graded
    for name, (_, most) in attacks(0).items():
        assert runs[mode, name]["results"]["score"] == most, (name, runs[mode, name]["results"])
    survivor = {t["number"]: t for t in runs[mode, "survivor_rewrites"]["results"]["tests"]}
    assert survivor["1"]["output"].startswith("**wrong**"), survivor["1"]
    if mode == "blocked":
        assert "killed" in runs[mode, "survivor_rewrites"]["log"]


def test_report_time_and_memory(gradescope_class):
    """Not an assertion on time (noisy): the numbers for the README, printed with the machine's load."""
    _, runs, *_ = gradescope_class
    load = os.getloadavg()
    for (mode, name), run in sorted(runs.items()):
        killed = next((line for line in run["log"].splitlines() if line.startswith("killed ")), "")
        print(
            f"{mode:8} {name:18} {run['seconds']:6.1f} s  peak {run['peak_mb']} MB  oom kills {run['oom_kills']}  "
            f"score {run['results']['score']:g}  (load {load[0]:.1f}) {killed}"
        )
    assert all(run["seconds"] < TIME_LIMIT for run in runs.values())


@pytest.fixture(scope="module")
def real_submission(tmp_path_factory, python310):
    """The real notebook's autograder (the command's defaults) on the master with its solutions filled in, in a
    container with namespaces blocked (Gradescope's case), and teacher/grade.py on the same notebook."""
    tmp = tmp_path_factory.mktemp("gradescope-real")
    autograder = tmp / "autograder.zip"
    grade.make_secret(tmp / "secret")
    made = subprocess.run(
        [sys.executable, str(ROOT / "teacher" / "gradescope.py"), "zip", "-o", str(autograder)]
        + ["--secret", str(tmp / "secret")],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    master = nbformat.read(ROOT / "neural_network_from_scratch.ipynb", as_version=4)
    right = {n: se.solution_code(master, e) for n, e in se.find_exercises(master).items()}
    notebook = nbformat.writes(answered(master, right))
    run = container(tmp, "ada", autograder, {"lesson.ipynb": notebook.encode()}, python310, blocked=True)
    (tmp / "class").mkdir()
    (tmp / "class" / "ada.ipynb").write_text(notebook)
    direct = run_grader(tmp / "class", "-o", tmp / "direct" / "grades.csv", "--secret", tmp / "secret", cwd=tmp)
    assert direct.returncode == 0, direct.stderr
    return autograder, run, by_student(read_csv(tmp / "direct" / "grades.csv"))


def test_the_real_notebook_at_gradescopes_default_resources(real_submission):
    autograder, run, direct = real_submission
    results = run["results"]
    jsonschema.validate(results, SCHEMA)
    assert "isolation: teacher/fallback.py" in run["log"] and run["harness"]["returncode"] == 0, run["log"][-3000:]
    assert results["score"] == float(direct["ada", "total"]["points"]) == 11.0, results
    for test in results["tests"]:
        row = direct["ada", test["number"]]
        assert test["output"] == f"**{row['status']}**: {gradescope.markdown(row['detail'])}", test
    assert run["oom_kills"] == 0 and run["harness"]["left"] == []
    print(
        f"real notebook on Gradescope's defaults (768 MB, half a CPU): zip {autograder.stat().st_size / 2**20:.1f} MB, "
        f"run_autograder {run['harness']['seconds']:.0f} s, memory peak {run['peak_mb']} MB (page cache included), "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
