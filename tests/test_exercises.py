"""The learner's exercises: each comes before the notebook's own version of what it asks, as four cells (task,
folded check, the learner's cell, folded solution); each check says "not attempted yet" for the stub, accepts the
solution written in the notebook and rejects typical wrong answers with a reason that names the mistake, without
using anything the notebook defines later.

The checks follow the interface of /work/CHECKS_API.md: values_N collects data in the kernel, verdict_N (pure,
exec'd from the cells' sources in a fresh namespace, as the grader does) judges it against expected values stored
as numbers or SHA-256 fingerprints; no check or helper holds a working answer to any exercise."""

import ast
import builtins
import contextlib
import io
import re
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from notebook_module import NOTEBOOK, ROOT, is_collapsed, notebook_cells

sys.path.insert(0, str(ROOT / "teacher"))
import student_edition as se  # noqa: E402

CELLS = notebook_cells()
SOURCE = ["".join(cell["source"]) for cell in CELLS]
TASK = re.compile(r"\*\*Exercise (\d+): [^*]+\.\*\*")
# the collapsed solution: its number, its code, then the words that say why
SOLUTION = re.compile(
    r"<details><summary>Solution to exercise (\d+)</summary>\s*```python\n(.*?)```(.*)</details>", re.S
)
TITLE = re.compile(r"# ?@title Check for exercise (\d+): \S")  # Colab's form title (ruff writes "# @title")
# (exercise number, index of its task cell), in notebook order
EXERCISES = [
    (int(match.group(1)), i)
    for i, (cell, text) in enumerate(zip(CELLS, SOURCE))
    if cell["cell_type"] == "markdown" and (match := TASK.match(text))
]
NOT_GIVEN = object()
# exercise number -> {role: cell index}, from the cells' tags (exercise, check, answer, solution, reference)
ROLE = {}
for index, cell in enumerate(CELLS):
    for role in ("exercise", "check", "answer", "solution", "reference"):
        if role in cell["metadata"].get("tags", []):
            ROLE.setdefault(cell["metadata"].get("exercise"), {})[role] = index


def learner_name(n):
    """The name the learner's cell of exercise n defines: my_... or a value such as lr_predictions."""
    for node in ast.parse(SOURCE[ROLE[n]["answer"]]).body:
        if isinstance(node, ast.FunctionDef):
            return node.name
        if isinstance(node, ast.Assign):
            return node.targets[0].id
    raise AssertionError(f"exercise {n}: the learner's cell defines nothing")


NUMBER = {learner_name(n): n for n, _ in EXERCISES}


def solution_code(n):
    """The ```python block of the notebook's collapsed solution to exercise n."""
    return SOLUTION.search(SOURCE[ROLE[n]["solution"]]).group(2)


def code_cell_containing(text):
    """Source of the first code cell of the notebook that contains text."""
    return next(s for c, s in zip(CELLS, SOURCE) if c["cell_type"] == "code" and text in s)


def defines(text):
    """Top-level function names a cell's code defines."""
    try:
        tree = ast.parse(text)
    except SyntaxError:  # IPython magics
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def names_stored(text):
    """Every name a cell's code binds anywhere: assignments, defs, imports, arguments."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
    return out


HELPER = next((i for i, s in enumerate(SOURCE) if "def run_check(" in s), None)
REFERENCES = {  # exercise number -> (index of the notebook's own version, the function it defines)
    n: (roles["reference"], (defines(SOURCE[roles["reference"]]) - {"softmax_naive"}).pop())
    for n, roles in ROLE.items()
    if "reference" in roles
}


@pytest.fixture(scope="module")
def notebook_globals(nb, mnist_small):
    """What the learner's cells read: the notebook's functions, its settings cells, a small slice of MNIST, and
    the notebook's own cells that make the worked example (6.3) and the check network with its references (7.1)."""
    namespace = dict(vars(nb), COMMAND_LINE={})
    for cell, text in zip(CELLS, SOURCE):
        tags = cell["metadata"].get("tags", [])
        if "parameters" in tags or "settings" in tags:
            exec(text, namespace)
    X_train, y_train, X_dev, y_dev = mnist_small
    namespace.update(X_train=X_train, y_train=y_train, X_dev=X_dev, y_dev=y_dev)
    for marker in ("ex_params = {", "check_params = init_params(", "reference = {  # gradient name"):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(code_cell_containing(marker), namespace)
    for roles in ROLE.values():  # the checks as the kernel runs them (exercise 8's also stores its arrays)
        exec(SOURCE[roles["check"]], namespace)
    return namespace


def run_exercise(notebook_globals, n, answer=NOT_GIVEN, solution=False):
    """Run exercise n's learner cell as written (the stub), with the notebook's solution, or with `answer`.

    Returns what its last line, the call of the check, records in EXERCISE_RESULTS[n]: None, False or True.
    """
    namespace = dict(notebook_globals)
    *setup, call = ast.parse(SOURCE[ROLE[n]["answer"]]).body
    exec(compile(ast.Module(body=setup, type_ignores=[]), f"exercise {n}", "exec"), namespace)
    if solution:
        exec(solution_code(n), namespace)
    if answer is not NOT_GIVEN:
        namespace[learner_name(n)] = answer
    results = namespace["run_check"].__globals__["EXERCISE_RESULTS"]
    results.pop(n, None)
    shown = eval(compile(ast.Expression(body=call.value), f"exercise {n}", "eval"), namespace)
    assert shown is None, f"exercise {n}'s cell shows {shown!r} under its verdict line"
    return results[n]


# Typical wrong answers, each with a word its verdict must contain.


def one_hot_as_wide_as_the_labels(y, n_classes=10):
    return np.eye(int(y.max()) + 1, dtype=np.float32)[y]


def one_hot_whole_columns(y, n_classes=10):
    Y = np.zeros((len(y), n_classes), dtype=np.float32)
    Y[:, y] = 1
    return Y


def one_hot_float64(y, n_classes=10):
    return np.eye(n_classes)[y]


def softmax_naive(Z):
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def softmax_batch_max(Z):
    E = np.exp(Z - Z.max())
    return E / E.sum(axis=1, keepdims=True)


def softmax_over_columns(Z):
    E = np.exp(Z - Z.max(axis=0))
    return E / E.sum(axis=0)


def softmax_in_place(Z):
    Z -= Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def cross_entropy_sum(P, Y):
    return float(-np.sum(Y * np.log(np.maximum(P, 1e-300))))


def cross_entropy_mean_of_entries(P, Y):
    return float(-np.mean(Y * np.log(np.maximum(P, 1e-300))))


def cross_entropy_naive_log(P, Y):
    return float(-np.sum(Y * np.log(P)) / len(P))


def cross_entropy_right_class_only(P, Y):
    return float(-np.mean(np.log(np.sum(P * Y, axis=1))))


def cross_entropy_per_example(P, Y):
    return -np.sum(Y * np.log(np.maximum(P, 1e-300)), axis=1)


def numerical_gradient_one_sided(f, x, h=1e-5):
    grad, f_x = np.zeros_like(x), f()
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        grad[idx] = (f() - f_x) / h
        x[idx] = old
    return grad


def numerical_gradient_large_h(f, x, h=1e-2):
    """A right centred difference, with the default h changed to 1e-2: its error is of the order of 1e-5."""
    return centred_difference_with(lambda difference, h: difference / (2 * h))(f, x, h)


def centred_difference_with(divide):
    """A centred difference whose last step, divide(f_plus - f_minus, h), is a learner's slip."""

    def numerical_gradient(f, x, h=1e-5):
        grad = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            old = x[idx]
            x[idx] = old + h
            f_plus = f()
            x[idx] = old - h
            f_minus = f()
            x[idx] = old
            grad[idx] = divide(f_plus - f_minus, h)
        return grad

    return numerical_gradient


numerical_gradient_times_h = centred_difference_with(lambda diff, h: diff / 2 * h)  # "/ 2 * h"
numerical_gradient_over_h = centred_difference_with(lambda diff, h: diff / h)  # twice too large


def numerical_gradient_of_a_copy(f, x, h=1e-5):
    """Right centred differences, but nudging a copy of x, which f never reads."""
    return centred_difference_with(lambda diff, h: diff / (2 * h))(f, x.copy(), h)


def numerical_gradient_not_restored(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        x[idx] += h
        f_plus = f()
        x[idx] -= 2 * h
        f_minus = f()
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def momentum_averaged(params, grads, velocity, lr, beta):
    for k in params:
        velocity[k] = beta * velocity[k] + (1 - beta) * grads[k]
        params[k] -= lr * velocity[k]
    return params


def momentum_lr_in_velocity(params, grads, velocity, lr, beta):
    """The learning rate folded into the velocity: on a case with lr = 1 - beta it looks like the averaged form."""
    for k in params:
        velocity[k] = beta * velocity[k] + lr * grads[k]
        params[k] -= velocity[k]
    return params


def momentum_old_velocity(params, grads, velocity, lr, beta):
    for k in params:
        params[k] -= lr * velocity[k]
        velocity[k] = beta * velocity[k] + grads[k]
    return params


def momentum_velocity_not_stored(params, grads, velocity, lr, beta):
    for k in params:
        v = beta * velocity[k] + grads[k]
        params[k] -= lr * v
    return params


def momentum_new_dict(params, grads, velocity, lr, beta):
    for k in params:
        velocity[k] = beta * velocity[k] + grads[k]
    return {k: params[k] - lr * velocity[k] for k in params}


def raises(*args):
    raise ValueError("something went wrong")


def softmax_without_keepdims(Z):
    E = np.exp(Z - Z.max(axis=1))
    return E / E.sum(axis=1)


def one_hot_transposed(y, n_classes=10):
    return np.eye(n_classes, dtype=np.float32)[y].T


def softmax_float16(Z):
    E = np.exp((Z - Z.max(axis=1, keepdims=True)).astype(np.float16))
    return E / E.sum(axis=1, keepdims=True)


def numerical_gradient_rows_and_columns(f, x, h=1e-5):
    """Handles only 2-D x: raises IndexError for a 1-D x (section 7.1's b1 and b2)."""
    grad = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            old = x[i, j]
            x[i, j] = old + h
            f_plus = f()
            x[i, j] = old - h
            f_minus = f()
            x[i, j] = old
            grad[i, j] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_flat_rows(f, x, h=1e-5):
    """Treats x as rows and columns whatever its shape: wrong for a 3-D x (nudges whole slices)."""
    x2 = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(1, -1)
    grad = np.zeros_like(x2)
    for i in range(x2.shape[0]):
        for j in range(min(x2.shape[1], x.shape[-1])):
            idx = (i, j) if x.ndim != 1 else (j,)
            old = x[idx].copy() if x.ndim > 2 else x[idx]
            x[idx] = old + h
            f_plus = f()
            x[idx] = old - h
            f_minus = f()
            x[idx] = old
            grad[i, j] = (f_plus - f_minus) / (2 * h)
    return grad.reshape(x.shape)


def per_class_accuracy_integer_division(cm):
    return np.diag(cm) // np.maximum(cm.sum(axis=1), 1)


def momentum_plain_sgd(params, grads, velocity, lr, beta):
    for k in params:
        velocity[k][...] = grads[k]
        params[k] -= lr * velocity[k]
    return params


SHAPES = {"dW2": (128, 10), "dA1": (5, 128), "dW1": (784, 128), "db1": (128,)}


WRONG = {
    "my_one_hot": [
        (one_hot_as_wide_as_the_labels, "n_classes"),
        (one_hot_whole_columns, "whole columns"),
        (one_hot_float64, "float32"),
        (one_hot_transposed, "transposed"),
        (raises, "your function raised ValueError: something went wrong"),
    ],
    "my_softmax": [
        (softmax_naive, "overflows"),
        (softmax_batch_max, "whole batch"),
        (softmax_over_columns, "columns sum to 1"),
        (softmax_in_place, "in place"),
        (softmax_without_keepdims, "add keepdims=True"),
        (lambda Z: np.full_like(Z, 1 / Z.shape[1]), "differ from softmax"),
        (softmax_float16, "float16"),
    ],
    "predicted_shapes": [
        ({**SHAPES, "dW2": (10, 128)}, "swapped"),
        ({**SHAPES, "dW1": (5, 128)}, "X transposed (784, m)"),
        ({**SHAPES, "db1": (5, 128)}, "a sum over the rows"),
        ({**SHAPES, "dA1": None}, "no prediction for dA1"),
        ({**SHAPES, "dA1": "(5, 128)"}, "a tuple of whole numbers"),
        ({**SHAPES, "db1": 128}, "needs a comma, (128,)"),  # (128) typed for the one-entry tuple (128,)
    ],
    "my_cross_entropy": [
        (cross_entropy_sum, "the sum"),
        (cross_entropy_mean_of_entries, "all m * k entries"),
        (cross_entropy_naive_log, "0 * (-inf) = nan"),
        (cross_entropy_right_class_only, "log(0) = -inf"),
        (cross_entropy_per_example, "not one number"),
        # the tutorials' log(P + eps): accepted before, it caps the loss (section 7's check then fails, train's
        # divergence guard never fires)
        (lambda P, Y: -np.mean(np.sum(Y * np.log(P + 1e-7), axis=1)), "caps the loss"),
        (lambda P, Y: -np.mean(np.sum(Y * np.log(P + 1e-8), axis=1)), "caps the loss"),
        (lambda P, Y: -np.mean(np.sum(Y * np.log(P + 1e-6), axis=1)), "added"),
        (lambda P, Y: -np.mean(np.sum(Y * np.log(np.clip(P, 1e-10, 1)), axis=1)), "a floor above the 1e-12"),
    ],
    "my_relu_backward": [
        (lambda dA, Z: dA * (Z >= 0), "exactly 0"),
        (lambda dA, Z: np.maximum(dA, 0), "decided by Z"),
        (lambda dA, Z: dA * np.maximum(Z, 0), "ReLU(Z) itself"),
        (lambda dA, Z: dA * (Z < 0), "inverted"),
        (lambda dA, Z: dA, "unchanged"),
        (lambda dA, Z: np.multiply(dA, Z > 0, out=dA), "in place"),
    ],
    "dW1_11": [
        (0.3647, "left out the ReLU"),
        (0.1745, "times too small"),
        (-0.3491, "sign"),
        (1.3963, "dW1[2, 1]"),
        (-0.4862, "dW1[1, 0]"),
        (0.5, "is not dW1[1, 1]"),
        ("0.3491", "one number"),
    ],
    "my_numerical_gradient": [
        (numerical_gradient_one_sided, "one-sided"),
        (numerical_gradient_large_h, "an h far larger than the default 1e-5"),
        (numerical_gradient_over_h, "divide by 2h"),
        (numerical_gradient_times_h, "multiplies by h instead of dividing"),  # (f_plus - f_minus) / 2 * h
        (numerical_gradient_of_a_copy, "not a copy"),
        (numerical_gradient_not_restored, "put every nudged entry back"),
        (numerical_gradient_rows_and_columns, "any shape"),
        (numerical_gradient_flat_rows, "any shape"),
    ],
    "first_wrong": [
        ("Z1", "computed from an earlier gradient that already disagrees"),
        ("dW1", "computed from an earlier gradient that already disagrees"),
        ("W2", "agrees with its numerical reference"),
        ("X", "not one of backward's gradients"),
        (3, "as a string"),
    ],
    "lr_predictions": [
        ({0.05: "better", 1.5: "worse", 5.0: "diverges"}, "at 0.05 you predicted 'better'"),
        ({0.05: "worse", 1.5: "diverges", 5.0: "diverges"}, "at 1.5 you predicted 'diverges'"),
        ({0.05: "worse", 1.5: "worse", 5.0: "worse"}, "at 5.0 you predicted 'worse'"),
        ({0.05: "slower", 1.5: "worse", 5.0: "diverges"}, "use one of"),
    ],
    "my_per_class_accuracy": [
        (lambda cm: np.diag(cm) / cm.sum(axis=0), "column sums"),
        (lambda cm: np.diag(cm) / cm.sum(), "total number"),
        (lambda cm: np.diag(cm) / cm.sum(axis=1), "no examples"),
        (lambda cm: np.trace(cm) / cm.sum(), "overall accuracy"),
        (per_class_accuracy_integer_division, "integer division"),
    ],
    "my_momentum_update": [
        (momentum_averaged, "averaged form"),
        (momentum_lr_in_velocity, "lr scales only the parameters' step"),
        (momentum_old_velocity, "old velocity"),
        (momentum_velocity_not_stored, "velocity you were given did not change"),
        (momentum_new_dict, "in place"),
        (momentum_plain_sgd, "plain SGD"),
    ],
}


def test_at_least_eight_exercises_numbered_in_notebook_order():
    numbers = [n for n, _ in EXERCISES]
    assert len(numbers) >= 8
    assert numbers == list(range(1, len(numbers) + 1))


def test_every_exercise_has_typical_wrong_answers_to_reject():
    assert set(NUMBER) == set(WRONG)


def test_at_least_four_exercises_are_not_write_this_function():
    values = [n for n, name in ((n, learner_name(n)) for n, _ in EXERCISES) if not name.startswith("my_")]
    assert len(values) >= 4, values


def test_a_collapsed_helper_cell_comes_before_the_first_exercise():
    assert HELPER is not None and HELPER < EXERCISES[0][1] and is_collapsed(CELLS[HELPER])
    assert CELLS[HELPER - 1]["cell_type"] == "markdown", "a few words on how the exercises work"


@pytest.mark.parametrize("n, start", EXERCISES)
def test_exercise_cells_task_check_learner_solution(n, start):
    roles = ROLE[n]
    assert roles["exercise"] == start and roles["check"] == start + 1 and roles["solution"] == roles["answer"] + 1
    between = CELLS[start + 2 : roles["answer"]]  # exercise 8 runs the gradient check in a cell of its own here
    assert all(c["cell_type"] == "code" and not is_collapsed(c) and not c["metadata"].get("tags") for c in between)
    task, check, learner, solution = (CELLS[roles[r]] for r in ("exercise", "check", "answer", "solution"))
    assert task["cell_type"] == "markdown"
    assert "<details><summary>Hint</summary>" in SOURCE[start] and "*Hint:*" in SOURCE[start]
    assert check["cell_type"] == "code" and is_collapsed(check), "the check is a collapsed (hidden) code cell"
    assert TITLE.match(SOURCE[start + 1]).group(1) == str(n)
    assert learner["cell_type"] == "code" and not learner["metadata"].get("jupyter", {}).get("source_hidden")
    assert solution["cell_type"] == "markdown"
    match = SOLUTION.search(SOURCE[roles["solution"]])
    assert match and match.group(1) == str(n) and match.group(3).strip(), "collapsed solution, code, then why"
    defined = ast.parse(match.group(2)).body[0]
    assert (defined.name if isinstance(defined, ast.FunctionDef) else defined.targets[0].id) == learner_name(n)
    assert all(cell["metadata"].get("exercise") == n for cell in (task, check, learner, solution))


@pytest.mark.parametrize("n, start", EXERCISES)
def test_the_answer_is_not_in_view_before_the_exercise(n, start):
    """No visible code above the exercise holds its solution's code; a function's own version comes after it."""
    solution = solution_code(n)
    lines = [line.split("#")[0].strip() for line in solution.splitlines()]
    lines = [line for line in lines if len(line) > 12 and re.search(r"[-+*/@=]", line) and not line.startswith('"""')]
    above = "\n".join(
        s for c, s in zip(CELLS[:start], SOURCE[:start]) if c["cell_type"] == "code" and not is_collapsed(c)
    )
    assert not [line for line in lines if line in above]
    name = learner_name(n)
    if name.startswith("my_"):
        index, function = REFERENCES[n]
        assert function == name.removeprefix("my_") and index > start + 3, "the notebook's own version follows"
        assert not is_collapsed(CELLS[index]), "the notebook's own version is in plain view"
        assert not any(function in defines(s) for s in SOURCE[:start]), f"{function} is defined above exercise {n}"


def test_checks_use_none_of_the_functions_the_exercises_ask_for():
    """So that the checks also work where those functions are the learner's own (the student edition)."""
    asked = {function for _, function in REFERENCES.values()}
    for n, _ in EXERCISES:
        used = {node.id for node in ast.walk(ast.parse(SOURCE[ROLE[n]["check"]])) if isinstance(node, ast.Name)}
        assert not used & asked, f"the check of exercise {n} uses {used & asked}"


def test_every_check_and_answer_needs_only_what_comes_before_the_first_exercise():
    """The student edition skips the lesson's cells until the exercise they need is right; the checks and the
    learner's cells must still run there, so they use only names defined before the first exercise's own version
    (or by the exercises' own cells)."""
    first_reference = min(index for index, _ in REFERENCES.values())
    known = set(dir(builtins)) | {"get_ipython", "display"}
    for i in range(first_reference):
        if CELLS[i]["cell_type"] == "code":
            known |= names_stored(SOURCE[i])
    for roles in ROLE.values():
        for role in ("check", "answer"):
            if role in roles:
                known |= names_stored(SOURCE[roles[role]])
    for n, roles in ROLE.items():
        for role in ("check", "answer"):
            tree = ast.parse(SOURCE[roles[role]])
            used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
            assert not used - known, f"exercise {n}'s {role} cell uses {used - known}"


def test_exercise_6_is_about_the_worked_example_as_printed(notebook_globals):
    answer = float(re.search(r"dW1_11 = (-?[\d.]+)", solution_code(6)).group(1))
    assert round(float(notebook_globals["ex_grads"]["W1"][1, 1]), 4) == answer


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_check_says_not_attempted_for_the_stub(notebook_globals, n, capsys):
    assert run_exercise(notebook_globals, n) is None
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith(f"Exercise {n}: not attempted yet"), out


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_check_accepts_the_notebooks_solution(notebook_globals, n, capsys):
    assert run_exercise(notebook_globals, n, solution=True) is True, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith(f"Exercise {n}: right: "), out
    assert notebook_globals["EXERCISE_RESULTS"] is not None


@pytest.mark.parametrize(
    "name, answer, reason",
    [(name, answer, reason) for name, answers in WRONG.items() for answer, reason in answers],
    ids=[f"{name}-{i}" for name, answers in WRONG.items() for i in range(len(answers))],
)
def test_check_rejects_a_typical_wrong_answer_and_says_why(notebook_globals, name, answer, reason, capsys):
    n = NUMBER[name]
    assert run_exercise(notebook_globals, n, answer=answer) is False
    out = capsys.readouterr().out
    verdict = out.splitlines()[-1]  # the learner's cell may print before its check (exercise 8's comparison)
    assert verdict.startswith(f"Exercise {n}: wrong: ") and reason in verdict, out


def test_not_implemented_error_also_counts_as_not_attempted(notebook_globals, capsys):
    def not_yet(*args):
        raise NotImplementedError

    assert run_exercise(notebook_globals, 1, answer=not_yet) is None
    assert "not attempted yet" in capsys.readouterr().out


def test_every_verdict_is_recorded_for_the_grader(notebook_globals, capsys):
    results = notebook_globals["EXERCISE_RESULTS"]
    run_exercise(notebook_globals, 2, answer=softmax_naive)
    assert results[2] is False
    run_exercise(notebook_globals, 2, solution=True)
    assert results[2] is True
    run_exercise(notebook_globals, 2)
    assert results[2] is None


# The check interface: values in the kernel, a pure verdict outside it (see the grader), nothing to copy from.

FUNCTION_EXERCISES = [n for n, _ in EXERCISES if learner_name(n).startswith("my_")]


def is_plain(value):
    """True for the data values_N may return: None, bool, int, float, str, lists/dicts of them, numeric arrays."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def through_json(value):
    """value as the grader carries it out of the kernel: arrays as lists with their dtype, read back as arrays."""
    if isinstance(value, np.ndarray):
        return np.array(value.tolist(), dtype=value.dtype.name)
    if isinstance(value, list):
        return [through_json(v) for v in value]
    if isinstance(value, dict):
        return {k: through_json(v) for k, v in value.items()}
    return value


def fresh_verdict(n, values, cases=None):
    """verdict_n exec'd from the helper's and the check's sources in a namespace holding only np, as the grader does."""
    namespace = {"np": np}
    exec(SOURCE[HELPER], namespace)
    exec(SOURCE[ROLE[n]["check"]], namespace)
    return namespace[f"verdict_{n}"](values, cases)


def kernel_values(notebook_globals, n, answer, cases=None):
    """values_n(answer) as the learner's kernel computes it."""
    with np.errstate(all="ignore"):
        return notebook_globals[f"values_{n}"](answer, cases)


def solution_answer(notebook_globals, n):
    """The notebook's solution to exercise n: the function or value its solution code defines."""
    namespace = dict(notebook_globals)
    exec(solution_code(n), namespace)
    return namespace[learner_name(n)]


ANSWERS = [(NUMBER[name], answer, reason) for name, answers in WRONG.items() for answer, reason in answers]


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_every_check_cell_has_the_interface(notebook_globals, n):
    names = defines(SOURCE[ROLE[n]["check"]])
    assert {f"cases_{n}", f"values_{n}", f"verdict_{n}"} <= names
    assert notebook_globals[f"ANSWER_NAME_{n}"] == learner_name(n)
    cases = notebook_globals[f"cases_{n}"]()
    assert isinstance(cases, list) and all("expected" in case for case in cases)
    assert bool(cases) == learner_name(n).startswith("my_"), "function exercises have public cases, values none"


@pytest.mark.parametrize(
    "n, answer, reason",
    [(n, None, "right") for n, _ in EXERCISES] + ANSWERS,
    ids=[f"{n}-solution" for n, _ in EXERCISES] + [f"{n}-wrong-{i}" for i, (n, _, _) in enumerate(ANSWERS)],
)
def test_the_verdict_outside_the_kernel_is_the_kernels(notebook_globals, n, answer, reason, capsys):
    """values_N gives plain data; verdict_N exec'd alone from the cells' sources judges it as the kernel's check."""
    if reason == "right":
        answer = solution_answer(notebook_globals, n)
    values = kernel_values(notebook_globals, n, answer)
    assert is_plain(values), values
    status, why = fresh_verdict(n, through_json(values))
    assert status == ("right" if reason == "right" else "wrong"), why
    assert reason == "right" or reason in why, why
    run_exercise(notebook_globals, n, answer=answer)
    assert capsys.readouterr().out.splitlines()[-1] == f"Exercise {n}: {status}: {why}"


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_the_verdict_of_the_stub_is_not_attempted(notebook_globals, n):
    stub = dict(notebook_globals)
    exec(
        compile(ast.Module(body=ast.parse(SOURCE[ROLE[n]["answer"]]).body[:-1], type_ignores=[]), "stub", "exec"), stub
    )
    values = kernel_values(notebook_globals, n, stub[learner_name(n)]) if stub[learner_name(n)] is not None else {}
    assert fresh_verdict(n, through_json(values or {"not_attempted": True}))[0] == "not attempted"


def hidden_cases(nb, n, rng):
    """New cases with the public cases' keys, "expected" from the notebook's own functions (as the grader's are)."""
    if n == 1:
        return [{"y": y, "n_classes": 12, "expected": nb.one_hot(y, 12)} for y in (rng.integers(0, 12, size=9),)]
    if n == 2:
        Z = 5 * rng.standard_normal((6, 7))
        return [{"Z": Z, "expected": nb.softmax(Z)}]
    if n == 4:
        E = np.exp(rng.standard_normal((9, 6)))
        P, Y = E / E.sum(axis=1, keepdims=True), nb.one_hot(rng.integers(0, 6, size=9), 6).astype(np.float64)
        return [{"P": P, "Y": Y, "expected": nb.cross_entropy(P, Y)}]
    if n == 5:
        dA, Z = rng.standard_normal((4, 9)), rng.standard_normal((4, 9))
        Z[:, ::3] = 0.0
        return [{"dA": dA, "Z": Z, "expected": nb.relu_backward(dA, Z)}]
    if n == 7:
        x = rng.standard_normal((2, 2, 2, 2))
        return [
            {"f": "sum of sines", "x": x, "h": 1e-5, "expected": np.cos(x)},
            {"f": "log-sum-exp", "x": x[0, 0, 0], "expected": np.exp(x[0, 0, 0]) / np.exp(x[0, 0, 0]).sum()},
        ]
    if n == 10:
        y_true, y_pred = rng.integers(0, 5, size=80), rng.integers(0, 6, size=80)
        cm = nb.confusion_matrix(y_true, y_pred, 6)
        return [{"cm": cm, "expected": nb.per_class_accuracy(cm)}]
    if n == 11:
        p = {"W": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}
        g = {k: rng.standard_normal(v.shape) for k, v in p.items()}
        v = {k: rng.standard_normal(a.shape) for k, a in p.items()}
        p1, v1 = {k: a.copy() for k, a in p.items()}, {k: a.copy() for k, a in v.items()}
        nb.momentum_update(p1, g, v1, 0.2, 0.8)
        return [
            {"params": p, "grads": g, "velocity": v, "lr": 0.2, "beta": 0.8, "expected": {"params": p1, "velocity": v1}}
        ]
    raise AssertionError(n)


@pytest.mark.parametrize("n", FUNCTION_EXERCISES)
def test_hidden_cases_with_the_same_keys_are_judged_too(nb, notebook_globals, n):
    """The grader's hidden tests: new inputs under the public cases' keys, with their own expected values."""
    cases = hidden_cases(nb, n, np.random.default_rng(100 + n))
    assert all(
        set(case) == set(notebook_globals[f"cases_{n}"]()[0]) - ({"h"} if n == 7 else set()) | set(case)
        for case in cases
    )
    right = kernel_values(notebook_globals, n, solution_answer(notebook_globals, n), cases)
    assert fresh_verdict(n, through_json(right), cases)[0] == "right"
    wrong = [answer for answer, _ in WRONG[learner_name(n)] if answer is not raises]
    statuses = [fresh_verdict(n, kernel_values(notebook_globals, n, answer, cases), cases)[0] for answer in wrong]
    # some slips only show on the public edge cases (exercise 4's log(P + eps) needs a right class at probability 0)
    assert statuses.count("right") <= len(wrong) * 2 // 3, statuses


def implementation_lines():
    """Distinctive code lines of the exercises' answers: each solution's and each reference function's lines."""
    out = set()
    for n, _ in EXERCISES:
        texts = [solution_code(n)] + ([SOURCE[ROLE[n]["reference"]]] if "reference" in ROLE[n] else [])
        for text in texts:
            for line in text.splitlines():
                code = line.split("#")[0].strip()
                if len(code) > 12 and re.search(r"[-+*/@=<>]", code) and not code.startswith(('"""', "def ")):
                    out.add(code)
    return out


def test_no_check_or_helper_holds_an_answer():
    """No working implementation of an exercise in the checks: no solution's or reference's line, no log-sum-exp
    softmax, no one-hot builder, no ReLU gradient line, no momentum update, no worked-out dW1[1, 1], no planted
    bug's line or comment, and no answer value written in plain text."""
    forbidden = implementation_lines() | {
        "logaddexp",
        "# the bug",
        "np.arange(len(y))",
        "keepdims=True)",
        "Z > 0",
        "velocity[k] *=",
        "velocity[k] +=",
        "beta * v + g",
        "(P - Y) @",
        "X.T @",
        "0.3491",
        "(784, 128)",
        "(128, 10)",
        '"diverges"}',
    }
    for i in [HELPER] + [ROLE[n]["check"] for n, _ in EXERCISES]:
        code = SOURCE[i]
        found = [text for text in forbidden if text in code]
        assert not found, f"cell {CELLS[i]['id']} holds {found}"


def test_wrong_answers_are_explained_in_words_not_code(notebook_globals):
    """A diagnosis never spells out a line of the answer (e.g. `Z - Z.max(axis=1, keepdims=True)`)."""
    lines = implementation_lines()
    for n, answer, _ in ANSWERS:
        _, why = fresh_verdict(n, kernel_values(notebook_globals, n, answer))
        assert not [line for line in lines if line in why], why
        assert "Z.max(" not in why and "np.arange(" not in why and "[np.arange" not in why, why


def test_exercise_8_names_no_answer_when_wrong(notebook_globals):
    for name, _ in WRONG["first_wrong"]:
        _, why = fresh_verdict(8, kernel_values(notebook_globals, 8, name))
        assert "A1" not in why.replace("dA1", "A1") or why.startswith("'X'"), why


def test_a_float16_softmax_is_told_why_without_contradiction(notebook_globals):
    _, why = fresh_verdict(2, kernel_values(notebook_globals, 2, softmax_float16))
    assert "float16" in why and "precision" in why and "[1. 1." not in why, why


def test_exercise_7_rejects_a_2d_only_gradient_on_1d_and_3d_arrays(notebook_globals):
    shapes = [np.shape(case["x"]) for case in notebook_globals["cases_7"]()]
    assert {1, 2, 3} <= {len(s) for s in shapes}
    for answer in (numerical_gradient_rows_and_columns, numerical_gradient_flat_rows):
        status, why = fresh_verdict(7, kernel_values(notebook_globals, 7, answer))
        assert status == "wrong" and "any shape" in why and "x of shape" in why, why


def test_exercise_8_is_workable_from_its_check_cell_alone():
    """Without any earlier exercise: the check cell's stored arrays, compared as the solution says, give the answer;
    and they are the notebook's backward with the 1/m missing from dA1 (m = 5), against its numerical gradients."""
    namespace = {"np": np}
    exec(SOURCE[HELPER], namespace)
    exec(SOURCE[ROLE[8]["check"]], namespace)
    grads, reference = namespace["bug_grads"], namespace["bug_reference"]
    assert list(grads) == list(reference) == ["Z2", "W2", "b2", "A1", "Z1", "W1", "b1"]
    agree = [name for name in reference if np.allclose(grads[name], reference[name])]
    first = next(name for name in reference if name not in agree)
    assert agree == ["Z2", "W2", "b2"] and first == "A1"
    assert np.allclose(grads["A1"], len(grads["Z2"]) * reference["A1"])
    assert namespace["verdict_8"]({"value": first})[0] == "right"
    assert "backward_with_a_bug" not in SOURCE[ROLE[8]["check"]]


def test_exercise_9_stored_outcomes_hold_when_trained(nb, mnist_small):
    """The outcomes exercise 9's verdict stores are what the notebook's own train gives (1 epoch on 2,000 images),
    on a slice of MNIST with two seeds."""
    X_train, y_train, X_dev, y_dev = mnist_small
    namespace = {"np": np}
    exec(SOURCE[HELPER], namespace)
    exec(SOURCE[ROLE[9]["check"]], namespace)
    for seed in (0, 1):
        runs = {}
        for lr in (0.5, 0.05, 1.5, 5.0):
            settings = dict(hidden_units=128, epochs=1, batch_size=128, lr=lr, seed=seed, progress=False)
            try:
                runs[lr] = nb.train(X_train[:2000], y_train[:2000], X_dev, y_dev, **settings)[1]["val_acc"][-1]
            except FloatingPointError:
                runs[lr] = None
        words = {
            str(lr): "diverges"
            if acc is None
            else "better"
            if acc > runs[0.5] + 0.02
            else "worse"
            if acc < runs[0.5] - 0.02
            else "about the same"
            for lr, acc in runs.items()
            if lr != 0.5
        }
        assert namespace["verdict_9"]({"value": words})[0] == "right", (seed, runs)


def edition_functions(notebook_globals):
    """Every function defined anywhere in the student edition outside the student's own cells (nested ones too),
    compiled from its own source in a namespace with the notebook's names."""
    import nbformat

    master = nbformat.reads(Path(NOTEBOOK).read_text(encoding="utf-8"), as_version=4)
    edition = se.build(master)
    functions = []
    for cell in edition.cells:
        if cell.cell_type != "code" or "answer" in cell.metadata.get("tags", []):
            continue
        try:
            tree = ast.parse(se.python_source(se.source(cell)))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                if isinstance(node, ast.Lambda):
                    node = ast.Expression(body=node)
                    code, mode = compile(node, "edition", "eval"), "eval"
                else:
                    node.decorator_list = []
                    code, mode = compile(ast.Module(body=[node], type_ignores=[]), "edition", "exec"), "exec"
                namespace = dict(notebook_globals)
                try:  # a default argument may name a variable of the enclosing function: not callable alone
                    if mode == "eval":
                        functions.append(eval(code, namespace))
                    else:
                        exec(code, namespace)
                        functions.append(namespace[node.name])
                except NameError:
                    continue
    return functions


class TookTooLong(Exception):
    """A function of the edition that runs on and on with an exercise's inputs: not a right answer either."""


def within_seconds(seconds, call):
    """call() stopped after `seconds` (SIGALRM): its result, or TookTooLong."""

    def stop(signum, frame):
        raise TookTooLong

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_no_function_of_the_edition_is_graded_right(notebook_globals, tmp_path, monkeypatch, capsys):
    """Issue 21's must-show: every function the student edition defines outside the student's cells (checks,
    helper, plumbing, the notebook's own functions, nested ones and lambdas), handed to each exercise's check, is
    never graded right: the edition holds no answer to copy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)  # a function that writes files writes them here
    functions = edition_functions(notebook_globals)
    assert len(functions) > 100
    graded_right = []
    for function in functions:
        for n in [n for n, _ in EXERCISES]:
            try:
                values = within_seconds(10, lambda n=n, f=function: kernel_values(notebook_globals, n, f))
            except (Exception, SystemExit):  # TookTooLong too
                continue
            if fresh_verdict(n, values)[0] == "right":
                graded_right.append((getattr(function, "__name__", "?"), n))
            plt.close("all")
    capsys.readouterr()
    assert not graded_right


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_values_never_raise_and_verdicts_never_crash_on_odd_answers(notebook_globals, n):
    """The grader hands values_N whatever the learner's name holds at the end: None, a number, a string, a dict."""
    for odd in (None, 3, "text", {"a": 1}, {0.05: "worse", "x": None}, [1, 2]):
        values = kernel_values(notebook_globals, n, odd)
        assert is_plain(values), values
        status, why = fresh_verdict(n, through_json(values))
        assert status == ("not attempted" if odd is None else "wrong") and isinstance(why, str), (odd, status, why)


# Issue 29: every message names the real slip; the checks and the cells as students really use them.


def verdict_of(notebook_globals, n, answer):
    """(status, why) of exercise n's check on answer, as the kernel's values and the grader's verdict give it."""
    return fresh_verdict(n, through_json(kernel_values(notebook_globals, n, answer)))


def test_exercise_1_says_the_values_are_right_only_when_every_case_is(notebook_globals):
    """A float64 one-hot that also ignores n_classes: the verdict names the width, never "the values are right"."""
    status, why = verdict_of(notebook_globals, 1, lambda y, n_classes=10: np.eye(10)[y])
    assert status == "wrong" and "values are right" not in why and "(4, 10)" in why, why
    status, why = verdict_of(notebook_globals, 1, one_hot_float64)  # only the dtype is wrong: said so
    assert status == "wrong" and "values are right on every case" in why and "float64" in why, why


def test_exercise_3_reports_every_wrong_shape():
    namespace = {"np": np}
    exec(SOURCE[HELPER], namespace)
    exec(SOURCE[ROLE[3]["check"]], namespace)
    values = namespace["values_3"]({**SHAPES, "dW2": (10, 128), "db1": (5, 128), "dA1": None})
    status, why = namespace["verdict_3"](values)
    assert status == "wrong" and why.startswith("3 of the 4 shapes to fix (1 right)"), why
    assert "dW2 is not (10, 128)" in why and "db1 is not (5, 128)" in why and "no prediction for dA1" in why, why
    assert "dW1" not in why.replace("dW1 is", ""), "a right shape is not named as wrong"


def floor_cross_entropy(floor):
    """The task's rule with a given floor: raise every probability below it to it, then the mean of -log."""
    return lambda P, Y: float(-np.sum(Y * np.log(np.maximum(P, floor))) / len(P))


def test_exercise_4_enforces_the_rule_its_task_states(notebook_globals):
    """Any floor 0 < epsilon <= 1e-12 is right (np.clip(P, 1e-12, 1) too), a larger one is wrong, and the task says
    exactly that; finfo.tiny is described as the smallest positive normal number."""
    task = SOURCE[ROLE[4]["exercise"]]
    assert "0 < \\varepsilon \\le 10^{-12}" in task and "27.6" in task and "6 significant digits" in task
    for floor in (1e-12, 1e-300, np.finfo(np.float64).tiny, 5e-324):
        assert verdict_of(notebook_globals, 4, floor_cross_entropy(floor))[0] == "right", floor
    clip = lambda P, Y: float(-np.sum(Y * np.log(np.clip(P, 1e-12, 1))) / len(P))  # noqa: E731
    assert verdict_of(notebook_globals, 4, clip)[0] == "right"
    for floor in (2e-12, 1e-10, 1e-7):
        status, why = verdict_of(notebook_globals, 4, floor_cross_entropy(floor))
        assert status == "wrong" and "a floor above the 1e-12 the task allows" in why, (floor, why)
    text = "\n".join(SOURCE)
    assert "smallest positive *normal* number" in SOURCE[ROLE[4]["solution"]]
    assert not re.search(r"smallest positive number", text), "finfo.tiny is the smallest positive normal number"


def numerical_gradient_whole_rows(f, x, h=1e-5):
    """Nudges x[i], a whole row of a 2-D x, at once: each row of the result holds the row's gradients summed."""
    grad = np.zeros_like(x)
    for i in range(len(x)):
        old = x[i].copy()
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_flat_index(f, x, h=1e-5):
    """Counts to x.size but indexes x[i] with one index: a row of a 2-D x, and past its last row an IndexError."""
    grad = np.zeros_like(x)
    for i in range(x.size):
        old = np.copy(x[i])
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def test_exercise_7_names_the_shape_slip_for_a_2d_x(notebook_globals):
    status, why = verdict_of(notebook_globals, 7, numerical_gradient_whole_rows)
    assert status == "wrong" and "x of shape (3, 4)" in why and "the whole row x[i] moves at once" in why, why
    assert not why.startswith("relative error"), why
    status, why = verdict_of(notebook_globals, 7, numerical_gradient_flat_index)
    assert status == "wrong" and "IndexError" in why and "whole row of a 2-D array" in why, why


def test_exercise_8s_hint_agrees_with_what_a_learner_sees():
    """The hint says some stored gradients equal their reference exactly and others do not: np.array_equal agrees."""
    task = SOURCE[ROLE[8]["exercise"]]
    assert "never exactly equal" not in task and "some happen to be exactly equal" in task
    namespace = {"np": np}
    exec(SOURCE[HELPER], namespace)
    exec(SOURCE[ROLE[8]["check"]], namespace)
    grads, reference = namespace["bug_grads"], namespace["bug_reference"]
    agree = [k for k in reference if np.allclose(grads[k], reference[k])]
    exact = [k for k in agree if np.array_equal(grads[k], reference[k])]
    assert exact and set(agree) - set(exact), (agree, exact)
    assert "never expected" not in code_or_markdown_containing("`compare` prints, like makemore's `cmp`")


def code_or_markdown_containing(text):
    return next(s for s in SOURCE if text in s)


def momentum_without_return(params, grads, velocity, lr, beta):
    for k in params:
        velocity[k] *= beta
        velocity[k] += grads[k]
        params[k] -= lr * velocity[k]


def momentum_old_velocity_without_return(params, grads, velocity, lr, beta):
    for k in params:
        params[k] -= lr * velocity[k]
        velocity[k] = beta * velocity[k] + grads[k]


def softmax_without_return(Z):
    E = np.exp(Z - np.max(Z, axis=1)[:, None])
    E / np.sum(E, axis=1)[:, None]


def test_a_function_without_return_is_told_so_not_not_attempted(notebook_globals, capsys):
    status, why = verdict_of(notebook_globals, 11, momentum_without_return)
    assert status == "wrong" and "the step is right, but your function returns None" in why, why
    assert "return params" in why
    status, why = verdict_of(notebook_globals, 11, momentum_old_velocity_without_return)
    assert status == "wrong" and "old velocity" in why and "also, your function returns None" in why, why
    status, why = verdict_of(notebook_globals, 2, softmax_without_return)
    assert status == "wrong" and "returns None: it has no return line" in why, why
    assert run_exercise(notebook_globals, 11, answer=momentum_without_return) is False
    assert "not attempted" not in capsys.readouterr().out
    for n in (2, 11):  # the stubs, `return None  # your code here`, are still "not attempted yet"
        assert run_exercise(notebook_globals, n) is None


def test_a_typo_that_reads_another_cells_variable_is_named(notebook_globals):
    """np.log(p) for np.log(P), with a p left by another cell (a dict of parameters): the verdict names the slip."""
    namespace = {"np": np, "p": {"W1": np.zeros((2, 2))}}
    exec(
        "def my_cross_entropy(P, Y):\n    return float(-np.sum(Y * np.log(np.maximum(p, 1e-300))) / len(P))\n",
        namespace,
    )
    status, why = verdict_of(notebook_globals, 4, namespace["my_cross_entropy"])
    assert status == "wrong" and "p (dict)" in why and "typo" in why, why
    namespace["p"] = np.array([0.5, 0.5])  # another p: a wrong value, still named
    status, why = verdict_of(notebook_globals, 4, namespace["my_cross_entropy"])
    assert status == "wrong" and "p (ndarray)" in why, why
    assert verdict_of(notebook_globals, 4, floor_cross_entropy(1e-300))[0] == "right"  # no note when right


def test_running_the_helper_again_keeps_the_verdicts_so_far():
    namespace = {"np": np}
    exec(SOURCE[HELPER], namespace)
    namespace["EXERCISE_RESULTS"].update({2: True, 4: False})
    exec(SOURCE[HELPER], namespace)
    assert namespace["EXERCISE_RESULTS"] == {2: True, 4: False}
    fresh = {"np": np}
    exec(SOURCE[HELPER], fresh)
    assert fresh["EXERCISE_RESULTS"] == {}


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_after_a_restart_the_nameerror_says_what_to_do(n):
    """An answer cell run first in a fresh kernel, or after its check cell but without the helper: the line the
    traceback shows says to run the cells above first."""
    for setup in ([], [SOURCE[ROLE[n]["check"]]]):
        namespace = {"np": np}
        for text in setup:
            exec(text, namespace)
        code = compile(SOURCE[ROLE[n]["answer"]], "answer", "exec")
        with pytest.raises(NameError) as error:
            exec(code, namespace)
        frame = error.traceback[-1]
        cell = SOURCE[ROLE[n]["answer"]] if frame.path == "answer" else SOURCE[ROLE[n]["check"]]
        if frame.path != "answer":
            assert "run_check" in str(error.value)
        line = cell.splitlines()[frame.lineno]
        assert "NameError? Run the cells above first" in line, line


def test_exercise_6s_rest_of_the_gradients_prints_only_after_its_check(notebook_globals, capsys):
    cell = code_cell_containing("# the rest of the worked example's gradients")
    answer = re.search(r"dW1_11 = (-?[\d.]+)", solution_code(6)).group(1)
    for results, shown in (({}, False), ({6: False}, True), ({6: True}, True)):
        exec(cell, dict(notebook_globals, EXERCISE_RESULTS=results))
        out = capsys.readouterr().out
        assert (answer in out) == shown and ("dW1 =" in out) == shown, out


def output_text(cell):
    """What a code cell's committed outputs show as text."""
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])
    )


def test_the_committed_run_shows_no_value_exercises_answer():
    """Exercise 6's number, exercise 3's shapes (6.3 prints whether each gradient has its array's shape, not the
    shapes) and exercise 9's outcomes are in no committed output."""
    printed = "".join(output_text(c) for c in CELLS if c["cell_type"] == "code")
    assert re.search(r"dW1_11 = (-?[\d.]+)", solution_code(6)).group(1) not in printed
    backward = next(c for c, s in zip(CELLS, SOURCE) if "def backward(params, cache, Y):" in s)
    assert "True" in output_text(backward)
    for shape in SHAPES.values():
        assert str(shape) not in output_text(backward), output_text(backward)
    for marker in ("def one_epoch_at_rate(", "rate_seeds = range("):
        shown = output_text(next(c for c, s in zip(CELLS, SOURCE) if marker in s))
        assert "rate 1.5" not in shown and "check has your predictions" in shown, shown
