"""The learner's exercises: each comes before the notebook's own version of what it asks, as four cells (task,
folded check, the learner's cell, folded solution); each check says "not attempted yet" for the stub, accepts the
solution written in the notebook and rejects typical wrong answers with a reason that names the mistake, without
using anything the notebook defines later."""

import ast
import builtins
import contextlib
import io
import re

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
    return namespace


def run_exercise(notebook_globals, n, answer=NOT_GIVEN, solution=False):
    """Run exercise n's learner cell as written (the stub), with the notebook's solution, or with `answer`.

    Returns what its last line, the call of the check, returns: None, False or True.
    """
    namespace = dict(notebook_globals)
    *setup, call = ast.parse(SOURCE[ROLE[n]["answer"]]).body
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


def softmax_without_keepdims(Z):
    E = np.exp(Z - Z.max(axis=1))
    return E / E.sum(axis=1)


def one_hot_transposed(y, n_classes=10):
    return np.eye(n_classes, dtype=np.float32)[y].T


SHAPES = {"Z1": (5, 128), "A1": (5, 128), "Z2": (5, 10), "P": (5, 10)}


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
    ],
    "predicted_shapes": [
        ({**SHAPES, "Z1": (128, 5)}, "rows are examples"),
        ({**SHAPES, "Z1": (5, 784)}, "X (m, 784) @ W1"),
        ({**SHAPES, "P": (5,)}, "softmax turns each row"),
        ({**SHAPES, "A1": None}, "no prediction for A1"),
    ],
    "my_cross_entropy": [
        (cross_entropy_sum, "the sum"),
        (cross_entropy_mean_of_entries, "all m * k entries"),
        (cross_entropy_naive_log, "0 * (-inf) = nan"),
        (cross_entropy_right_class_only, "log(0) = -inf"),
        (cross_entropy_per_example, "not one number"),
    ],
    "my_relu_backward": [
        (lambda dA, Z: dA * (Z >= 0), "not Z >= 0"),
        (lambda dA, Z: np.maximum(dA, 0), "the mask comes from Z"),
        (lambda dA, Z: dA * np.maximum(Z, 0), "multiplied by relu(Z)"),
        (lambda dA, Z: dA * (Z < 0), "inverted"),
        (lambda dA, Z: dA, "unchanged"),
        (lambda dA, Z: np.multiply(dA, Z > 0, out=dA), "in place"),
    ],
    "dW1_11": [
        (0.7293, "left out the ReLU"),
        (0.3491, "times too small"),
        (-0.6981, "sign"),
        (1.3963, "dW1[2, 1]"),
        (-0.9725, "dW1[1, 0]"),
        (0.5, "is not dW1[1, 1]"),
        ("0.6981", "one number"),
    ],
    "my_numerical_gradient": [
        (numerical_gradient_one_sided, "one-sided"),
        (numerical_gradient_over_h, "divide by 2h"),
        (numerical_gradient_of_a_copy, "not a copy"),
        (numerical_gradient_not_restored, "put every nudged entry back"),
    ],
    "first_wrong": [
        ("Z1", "computed from dA1"),
        ("dW1", "computed from dA1"),
        ("W2", "agrees with its numerical reference"),
        ("X", "not one of backward's gradients"),
        (3, "as a string"),
    ],
    "lr_predictions": [
        ({0.05: "better", 1.5: "worse", 5.0: "diverges"}, "at 0.05 you predicted 'better', it was 'worse'"),
        ({0.05: "worse", 1.5: "diverges", 5.0: "diverges"}, "at 1.5 you predicted 'diverges', it was 'worse'"),
        ({0.05: "worse", 1.5: "worse", 5.0: "worse"}, "it was 'diverges'"),
        ({0.05: "slower", 1.5: "worse", 5.0: "diverges"}, "use one of"),
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
    assert f"Exercise {n}: not attempted yet" in out, out


@pytest.mark.parametrize("n", [n for n, _ in EXERCISES])
def test_check_accepts_the_notebooks_solution(notebook_globals, n, capsys):
    assert run_exercise(notebook_globals, n, solution=True) is True, capsys.readouterr().out
    out = capsys.readouterr().out
    assert out.startswith(f"Exercise {n}: right: "), out
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
    assert out.startswith(f"Exercise {n}: wrong: ") and reason in out, out


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
