"""The appendix: XOR and two moons, sigmoid beside ReLU, MSE and binary cross-entropy beside softmax cross-entropy."""

import numpy as np
import pytest

from notebook_module import notebook_cells

# The appendix's toy settings (the notebook's parameters cell is not executed by the tests, so they are repeated here).
TOY = {"hidden_units": 16, "epochs": 300, "batch_size": 20, "lr": 0.5}


def train_toy(nb, X, y, seed=0):
    """The appendix's 2-D network: train's own code with n_in = 2 and n_classes = 2."""
    params, _ = nb.train(X, y, X, y, n_classes=2, seed=seed, progress=False, **TOY)
    return params


# --- the sigmoid -----------------------------------------------------------------------------------------


def test_sigmoid_values_symmetry_and_no_overflow(nb):
    z = np.array([-1000, -30, -2, 0, 2, 30, 1000], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise"):
        s = nb.sigmoid(z)
    assert s.dtype == np.float32
    with np.errstate(over="ignore"):  # the textbook formula in float64 as the reference: exp(1000) = inf is fine here
        reference = 1 / (1 + np.exp(-z.astype(np.float64)))
    np.testing.assert_allclose(s, reference, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(nb.sigmoid(-z), 1 - s, atol=1e-7)
    assert s[3] == 0.5 and s[0] == 0 and s[-1] == 1


def test_sigmoid_derivative_matches_numerical_gradient(nb, rng):
    z = rng.normal(0, 3, size=20)
    numeric = nb.numerical_gradient(lambda: np.sum(nb.sigmoid(z)), z)
    A = nb.sigmoid(z)
    assert nb.rel_error(A * (1 - A), numeric) < 1e-8
    assert np.max(A * (1 - A)) <= 0.25


def test_forward_with_sigmoid_stores_it_and_rejects_unknown_activations(nb, small_net):
    params, X, _ = small_net
    P, cache = nb.forward_with(params, X, "sigmoid")
    np.testing.assert_array_equal(cache["A1"], nb.sigmoid(cache["Z1"]))
    assert cache["activation"] == "sigmoid"
    np.testing.assert_allclose(P.sum(axis=1), 1)
    with pytest.raises(ValueError, match="activation"):
        nb.forward_with(params, X, "tanh")


def test_the_relu_variant_is_exactly_the_core(nb, small_net):
    """forward_with / backward_with with ReLU and cross-entropy give the core's forward and backward, bit for bit."""
    params, X, Y = small_net
    P, cache = nb.forward(params, X)
    P_with, cache_with = nb.forward_with(params, X, "relu")
    np.testing.assert_array_equal(P, P_with)
    grads, grads_with = nb.backward(params, cache, Y), nb.backward_with(params, cache_with, nb.cross_entropy_dZ2(P, Y))
    assert grads.keys() == grads_with.keys()
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads_with[k])


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_backward_matches_numerical_gradient_for_every_activation_and_loss(nb, small_net, activation, loss):
    params, X, Y = small_net
    loss_fns = {"cross_entropy": (nb.cross_entropy, nb.cross_entropy_dZ2), "mse": (nb.mean_squared_error, nb.mse_grad)}
    errors = nb.network_gradient_check(params, X, Y, activation, *loss_fns[loss])
    assert set(errors) == {"W1", "b1", "W2", "b2"}
    assert max(errors.values()) < 1e-7, errors


def test_network_gradient_check_with_relu_agrees_with_section_7(nb, small_net):
    params, X, Y = small_net
    assert nb.network_gradient_check(params, X, Y, "relu") == pytest.approx(nb.gradient_check(params, X, Y), rel=1e-6)


def test_the_checks_have_teeth(nb, small_net):
    """A backward that used ReLU's derivative for a sigmoid network would be caught."""
    params, X, Y = small_net
    P, cache = nb.forward_with(params, X, "sigmoid")
    wrong = dict(cache, activation="relu")  # sigmoid forward, ReLU backward
    grads = nb.backward_with(params, wrong, nb.cross_entropy_dZ2(P, Y))
    work = {k: v.copy() for k, v in params.items()}
    numeric = nb.numerical_gradient(lambda: nb.cross_entropy(nb.forward_with(work, X, "sigmoid")[0], Y), work["W1"])
    assert nb.rel_error(grads["W1"], numeric) > 1e-2


# --- mean squared error and binary cross-entropy ---------------------------------------------------------


def test_mean_squared_error_value(nb):
    P = np.array([[0.5, 0.5], [0.9, 0.1]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert nb.mean_squared_error(P, Y) == pytest.approx((0.25 + 0.25 + 0.81 + 0.81) / 2)
    assert nb.mean_squared_error(Y, Y) == 0


def test_mse_grad_matches_numerical_gradient_through_softmax(nb, rng):
    Z = rng.standard_normal((8, 5)) * 2
    Y = nb.one_hot(rng.integers(0, 5, size=8), 5).astype(np.float64)
    numeric = nb.numerical_gradient(lambda: nb.mean_squared_error(nb.softmax(Z), Y), Z)
    dZ = nb.mse_grad(nb.softmax(Z), Y)
    assert dZ.shape == Z.shape
    assert nb.rel_error(dZ, numeric) < 1e-8


def test_binary_cross_entropy_value_and_never_log_zero(nb):
    p, y = np.array([0.8, 0.3]), np.array([1, 0])
    assert nb.binary_cross_entropy(p, y) == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)
    with np.errstate(all="raise"):
        loss = nb.binary_cross_entropy(np.array([0.0, 1.0], dtype=np.float32), np.array([1, 0]))
    assert np.isfinite(loss) and loss > 50


def test_bce_grad_matches_numerical_gradient(nb, rng):
    z, y = rng.normal(0, 3, size=12), rng.integers(0, 2, size=12)
    numeric = nb.numerical_gradient(lambda: nb.binary_cross_entropy(nb.sigmoid(z), y), z)
    assert nb.rel_error(nb.bce_grad(nb.sigmoid(z), y), numeric) < 1e-8


def test_two_class_softmax_is_a_sigmoid_and_its_cross_entropy_is_bce(nb, rng):
    Z = rng.standard_normal((10, 2)) * 3
    y = rng.integers(0, 2, size=10)
    P = nb.softmax(Z)
    np.testing.assert_allclose(P[:, 1], nb.sigmoid(Z[:, 1] - Z[:, 0]), rtol=1e-12)
    assert nb.cross_entropy(P, nb.one_hot(y, 2)) == pytest.approx(nb.binary_cross_entropy(P[:, 1], y), rel=1e-12)


def test_mse_pushes_the_right_logit_less_than_cross_entropy(nb):
    """The appendix's explanation, checked: for p = 1/10 the MSE push is 5x smaller, and it vanishes as p -> 0."""
    p = np.array([1e-4, 0.1, 1 / 3, 0.9])
    ce, mse = nb.true_class_push(p, 10, "cross_entropy"), nb.true_class_push(p, 10, "mse")
    np.testing.assert_allclose(ce, 1 - p)
    np.testing.assert_allclose(mse, 20 / 9 * p * (1 - p) ** 2)  # closed form for the other 9 classes equal
    assert ce[1] / mse[1] == pytest.approx(5.0)
    assert mse[0] < 1e-3 < ce[0]


# --- XOR, two moons and the model without a hidden layer ------------------------------------------------


def test_toy_data(nb):
    X, y = nb.make_xor()
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(y, np.logical_xor(X[:, 0], X[:, 1]))
    X, y = nb.make_moons(200, 0.1, seed=0)
    assert X.shape == (200, 2) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100, 100])
    X2, y2 = nb.make_moons(200, 0.1, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, nb.make_moons(200, 0.1, seed=1)[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_reaches_100_percent(nb, seed):
    X, y = nb.make_xor()
    params = train_toy(nb, X, y, seed)
    assert params["W1"].shape == (2, TOY["hidden_units"]) and params["W2"].shape == (TOY["hidden_units"], 2)
    assert nb.accuracy(nb.predict(params, X), y) == 1.0


def test_two_moons_reach_100_percent(nb):
    X, y = nb.make_moons(200, 0.1, seed=0)
    assert nb.accuracy(nb.predict(train_toy(nb, X, y), X), y) == 1.0


def test_linear_model_gradient(nb, rng):
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    X, Y = rng.standard_normal((7, 3)), nb.one_hot(rng.integers(0, 4, size=7), 4).astype(np.float64)
    grads = nb.linear_backward(nb.linear_forward(params, X)[1], Y)
    for k in params:
        numeric = nb.numerical_gradient(lambda: nb.cross_entropy(nb.linear_forward(params, X)[0], Y), params[k])
        assert nb.rel_error(grads[k], numeric) < 1e-8


def test_linear_model_cannot_learn_xor_or_the_moons(nb):
    X, y = nb.make_xor()
    params = nb.train_linear(X, y, 2, epochs=1000, batch_size=len(X), lr=0.5, seed=0)
    assert nb.accuracy(nb.linear_forward(params, X)[0].argmax(axis=1), y) <= 0.75  # at most 3 of the 4 points
    X, y = nb.make_moons(200, 0.1, seed=0)
    params = nb.train_linear(X, y, 2, epochs=1000, batch_size=len(X), lr=0.5, seed=0)
    assert nb.accuracy(nb.linear_forward(params, X)[0].argmax(axis=1), y) < 0.95


def test_linear_model_does_learn_a_linearly_separable_problem(nb):
    """So its failure on XOR is the model's limit, not a bug: AND is separable by a line."""
    X, _ = nb.make_xor()
    y_and = (X[:, 0] * X[:, 1]).astype(np.int64)
    params = nb.train_linear(X, y_and, 2, epochs=1000, batch_size=len(X), lr=0.5, seed=0)
    assert nb.accuracy(nb.linear_forward(params, X)[0].argmax(axis=1), y_and) == 1.0


def test_decision_boundary_plot_runs(nb):
    plt = nb.plt  # the notebook's own pyplot

    X, y = nb.make_xor()
    fig, ax = plt.subplots()
    calls = []

    def half(points):
        calls.append(points.shape)
        return np.full((len(points), 2), 0.5, dtype=np.float32)  # a model with no boundary at all

    nb.plot_decision_boundary(ax, half, X, y, "flat", resolution=30)
    assert calls == [(900, 2)]
    plt.close(fig)


# --- training with the new options on MNIST --------------------------------------------------------------


def test_train_starts_from_init_params_with_the_same_seed(nb, mnist_small):
    """The appendix draws train's starting weights itself (epoch 0); a step of size ~0 must leave them there."""
    X, y, _, _ = mnist_small
    params, _ = nb.train(
        X[:256], y[:256], X[:10], y[:10], hidden_units=32, epochs=1, batch_size=128, lr=1e-30, seed=3, progress=False
    )
    start = nb.init_params(784, 32, 10, np.random.default_rng(3))
    for k in params:
        np.testing.assert_allclose(params[k], start[k], atol=1e-20)


@pytest.mark.parametrize("activation, loss", [("sigmoid", "cross_entropy"), ("relu", "mse")])
def test_train_recipe_learns_mnist_with_sigmoid_or_mse(nb, mnist_small, activation, loss):
    X, y, X_val, y_val = mnist_small
    dZ2_fn = nb.mse_grad if loss == "mse" else nb.cross_entropy_dZ2
    params, history = nb.train_recipe(
        X,
        y,
        X_val[:2000],
        y_val[:2000],
        hidden_units=64,
        epochs=2,
        batch_size=128,
        lr=0.5,
        seed=0,
        progress=False,
        **nb.variant(activation, dZ2_fn),
    )
    assert history["train_loss"][-1] < history["train_loss"][0]
    P, _ = nb.forward_with(params, X_val[:2000], activation)
    assert nb.accuracy(P.argmax(axis=1), y_val[:2000]) == pytest.approx(max(history["val_acc"]))
    assert max(history["val_acc"]) > 0.75


def test_train_recipe_refuses_dropout_with_a_variant(nb, mnist_small):
    X, y, _, _ = mnist_small
    with pytest.raises(ValueError, match="dropout"):
        nb.train_recipe(
            X[:100], y[:100], X[:10], y[:10], hidden_units=8, epochs=1, batch_size=50, lr=0.1, seed=0,
            dropout=0.5, progress=False, **nb.variant("sigmoid"),
        )  # fmt: skip


def test_gradient_sizes_show_the_vanishing_gradient(nb, mnist_small):
    """Same weights, only the activation differs: the sigmoid passes a much smaller share back to W1."""
    X, y, _, _ = mnist_small
    Y = nb.one_hot(y[:2000])
    start = nb.init_params(784, 64, 10, np.random.default_rng(0))
    share = {a: (s := nb.gradient_sizes(start, X[:2000], Y, a))["W1"] / s["W2"] for a in ("relu", "sigmoid")}
    assert share["sigmoid"] < share["relu"] / 3


def test_the_appendix_introduction_points_at_its_settings_cell():
    """The appendix's introduction says where its settings are: the cell right after it, tagged settings."""
    cells = notebook_cells()
    at = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Appendix"))
    intro, settings = "".join(cells[at]["source"]), cells[at + 1]
    assert "settings are in the next cell" in intro
    assert settings["cell_type"] == "code" and "settings" in settings["metadata"].get("tags", [])
    assert "APPENDIX_TRAIN_SIZE =" in "".join(settings["source"])
