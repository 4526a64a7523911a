"""Issue 26, part B: the graded handout is no answer oracle, the hidden cases are secret by default, feedback never
carries a hidden case or what the student's code said on one, and a later redefinition of an answer is flagged.

Fast, in-process: brute-forcing every value exercise through the graded edition's own cells (and the practice
edition, where the same loop finds each answer); the teacher's secret and the refusal of the public defaults; the
kinds of hidden case a wrong answer fails; the redefinitions prepare finds. Then one class of the real notebook,
sandboxed and graded in one run with honest students: a submission of lookup tables precomputed from the public
repository, one whose exception carries its hidden input, one wrong on one kind of hidden case, one that redefines
two answers in a scratch cell; the honest students graded again alone give the same rows and feedback.
"""

import base64
import contextlib
import copy
import hashlib
import io
import itertools
import json
import pickle
import re
import stat
import sys

import nbformat
import numpy as np
import pytest
from test_grader import answered, by_student, needs_bwrap, read_csv, run_grader

from notebook_module import NOTEBOOK, ROOT

sys.path.insert(0, str(ROOT / "teacher"))
import collect  # noqa: E402
import grade  # noqa: E402
import hidden_key  # noqa: E402
import hidden_tests  # noqa: E402
import judge  # noqa: E402
import student_edition as se  # noqa: E402
from prepare import hidden_for, prepare  # noqa: E402

FINGERPRINT = re.compile(r"[\"']([0-9a-f]{16})[\"']")  # a string of 16 hex digits: digest()


@pytest.fixture(scope="module")
def real():
    master = nbformat.read(NOTEBOOK, as_version=4)
    return master, se.build(master), se.build(master, practice=True)


def solutions(master):
    """{answer name: the master's solution value or function}."""
    found = {}
    for ex in se.find_exercises(master).values():
        namespace = {"np": np}
        exec(se.solution_code(master, ex), namespace)
        found[ex.learner_name] = namespace[ex.learner_name]
    return found


def edition_checks(edition):
    """The edition's helper and value exercises' check cells, exec'd as the kernel runs them: {n: namespace}."""
    spaces = {}
    for n, ex in se.find_exercises(edition).items():
        if ex.function_name:
            continue
        namespace = {"np": np, "__name__": "edition"}
        exec(se.python_source(se.source(edition.cells[se.helper_index(edition)])), namespace)
        exec(se.python_source(se.source(edition.cells[ex.check])), namespace)
        spaces[n] = (namespace, ex.check_name)
    return spaces


def observe(space, n, candidate):
    """Everything a loop in the notebook sees when it calls the check: what it prints, records and returns."""
    namespace, check = space
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        returned = namespace[check](copy.deepcopy(candidate))
    return printed.getvalue(), namespace["EXERCISE_RESULTS"].get(n), returned


SIZES = (5, 10, 128, 784)
SHAPES = [(a,) for a in SIZES] + list(itertools.product(SIZES, SIZES))
WORDS = ["worse", "about the same", "better", "diverges"]


def candidates(name, right):
    """What a student's loop would try for the value exercise `name` (the right answer among them)."""
    if name == "dW1_11":
        return [round(k * 1e-4, 4) for k in range(15001)]  # every 4-decimal number from 0 to 1.5
    if name == "first_wrong":
        return [prefix + g for g in ("Z2", "W2", "b2", "A1", "Z1", "W1", "b1") for prefix in ("", "d")]
    if name == "lr_predictions":
        return [dict(zip(right, words)) for words in itertools.product(WORDS, repeat=len(right))]
    if name == "predicted_shapes":  # one shape varied at a time around the right ones, and random mixes
        found = [{**right, key: shape} for key in right for shape in SHAPES]
        rng = np.random.default_rng(0)
        found += [{key: SHAPES[i] for key, i in zip(right, rng.integers(0, len(SHAPES), 4))} for _ in range(300)]
        return found
    raise AssertionError(name)


def brute_force_shapes(space, right):
    """The practice edition's check names the first wrong shape: a loop finds them one at a time."""
    guess = dict.fromkeys(right, (5,))
    for key in right:
        for shape in SHAPES:
            printed = observe(space, 3, {**guess, key: shape})[0]
            if f"{key} is not" not in printed:
                guess[key] = shape
                break
    return guess


def test_the_graded_edition_holds_no_fingerprint_and_says_which_edition_it_is(real):
    master, graded, practice = real
    held = set()
    for ex in se.find_exercises(master).values():
        held |= set(FINGERPRINT.findall(se.source(master.cells[ex.check])))
    assert len(held) > 20  # the master's checks hold the answers' and the slips' fingerprints

    def everything(nb):  # every cell's text and the metadata, as the student's file holds them
        return "\n".join(se.source(c) for c in nb.cells) + json.dumps(nb.metadata)

    text = everything(graded)
    assert not held & set(FINGERPRINT.findall(text))
    assert not any(fingerprint in json.dumps(graded) for fingerprint in held)
    for name in ("SHAPES_3", "DW1_11", "SLIPS_6", "NAMES_8", "OUTCOMES_9", "WHY_9", "digest(3", "digest(6", "digest(9"):
        assert name not in text, name
    assert held <= set(FINGERPRINT.findall(everything(practice)))  # the practice edition keeps them
    assert graded.metadata["student_edition"] == {"kind": "graded"}
    assert practice.metadata["student_edition"] == {"kind": "practice"}
    intro = graded.cells[1].source
    assert "**This is the graded edition.**" in intro and "exercises 3, 6, 8 and 9" in intro
    assert "look only at its form and say *answered*" in intro
    assert "**This is the practice edition.**" in practice.cells[1].source
    for words in (graded.cells[1].source, practice.cells[1].source):  # what is graded, exactly
        assert "**What is graded is the last definition.**" in words and "your feedback names the cell" in words
    exercises = se.find_exercises(graded)
    for n in (3, 6, 8, 9):
        assert "looks only at the form of your answer" in se.source(graded.cells[exercises[n].task])
        title = se.source(graded.cells[exercises[n].check]).splitlines()[0]
        assert title.startswith(f"# @title Check for exercise {n}: the form of your answer only"), title


def test_brute_forcing_the_value_exercises_through_the_edition(real):
    """A loop calling each value exercise's check with every candidate: the practice edition gives the answer
    away; the graded edition's check prints, records and returns the same for every well-formed candidate, the
    right one included."""
    master, graded, practice = real
    right = solutions(master)
    exercises = se.find_exercises(master)
    graded_spaces, practice_spaces = edition_checks(graded), edition_checks(practice)
    assert sorted(graded_spaces) == [3, 6, 8, 9]
    for n, space in graded_spaces.items():
        name = exercises[n].learner_name
        tried = candidates(name, right[name])
        assert any(c == right[name] for c in tried)
        seen = {repr(observe(space, n, c)) for c in tried}
        assert len(seen) == 1, (n, sorted(seen)[:3])
        printed = next(iter(seen))
        assert f"Exercise {n}: answered: " in printed and "graded" in printed, printed
        # the practice edition: the same loop learns the answer
        practice_space = practice_spaces[n]
        if name == "predicted_shapes":
            assert brute_force_shapes(practice_space, right[name]) == right[name]
            continue
        said_right = [c for c in tried if f"Exercise {n}: right:" in observe(practice_space, n, c)[0]]
        if name == "dW1_11":
            assert right[name] in said_right and all(abs(c - right[name]) <= 1.01e-4 for c in said_right)
        else:
            assert said_right and all(c == right[name] or c == "d" + right[name] for c in said_right), said_right


def test_the_form_check_agrees_with_the_masters_verdict(real):
    """What the graded check calls not attempted or wrong (its form), the grader calls so too, for the same
    reason (the master's words may add how many other parts are right: the form check cannot know); what it calls
    answered, the grader judges right or wrong."""
    from test_exercises import WRONG

    master, graded, _ = real
    right = solutions(master)
    checks = judge.MasterChecks(master)
    spaces = edition_checks(graded)
    exercises = se.find_exercises(master)
    odd = [None, 3, "A1", 0.5, True, float("nan"), (5, 10), [1, 2], {"x": 1}, {}, "dW9", "  a1 "]
    for n, (namespace, _) in spaces.items():
        name = exercises[n].learner_name
        tries = [right[name], *[answer for answer, _ in WRONG[name]], *odd]
        if isinstance(right[name], dict):
            first = next(iter(right[name]))
            tries += [dict.fromkeys(right[name]), {**right[name], first: None}, {**right[name], "x": 5}]
            tries += [dict.fromkeys(right[name], 1), {**right[name], first: "worse"}, {**right[name], first: 5.5}]
        for attempt in tries:
            values = namespace[f"values_{n}"](copy.deepcopy(attempt))
            form = namespace[f"verdict_{n}"](values)
            verdict = checks.verdict(n, judge.strict(json.loads(json.dumps(collect.encode(values)))))
            if form[0] == "answered":
                assert verdict[0] in ("right", "wrong"), (n, attempt, verdict)
            else:  # the same status and slip; the master may add how many others are right, which the form cannot
                assert form[0] == verdict[0] and form[1] in verdict[1], (n, attempt, form, verdict)


# ---------------------------------------------------------------------------------------------- the secret


def test_the_hidden_cases_come_from_the_teachers_secret(tmp_path, monkeypatch):
    secret = hidden_key.make_secret(tmp_path / "teacher-secret.txt")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) == 64
    with pytest.raises(hidden_key.SecretError, match="already exists"):
        hidden_key.make_secret(secret)
    key = hidden_key.secret_key(secret)
    master = nbformat.read(NOTEBOOK, as_version=4)
    checks = judge.MasterChecks(master)

    def inputs(student, key):  # exercise 2's hidden logits for this student, as data
        return repr(collect.encode([c["Z"] for c in hidden_for(student, checks, hidden_tests, key)[2]]))

    assert inputs("ada", key) == inputs("ada", hidden_key.secret_key(secret))  # a re-grade: the same cases
    assert inputs("ada", key) != inputs("ben", key)
    other = hidden_key.HiddenKey(secret=b"another secret of the teacher's")
    assert inputs("ada", key) != inputs("ada", other) != inputs("ada", 0)
    # the public derivation (a seed) is the grader's before secrets, which anyone can compute
    digest = hashlib.sha256(b"0:ada").digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    cases = {c.answer_name: hidden_tests.hidden_cases(c.answer_name, rng) for c in checks.checks.values()}
    assert repr(collect.encode([c["Z"] for c in cases["my_softmax"]])) == inputs("ada", 0)
    for name, text, why in [
        ("short.txt", "tiny", "fewer than 16"),
        ("empty.txt", "", "fewer than 16"),
    ]:
        (tmp_path / name).write_text(text)
        with pytest.raises(hidden_key.SecretError, match=why):
            hidden_key.read_secret(tmp_path / name)
    (tmp_path / "link.txt").symlink_to(secret)
    with pytest.raises(hidden_key.SecretError, match="link is not followed"):
        hidden_key.read_secret(tmp_path / "link.txt")
    with pytest.raises(hidden_key.SecretError, match="missing.txt does not exist: make a secret once with --make"):
        hidden_key.read_secret(tmp_path / "missing.txt")
    # by default: made once in the teacher's configuration folder, then the same
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    said = []
    first = hidden_key.secret_key(say=said.append)
    assert said and "made a new secret" in said[0] and str(tmp_path / "config") in said[0]
    assert hidden_key.secret_key(say=said.append) == first and len(said) == 1


def test_the_public_defaults_are_refused_unless_the_teacher_says_so(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    out = ["-o", str(tmp_path / "grades.csv")]
    with pytest.raises(
        SystemExit,
        match=r"refused: --seed draws the hidden cases from a public seed.*"
        r"--public-hidden-tests-ok",
    ) as refused:
        grade.main([str(folder), "--seed", "0", *out])
    assert "lookup tables" in str(refused.value)
    copied = tmp_path / "my_hidden.py"  # an unchanged copy is as public as the original
    copied.write_bytes((ROOT / "teacher" / "hidden_tests.py").read_bytes())
    with pytest.raises(SystemExit, match="refused"):
        grade.main([str(folder), "--seed", "0", "--hidden-tests", str(copied), *out])
    with pytest.raises(SystemExit, match="or --seed .public., not both"):
        grade.main([str(folder), "--seed", "0", "--secret", str(tmp_path / "s.txt"), *out])
    with pytest.raises(SystemExit, match=r"nope.txt does not exist: make a secret once with --make-secret"):
        grade.main([str(folder), "--secret", str(tmp_path / "nope.txt"), *out])
    assert grade.main(["--make-secret", "--secret", str(tmp_path / "s.txt")]) == 0
    assert "made " in capsys.readouterr().out and (tmp_path / "s.txt").exists()
    with pytest.raises(SystemExit, match="already exists"):
        grade.main(["--make-secret", "--secret", str(tmp_path / "s.txt")])
    grade.main([str(folder), "--seed", "0", "--public-hidden-tests-ok", *out])  # said explicitly: it grades
    assert "WARNING: --public-hidden-tests-ok: the hidden cases come from the repository's public" in (
        capsys.readouterr().err
    )
    assert (tmp_path / "grades.csv").exists() and (tmp_path / "teacher-notes.csv").exists()


def test_git_ignores_a_secret_kept_in_the_repository():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "teacher-secret*.txt" in ignored


# ---------------------------------------------------------------------------------------------- kinds, not cases

RAISES_ON_HIDDEN = '''def my_softmax(Z):
    """Right, except on the grader's hidden cases (values_2 given cases): there it raises, carrying its input."""
    import sys

    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name != "values_2":
        frame = frame.f_back
    if frame is not None and frame.f_locals.get("cases") is not None:
        raise ValueError(f"hidden input {np.asarray(Z).tolist()}")
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)'''

TEN_CLASSES_ONLY = '''def my_one_hot(y, n_classes=10):
    """One-hot rows, from a 10 by 10 identity: right for up to 10 classes only."""
    return np.eye(10, dtype=np.float32)[np.asarray(y)][:, :n_classes]'''


def numbers_of(cases):
    """The hidden cases' inputs and expected values as a feedback could quote them (floats of 4+ digits)."""
    found = set()
    for case in cases:
        for value in case.values():
            if isinstance(value, (dict, str)):
                continue
            for v in np.ravel(np.asarray(value, dtype=float)):
                found |= {repr(float(v)), f"{v:.4g}", f"{v:.6g}"}
    return {text for text in found if len(significant(text)) >= 4}  # not 0.7, 1 or a kind's own 700


def significant(text):
    """The significant digits a number is written with: "0.0123" -> "123"."""
    return text.lstrip("-").split("e")[0].replace(".", "").lstrip("0").rstrip("0")


def test_feedback_names_the_kind_of_hidden_case_never_the_case(real):
    """In-process, with the master's checks: an exception on a hidden input that carries the input, and an answer
    wrong on one kind of hidden case. The student's detail names kinds only; the teacher's note has the rest."""
    master, _, _ = real
    checks = judge.MasterChecks(master)
    key = hidden_key.HiddenKey(secret=b"a secret for this test only")
    hidden = hidden_for("tess", checks, hidden_tests, key)
    for n, code in [(2, RAISES_ON_HIDDEN), (1, TEN_CLASSES_ONLY)]:
        namespace = checks.namespace(n)
        exec(code, namespace)
        answer = namespace[checks.checks[n].answer_name]
        inputs = [{k: v for k, v in c.items() if k not in ("expected", "kind")} for c in hidden[n]]
        entry = {
            "defined": True,
            "public": json.loads(json.dumps(collect.encode(namespace[f"values_{n}"](answer)))),
            "hidden": json.loads(json.dumps(collect.encode(namespace[f"values_{n}"](answer, inputs)))),
        }
        status, detail, note = judge.judge_with_notes(checks, n, judge.strict(entry), hidden[n])
        assert status == "wrong" and detail.startswith(
            "right on the notebook's cases, but wrong on the grader's hidden"
        )
        assert not any(number in detail for number in numbers_of(hidden[n])), detail
        if n == 2:
            assert "hidden input" not in detail and "ValueError" not in detail
            assert "hidden input [[" in note  # the teacher's notes may quote it
            assert detail.endswith("these kinds: " + "; ".join(c["kind"] for c in hidden[n]))
        else:
            assert detail.endswith("of this kind: more classes than the digits' 10, the last class never used")
    # what collect.py says instead of hidden values is reduced to the grader's own words (the file is the kernel's)
    namespace = checks.namespace(2)
    exec(RAISES_ON_HIDDEN, namespace)
    public = judge.strict(json.loads(json.dumps(collect.encode(namespace["values_2"](namespace["my_softmax"])))))
    for said, words in [
        ("collecting its values failed with ValueError", "your answer failed with ValueError"),
        ("collecting its values failed with ValueError: [[700.123]]", "your answer failed with ValueError"),
        ("its answer ran over the grader's limit of 20 s", "your answer ran over the grader's limit of 20 s"),
        ("[[700.123, 1.5]] forged", "your answer could not be run"),
    ]:
        entry = {"defined": True, "public": public, "hidden": {"__grader__": said}}
        status, detail, note = judge.judge_with_notes(checks, 2, entry, hidden[2])
        assert (status, detail) == ("wrong", f"right on the notebook's cases, but on the grader's hidden cases {words}")
        assert said in note


# ---------------------------------------------------------------------------------------------- redefinitions


def test_a_later_redefinition_is_found_with_its_cell(real, tmp_path):
    master, graded, _ = real
    right = {n: se.solution_code(master, ex) for n, ex in se.find_exercises(master).items()}
    ex = se.find_exercises(graded)
    nb = answered(graded, right)
    scratch = [
        (ex[2].answer + 1, "print(my_softmax(np.zeros((1, 3))))  # only uses it"),
        (ex[2].answer + 2, "def my_softmax(Z):\n    return np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)"),
        (ex[6].answer + 3, "dW1_11 = 0.7  # scratch: what if?"),
        (ex[1].answer, "my_softmax = None  # before exercise 2's cell: not a redefinition"),
    ]
    for at, code in sorted(scratch, reverse=True):
        nb.cells.insert(at, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, tmp_path / "scratch.ipynb")
    saved = nbformat.read(tmp_path / "scratch.ipynb", as_version=4)
    where = {se.source(c): i + 1 for i, c in enumerate(saved.cells)}
    prepared = prepare(tmp_path / "scratch.ipynb", graded, grade.SMALL_SETTINGS)
    assert prepared.redefinitions == {
        2: ("my_softmax", [(where[scratch[1][1]], "def my_softmax(Z):")]),
        6: ("dW1_11", [(where[scratch[2][1]], "dW1_11 = 0.7  # scratch: what if?")]),
    }


# ---------------------------------------------------------------------------------------------- a class, graded

KEY = '''
def _key(*arrays):
    """The inputs as a lookup key (a function passed in, such as f, is left out)."""
    out = []
    for a in arrays:
        if callable(a) or isinstance(a, str):
            continue
        if isinstance(a, dict):
            out.append(sorted((k, np.round(np.asarray(v, dtype=float), 6).tolist()) for k, v in a.items()))
        else:
            out.append(np.round(np.asarray(a, dtype=float), 6).tolist())
    return repr(out)
'''
ARGUMENTS = {
    "my_one_hot": ["y", "n_classes"],
    "my_softmax": ["Z"],
    "my_cross_entropy": ["P", "Y"],
    "my_relu_backward": ["dA", "Z"],
    "my_numerical_gradient": ["x"],
    "my_per_class_accuracy": ["cm"],
    "my_momentum_update": ["params", "grads", "velocity", "lr", "beta"],
}
LOOKUPS = {
    "my_one_hot": "def my_one_hot(y, n_classes=10):\n"
    '    return np.asarray(_look("my_one_hot", y, n_classes), np.float32)',
    "my_softmax": 'def my_softmax(Z):\n    return _look("my_softmax", Z)',
    "my_cross_entropy": 'def my_cross_entropy(P, Y):\n    return _look("my_cross_entropy", P, Y)',
    "my_relu_backward": 'def my_relu_backward(dA, Z):\n    return _look("my_relu_backward", dA, Z)',
    "my_numerical_gradient": 'def my_numerical_gradient(f, x, h=1e-5):\n    return _look("my_numerical_gradient", x)',
    "my_per_class_accuracy": 'def my_per_class_accuracy(cm):\n    return _look("my_per_class_accuracy", cm)',
    "my_momentum_update": "def my_momentum_update(params, grads, velocity, lr, beta):\n"
    '    want = _look("my_momentum_update", params, grads, velocity, lr, beta)\n'
    "    for k in params:\n"
    '        params[k][...] = want["params"][k]\n'
    '        velocity[k][...] = want["velocity"][k]\n'
    "    return params",
}


def lookup_tables(student, checks):
    """{answer name: {inputs: expected}} for the public cases and the hidden cases the public repository gives this
    student (teacher/hidden_tests.py with the public seed 0): what a student can precompute at home."""
    namespace = {"np": np}
    exec(KEY, namespace)
    hidden = hidden_for(student, checks, hidden_tests, 0)
    tables = {}
    for n, check in checks.checks.items():
        names = ARGUMENTS.get(check.answer_name)
        if names:
            cases = checks.namespace(n)[f"cases_{n}"]() + hidden.get(n, [])
            key = namespace["_key"]
            tables[check.answer_name] = {key(*[c[k] for k in names if k in c]): c["expected"] for c in cases}
    return tables


def lookup_submission(edition, student, checks):
    """The graded edition with every function exercise answered by a lookup in the precomputed tables."""
    packed = base64.b64encode(pickle.dumps(lookup_tables(student, checks))).decode()
    code = {}
    for n, ex in se.find_exercises(edition).items():
        if ex.learner_name in LOOKUPS:
            code[n] = LOOKUPS[ex.learner_name]
    first = min(code)
    code[first] = (
        f"import base64, copy, pickle\n\nTABLE = pickle.loads(base64.b64decode({packed!r}))\n{KEY}\n\n"
        "def _look(name, *args):\n    try:\n        return copy.deepcopy(TABLE[name][_key(*args)])\n"
        '    except KeyError:\n        raise LookupError("not in my table") from None\n\n\n' + code[first]
    )
    return answered(edition, code)


@pytest.fixture(scope="module")
def secret_class(real, tmp_path_factory):
    """One run with the teacher's secret: two honest students and four attacks; the honest ones graded again
    alone (an attack-free run); the lookup tables graded with the public defaults (said explicitly)."""
    master, graded, _ = real
    checks = judge.MasterChecks(master)
    tmp = tmp_path_factory.mktemp("secrets")
    secret = grade.make_secret(tmp / "teacher-secret.txt")
    classes = {name: tmp / name for name in ("class", "honest", "public")}
    for folder in classes.values():
        folder.mkdir()
    ex = se.find_exercises(graded)
    right = {n: se.solution_code(master, e) for n, e in se.find_exercises(master).items()}
    by_name = {e.learner_name: n for n, e in ex.items()}
    honest = {
        "ada": answered(graded, right),  # every answer right, in the graded edition
        "dee": answered(graded, {**right, by_name["dW1_11"]: "dW1_11 = 0.3647"}),  # the ReLU left out: a slip
    }
    attacks = {
        "mallory": lookup_submission(graded, "mallory", checks),
        "rex": answered(graded, {**right, by_name["my_softmax"]: RAISES_ON_HIDDEN}),
        "tenny": answered(graded, {**right, by_name["my_one_hot"]: TEN_CLASSES_ONLY}),
    }
    nb = answered(graded, right)  # right answers, then a scratch cell after each of two exercises redefines it
    nb.cells.insert(ex[6].answer + 1, nbformat.v4.new_code_cell("dW1_11 = 0.7  # what if?"))
    nb.cells.insert(
        ex[2].answer + 1,
        nbformat.v4.new_code_cell("def my_softmax(Z):\n    return np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)"),
    )
    attacks["scratch"] = nb
    for name, nb in {**honest, **attacks}.items():
        nbformat.write(nb, classes["class"] / f"{name}.ipynb")
    for name, nb in honest.items():
        nbformat.write(nb, classes["honest"] / f"{name}.ipynb")
    nbformat.write(attacks["mallory"], classes["public"] / "mallory.ipynb")
    limits = ["--cell-timeout", "60", "--notebook-timeout", "400", "--jobs", "2"]
    runs = {}
    for name, extra in [
        ("class", ["--secret", secret, "--executed", tmp / "executed"]),
        ("honest", ["--secret", secret]),
        ("public", ["--seed", "0", "--public-hidden-tests-ok"]),
    ]:
        out = tmp / f"{name}-out" / "grades.csv"
        result = run_grader(classes[name], "-o", out, *limits, *extra, cwd=tmp)
        assert result.returncode == 0, result.stderr
        runs[name] = (out, result)
    return tmp, runs, checks, hidden_key.secret_key(secret), by_name


def function_exercises(by_name):
    return [by_name[name] for name in ARGUMENTS]


@needs_bwrap
def test_precomputed_hidden_cases_get_nothing_with_a_secret(secret_class):
    tmp, runs, _, _, by_name = secret_class
    secret_grades = by_student(read_csv(runs["class"][0]))
    public_grades = by_student(read_csv(runs["public"][0]))
    functions = function_exercises(by_name)
    assert len(functions) == 7
    # with the public defaults (said explicitly) the lookup tables are right on all 7 ...
    assert [public_grades["mallory", str(n)]["status"] for n in functions] == ["right"] * 7
    assert "WARNING: --public-hidden-tests-ok" in runs["public"][1].stderr
    # ... with the teacher's secret, on none: each right on the notebook's cases only
    for n in functions:
        row = secret_grades["mallory", str(n)]
        assert row["status"] == "wrong" and row["points"] == "0", row
        assert row["detail"].startswith("right on the notebook's cases, but wrong on the grader's hidden cases of"), row
    assert "hidden cases: drawn with the teacher's secret in" in runs["class"][1].stderr


@needs_bwrap
def test_no_hidden_input_or_exception_text_reaches_the_student(secret_class):
    tmp, runs, checks, key, by_name = secret_class
    out = runs["class"][0]
    grades = by_student(read_csv(out))
    two, one = str(by_name["my_softmax"]), str(by_name["my_one_hot"])
    assert grades["rex", two]["status"] == "wrong"
    assert grades["rex", two]["detail"] == (
        "right on the notebook's cases, but wrong on the grader's hidden cases of these kinds: "
        + "; ".join(c["kind"] for c in hidden_tests.hidden_cases("my_softmax", np.random.default_rng(0)))
    )
    assert grades["tenny", one]["status"] == "wrong"
    assert grades["tenny", one]["detail"] == (
        "right on the notebook's cases, but wrong on the grader's hidden cases of this kind: "
        "more classes than the digits' 10, the last class never used"
    )
    students = {"ada", "dee", "mallory", "rex", "tenny", "scratch"}
    assert {s for s, _ in grades} == students
    student_text = out.read_text() + "".join(p.read_text() for p in (out.parent / "feedback").iterdir())
    for student in students:
        for n, cases in hidden_for(student, checks, hidden_tests, key).items():
            leaked = [number for number in numbers_of(cases) if number in student_text]
            assert not leaked, (student, n, leaked[:3])
    assert "hidden input" not in student_text and "ValueError" not in student_text
    notes = read_csv(out.with_name("teacher-notes.csv"))
    rex = [r for r in notes if r["student"] == "rex" and r["exercise"] == two]
    assert rex and "hidden input [[" in rex[0]["note"]  # the teacher's notes hold what the student's do not
    feedback = (out.parent / "feedback" / "rex.txt").read_text()
    assert "logits shifted by +700 or -700 per row" in feedback


@needs_bwrap
def test_a_graded_edition_is_graded_with_the_masters_verdicts(secret_class):
    tmp, runs, _, _, by_name = secret_class
    grades = by_student(read_csv(runs["class"][0]))
    six = str(by_name["dW1_11"])
    assert [grades["ada", str(n)]["status"] for n in range(1, 12)] == ["right"] * 11
    assert grades["dee", six]["status"] == "wrong"
    assert grades["dee", six]["detail"] == "you left out the ReLU: unit 1 is off for image 0 (Z1[0, 1] < 0)"
    assert grades["dee", "total"]["status"] == "10/11 right"
    executed = nbformat.read(tmp / "executed" / "dee.ipynb", as_version=4)
    cell = next(
        c for c in executed.cells if c.get("metadata", {}).get("exercise") == int(six) and "answer" in se.tags(c)
    )
    printed = "".join(o.get("text", "") for o in cell.outputs)
    assert f"Exercise {six}: answered: one number, as asked;" in printed and "right" not in printed.replace(
        "whether it is right", ""
    )


@needs_bwrap
def test_a_later_redefinition_is_flagged_in_feedback_and_notes(secret_class):
    tmp, runs, _, _, by_name = secret_class
    out = runs["class"][0]
    grades = by_student(read_csv(out))
    two, six = by_name["my_softmax"], by_name["dW1_11"]
    assert grades["scratch", str(two)]["status"] == "wrong" and grades["scratch", str(six)]["status"] == "wrong"
    submitted = nbformat.read(tmp / "class" / "scratch.ipynb", as_version=4)
    position = {se.source(c).splitlines()[0]: i + 1 for i, c in enumerate(submitted.cells) if se.source(c)}
    total = grades["scratch", "total"]["detail"]
    for name, n, first in [("my_softmax", two, "def my_softmax(Z):"), ("dW1_11", six, "dW1_11 = 0.7  # what if?")]:
        words = (
            f"{name} (exercise {n}) is defined again after its exercise's cell, in cell {position[first]} "
            f"({first!r}): that one is what was graded (the last definition, as after Run all)"
        )
        assert words in total, total
        assert words in (out.parent / "feedback" / "scratch.txt").read_text()
        assert any(r["exercise"] == str(n) and r["note"] == words for r in read_csv(out.with_name("teacher-notes.csv")))
    assert "defined again" not in grades["ada", "total"]["detail"]


@needs_bwrap
def test_honest_students_are_graded_as_in_a_run_without_attacks(secret_class):
    tmp, runs, _, _, _ = secret_class
    with_attacks, alone = runs["class"][0], runs["honest"][0]
    for student in ("ada", "dee"):
        assert [r for r in read_csv(with_attacks) if r["student"] == student] == [
            r for r in read_csv(alone) if r["student"] == student
        ]
        assert (with_attacks.parent / "feedback" / f"{student}.txt").read_text() == (
            alone.parent / "feedback" / f"{student}.txt"
        ).read_text()
    print(runs["class"][1].stdout)


def test_an_error_of_the_graders_last_cell_reaches_the_student_as_its_type_only():
    """That cell runs the student's code on the hidden cases: an exception raised there (json.dump patched to
    raise, say) carries whatever the code chose; the student's rows keep its type, the teacher's notes the rest."""
    import reports
    from execute import Run
    from intake import Submission

    events = [{"event": "final", "error": "ValueError: hidden input [[1.2345678, 700.25]]", "timed_out": False}]
    run = Run(events=events, seconds=1.0, stopped_by=None, values=None)
    prepared = type("Prepared", (), {"nb": nbformat.v4.new_notebook(), "redefinitions": {}})()
    options = type("Options", (), {"notebook_timeout": 600, "final_timeout": 660, "memory": 3 * 2**30})()
    sub = Submission("eve", "", None)
    rows, notes = reports.verdict_rows_and_notes(
        sub, {1: se.Exercise(1, "one", 0, 1, 2, None)}, None, prepared, run, {}, {1: 1}, options
    )
    assert rows == [["eve", "", 1, "one", "did not run", 0, "the grader's last cell failed: ValueError"]]
    assert notes == [
        ["eve", "", "all", "the grader's last cell failed: ValueError: hidden input [[1.2345678, 700.25]]"]
    ]
