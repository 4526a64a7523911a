"""The learner's exercises: each check says "not attempted yet" for the stub, accepts the solution written in the
notebook and rejects typical wrong answers with a reason that names the mistake; and each exercise comes as four
cells (task, collapsed check, the learner's cell, collapsed solution) right after the idea it practises."""

import ast
import re
import time

import numpy as np
import pytest

from notebook_module import is_collapsed, notebook_cells

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


def learner_name(n):
    """The name the learner's cell of exercise n defines: my_... or diverging_lr."""
    node = ast.parse(SOURCE[dict(EXERCISES)[n] + 2]).body[0]
    return node.name if isinstance(node, ast.FunctionDef) else node.targets[0].id


NUMBER = {learner_name(n): n for n, _ in EXERCISES}


def solution_code(n):
    """The ```python block of the notebook's collapsed solution to exercise n."""
    return SOLUTION.search(SOURCE[dict(EXERCISES)[n] + 3]).group(2)


HELPER = next((i for i, s in enumerate(SOURCE) if "def run_check(" in s), None)
# cells that belong to the exercises: the introduction, the helper and four cells per exercise
ADDED = {HELPER - 1, HELPER} | {i + k for _, i in EXERCISES for k in range(4)} if HELPER is not None else set()


@pytest.fixture(scope="module")
def notebook_globals(nb, mnist_small):
    """What the learner's cells read: the notebook's functions, its settings cell and a small slice of MNIST."""
    namespace = dict(vars(nb))
    settings = [s for c, s in zip(CELLS, SOURCE) if "parameters" in c["metadata"].get("tags", [])]
    exec(settings[0], namespace)
    X_train, y_train, X_dev, y_dev = mnist_small
    namespace.update(X_train=X_train, y_train=y_train, X_dev=X_dev, y_dev=y_dev)
    return namespace


def run_exercise(notebook_globals, n, answer=NOT_GIVEN, solution=False):
    """Run exercise n's learner cell as written (the stub), with the notebook's solution, or with `answer`.

    Returns what its last line, the call of the check, returns: None, False or True.
    """
    namespace = dict(notebook_globals)
    *setup, call = ast.parse(SOURCE[dict(EXERCISES)[n] + 2]).body
    exec(compile(ast.Module(body=setup, type_ignores=[]), f"exercise {n}", "exec"), namespace)
    if solution:
        exec(solution_code(n), namespace)
    if answer is not NOT_GIVEN:
        namespace[learner_name(n)] = answer
    return eval(compile(ast.Expression(body=call.value), f"exercise {n}", "eval"), namespace)


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


def forward_without_relu(params, X):
    return softmax((X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"])


def forward_logits(params, X):
    return relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


def forward_without_b1(params, X):
    return softmax(relu(X @ params["W1"]) @ params["W2"] + params["b2"])


def forward_with_cache(params, X):
    P = softmax(relu(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"])
    return P, {"P": P}


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


def relu(Z):
    return np.maximum(Z, 0)


def softmax(Z):
    return softmax_naive(Z - Z.max(axis=1, keepdims=True))


def numerical_gradient_one_sided(f, x, h=1e-5):
    grad, f_x = np.zeros_like(x), f()
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        grad[idx] = (f() - f_x) / h
        x[idx] = old
    return grad


def numerical_gradient_over_h(f, x, h=1e-5):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = f()
        x[idx] = old - h
        f_minus = f()
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / h
    return grad


def numerical_gradient_of_a_copy(f, x, h=1e-5):
    x, grad = x.copy(), np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        f_plus = f()
        x[idx] = old - h
        f_minus = f()
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


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


WRONG = {
    "my_one_hot": [
        (one_hot_as_wide_as_the_labels, "n_classes"),
        (one_hot_whole_columns, "whole columns"),
        (one_hot_float64, "float32"),
        (raises, "your function raised ValueError: something went wrong"),
    ],
    "my_softmax": [
        (softmax_naive, "overflows"),
        (softmax_batch_max, "whole batch"),
        (softmax_over_columns, "columns sum to 1"),
        (softmax_in_place, "in place"),
        (lambda Z: np.full_like(Z, 1 / Z.shape[1]), "differ from softmax"),
    ],
    "my_forward": [
        (forward_without_relu, "without ReLU"),
        (forward_logits, "logits Z2"),
        (forward_without_b1, "without the bias b1"),
        (forward_with_cache, "tuple"),
    ],
    "my_cross_entropy": [
        (cross_entropy_sum, "the sum"),
        (cross_entropy_mean_of_entries, "all m * k entries"),
        (cross_entropy_naive_log, "0 * (-inf) = nan"),
        (cross_entropy_right_class_only, "log(0) = -inf"),
        (cross_entropy_per_example, "not one number"),
    ],
    "my_dW2": [
        (lambda A1, dZ2: dZ2.T @ A1, "transposed"),
        (lambda A1, dZ2: A1.T @ dZ2 / len(A1), "times too small"),
    ],
    "my_bias_gradient": [
        (lambda dZ: dZ.sum(), "every axis"),
        (lambda dZ: dZ.mean(axis=0), "mean over the examples"),
        (lambda dZ: dZ.sum(axis=1), "one value per example"),
        (lambda dZ: dZ.sum(axis=0, keepdims=True), "keepdims"),
    ],
    "my_relu_backward": [
        (lambda dA1, Z1: np.maximum(dA1, 0), "the mask comes from Z1"),
        (lambda dA1, Z1: dA1 * np.maximum(Z1, 0), "multiplied by A1"),
        (lambda dA1, Z1: dA1, "unchanged"),
        (lambda dA1, Z1: np.multiply(dA1, Z1 > 0, out=dA1), "in place"),
    ],
    "my_numerical_gradient": [
        (numerical_gradient_one_sided, "one-sided"),
        (numerical_gradient_over_h, "divide by 2h"),
        (numerical_gradient_of_a_copy, "not a copy"),
        (numerical_gradient_not_restored, "put every nudged entry back"),
    ],
    "diverging_lr": [
        (0.5, "dev accuracy without diverging"),
        (0.05, "try a much larger rate"),
        (-1.0, "refused"),
    ],
    "my_per_class_accuracy": [
        (lambda cm: np.diag(cm) / cm.sum(axis=0), "column sums"),
        (lambda cm: np.diag(cm) / cm.sum(), "total number"),
        (lambda cm: np.diag(cm) / cm.sum(axis=1), "no examples"),
        (lambda cm: np.trace(cm) / cm.sum(), "overall accuracy"),
    ],
    "my_momentum_update": [
        (momentum_averaged, "averaged form"),
        (momentum_old_velocity, "old velocity"),
        (momentum_velocity_not_stored, "velocity is still 0"),
        (momentum_new_dict, "in place"),
    ],
}


def test_at_least_eight_exercises_numbered_in_notebook_order():
    numbers = [n for n, _ in EXERCISES]
    assert len(numbers) >= 8
    assert numbers == list(range(1, len(numbers) + 1))


def test_every_exercise_has_typical_wrong_answers_to_reject():
    assert set(NUMBER) == set(WRONG)


def test_a_collapsed_helper_cell_comes_before_the_first_exercise():
    assert HELPER is not None and HELPER < EXERCISES[0][1] and is_collapsed(CELLS[HELPER])
    assert CELLS[HELPER - 1]["cell_type"] == "markdown", "a few words on how the exercises work"


@pytest.mark.parametrize("n, start", EXERCISES)
def test_exercise_cells_task_check_learner_solution(n, start):
    task, check, learner, solution = CELLS[start : start + 4]
    assert task["cell_type"] == "markdown"
    assert "<details><summary>Hint</summary>" in SOURCE[start] and "*Hint:*" in SOURCE[start]
    assert check["cell_type"] == "code" and is_collapsed(check), "the check is a collapsed (hidden) code cell"
    assert TITLE.match(SOURCE[start + 1]).group(1) == str(n)
    assert isinstance(ast.parse(SOURCE[start + 1]).body[0], ast.FunctionDef), "the check is one top-level def"
    assert learner["cell_type"] == "code" and not learner["metadata"].get("jupyter", {}).get("source_hidden")
    assert solution["cell_type"] == "markdown"
    match = SOLUTION.search(SOURCE[start + 3])
    assert match and match.group(1) == str(n) and match.group(3).strip(), "collapsed solution, code, then why"
    defined = ast.parse(match.group(2)).body[0]
    assert (defined.name if isinstance(defined, ast.FunctionDef) else defined.targets[0].id) == learner_name(n)
    before = start - 1
    while before in ADDED:  # skip the exercises (and the helper) inserted after the same idea
        before -= 1
    assert CELLS[before]["cell_type"] == "code", "right after the code cell that teaches the idea"


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_check_says_not_attempted_for_the_stub(notebook_globals, n, capsys):
    assert run_exercise(notebook_globals, n) is None
    out = capsys.readouterr().out
    assert f"Exercise {n}: not attempted yet" in out, out


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_check_accepts_the_notebooks_solution(notebook_globals, n, capsys):
    start = time.perf_counter()
    assert run_exercise(notebook_globals, n, solution=True) is True, capsys.readouterr().out
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {n}: right: "), out
    assert seconds < (10 if learner_name(n) == "diverging_lr" else 1), f"the check took {seconds:.2f} s"


@pytest.mark.parametrize(
    "name, answer, reason",
    [(name, answer, reason) for name, answers in WRONG.items() for answer, reason in answers],
    ids=[f"{name}-{i}" for name, answers in WRONG.items() for i in range(len(answers))],
)
def test_check_rejects_a_typical_wrong_answer_and_says_why(notebook_globals, name, answer, reason, capsys):
    n = NUMBER[name]
    assert run_exercise(notebook_globals, n, answer=answer) is False
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {n}: wrong: ") and reason in out, out


def test_not_implemented_error_also_counts_as_not_attempted(notebook_globals, capsys):
    def not_yet(*args):
        raise NotImplementedError

    assert run_exercise(notebook_globals, 1, answer=not_yet) is None
    assert "not attempted yet" in capsys.readouterr().out
