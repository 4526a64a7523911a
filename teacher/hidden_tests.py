"""The grader's hidden tests: inputs the student never sees, with the expected results from references of its own.

For each function exercise (keyed by the check's ANSWER_NAME_N, which does not change when exercises are
renumbered), `hidden_cases(answer_name, rng)` returns a list of cases in the format of the check's `cases_N()`
(the inputs under the learner function's argument names, plus "expected"), or None when there is none. Each case
also has a "kind": what kind of case it is, in words and without its values ("logits shifted by +700 or -700 per
row"). A student's feedback names the kinds their answer fails, never a hidden input, an expected value, or what
their code said on one (the teacher's notes, teacher-notes.csv, may say more). The grader
sends the inputs alone into the student's kernel (values_N runs the learner's function on them) and hands the
values with these cases, "expected" included, to the master's verdict_N outside the kernel.

This file is not in the student edition. It is in the public repository, though, like the full notebook: for a
graded course, keep your own copy elsewhere (change the sizes, the ranges, add cases) and pass it with
`--hidden-tests`. The references below are written for the grader only; the tests in tests/test_grader.py check
that the master's solutions are right on these cases and typical wrong answers are not.

The inputs are drawn from a generator seeded per student from the teacher's secret and the student's name
(teacher/hidden_key.py): a re-grade gives the same cases, hence the same verdict, two students do not share the
same hidden inputs, and without the secret nobody can compute them, although this file is public.
"""

import numpy as np


def _one_hot(rng):
    cases = []
    for m, k, kind in [
        (7, 10, "fewer labels than classes, the last class never used"),
        (12, 4, "more labels than classes, the last class never used"),
        (5, 13, "more classes than the digits' 10, the last class never used"),
    ]:
        y = rng.integers(0, k - 1, size=m)  # the last class never appears
        expected = np.zeros((m, k), dtype=np.float32)
        expected[np.arange(m), y] = 1
        cases.append({"y": y, "n_classes": k, "expected": expected, "kind": kind})
    return cases


def _stable_softmax(Z):
    Z = np.asarray(Z, dtype=np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _softmax(rng):
    cases = []
    for m, k, scale, shift, kind in [
        (4, 6, 2.0, 0.0, "random logits of another shape"),
        (6, 3, 10.0, 0.0, "logits 10 times larger than usual"),
        (3, 5, 1.0, 700.0, "logits shifted by +700 or -700 per row"),
    ]:
        Z = scale * rng.standard_normal((m, k)) + shift * rng.choice([-1.0, 1.0], size=(m, 1))
        cases.append({"Z": Z, "expected": _stable_softmax(Z), "kind": kind})
    return cases


def _cross_entropy(rng):
    cases = []
    for m, k in [(6, 4), (9, 10), (2, 3)]:
        P = _stable_softmax(3 * rng.standard_normal((m, k)))
        Y = np.eye(k)[rng.integers(0, k, size=m)]
        loss = -np.mean(np.sum(Y * np.log(np.clip(P, np.finfo(P.dtype).tiny, None)), axis=1))
        kind = "random probabilities and one-hot labels, another batch size and number of classes"
        cases.append({"P": P, "Y": Y, "expected": float(loss), "kind": kind})
    # a right class at a tiny probability (a confident mistake): an eps added inside the log shows here
    P = _stable_softmax(3 * rng.standard_normal((4, 5)))
    Y = np.eye(5)[P.argmin(axis=1)]
    P[0] = np.where(Y[0] > 0, 1e-5 * rng.uniform(0.5, 2), P[0])
    P[0] /= P[0].sum()
    loss = -np.mean(np.sum(Y * np.log(P), axis=1))
    kind = "a confident mistake: the right class at a tiny probability"
    cases.append({"P": P, "Y": Y, "expected": float(loss), "kind": kind})
    return cases


def _relu_backward(rng):
    cases = []
    for m, n in [(5, 7), (3, 2), (8, 4)]:
        Z = np.round(rng.standard_normal((m, n)), 1)  # rounding makes some entries exactly 0
        dA = rng.standard_normal((m, n))
        kind = "another shape, with inputs exactly 0 among them"
        cases.append({"dA": dA, "Z": Z, "expected": dA * (Z > 0), "kind": kind})
    return cases


def _numerical_gradient(rng):
    x1 = rng.uniform(-1.5, 1.5, size=(3, 2))
    x2 = rng.standard_normal(5)
    x3 = rng.uniform(-3, 3, size=(2, 2, 2))
    return [
        {"f": "sum of cubes", "x": x1, "expected": 3 * x1**2, "kind": "a sum of cubes of a 2-D array"},
        {
            "f": "log-sum-exp",
            "x": x2,
            "expected": np.exp(x2 - np.log(np.sum(np.exp(x2)))),
            "kind": "a log-sum-exp of a 1-D array",
        },
        {"f": "sum of sines", "x": x3, "expected": np.cos(x3), "kind": "a sum of sines of a 3-D array"},
    ]


def _per_class_accuracy(rng):
    cases = []
    for n, kind in [
        (3, "fewer classes than the notebook's, one of them empty (no example)"),
        (6, "more classes than the notebook's, one of them empty (no example)"),
    ]:
        cm = rng.integers(0, 9, size=(n, n))
        cm[rng.integers(0, n)] = 0  # a class with no example: accuracy 0, not nan
        totals = cm.sum(axis=1)
        expected = np.where(totals > 0, np.diag(cm) / np.where(totals > 0, totals, 1), 0.0)
        cases.append({"cm": cm, "expected": expected, "kind": kind})
    return cases


def _momentum_update(rng):
    names = {"W1": (4, 3), "b1": (3,), "W2": (3, 2)}
    params = {k: rng.standard_normal(shape) for k, shape in names.items()}
    grads = {k: rng.standard_normal(shape) for k, shape in names.items()}
    velocity = {k: 0.5 * rng.standard_normal(shape) for k, shape in names.items()}
    lr, beta = float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.5, 0.95))
    new_velocity = {k: beta * velocity[k] + grads[k] for k in names}
    new_params = {k: params[k] - lr * new_velocity[k] for k in names}
    return [
        {
            "params": params,
            "grads": grads,
            "velocity": velocity,
            "lr": lr,
            "beta": beta,
            "expected": {"params": new_params, "velocity": new_velocity},
            "kind": "one step from a non-zero velocity, with another learning rate and beta",
        }
    ]


HIDDEN = {
    "my_one_hot": _one_hot,
    "my_softmax": _softmax,
    "my_cross_entropy": _cross_entropy,
    "my_relu_backward": _relu_backward,
    "my_numerical_gradient": _numerical_gradient,
    "my_per_class_accuracy": _per_class_accuracy,
    "my_momentum_update": _momentum_update,
}


def hidden_cases(answer_name, rng):
    """The hidden cases for the exercise whose answer is `answer_name` (with "expected"), or None."""
    make = HIDDEN.get(answer_name)
    return make(rng) if make else None
