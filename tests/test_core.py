"""The maths of the notebook: shapes, numerical safety, gradients, learning, model files."""

import numpy as np
import pytest


def test_init_params_shapes_dtype_and_he_scale(nb, rng):
    params = nb.init_params(784, 128, 10, rng)
    assert {k: v.shape for k, v in params.items()} == {"W1": (784, 128), "b1": (128,), "W2": (128, 10), "b2": (10,)}
    assert all(v.dtype == np.float32 for v in params.values())
    assert params["W1"].std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert params["W2"].std() == pytest.approx(np.sqrt(2 / 128), rel=0.1)
    assert not params["b1"].any() and not params["b2"].any()


def test_one_hot(nb):
    Y = nb.one_hot(np.array([3, 0, 9]))
    assert Y.shape == (3, 10) and Y.dtype == np.float32
    np.testing.assert_array_equal(Y.argmax(axis=1), [3, 0, 9])
    np.testing.assert_array_equal(Y.sum(axis=1), 1)


def test_to_float_range(nb):
    X = nb.to_float(np.array([[0, 128, 255]], dtype=np.uint8))
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, [[0, 128 / 255, 1]], rtol=1e-6)


def test_relu(nb):
    np.testing.assert_array_equal(nb.relu(np.array([-2.0, 0.0, 3.5])), [0.0, 0.0, 3.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_sum_to_one_and_stay_finite(nb, dtype):
    Z = np.array([[1000, 0, -1000], [-1000, -1000, -1000], [1, 2, 3]], dtype=dtype)
    P = nb.softmax(Z)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(P[0], [1, 0, 0])
    np.testing.assert_allclose(P[1], [1 / 3] * 3, rtol=1e-6)
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(P[2], e / e.sum(), rtol=1e-6)


def test_naive_softmax_really_fails_where_the_stable_one_does_not(nb):
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(nb.softmax_naive(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))).any()


def test_cross_entropy_value_and_never_log_zero(nb):
    P = np.array([[0.5, 0.5], [0.9, 0.1]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert nb.cross_entropy(P, Y) == pytest.approx(-(np.log(0.5) + np.log(0.1)) / 2)
    with np.errstate(all="raise"):  # no divide-by-zero warning either
        loss = nb.cross_entropy(np.array([[0.0, 1.0]], dtype=np.float32), np.array([[1.0, 0.0]], dtype=np.float32))
    assert np.isfinite(loss) and loss > 50


def test_forward_shapes_and_cache(nb, rng):
    params = nb.init_params(784, 128, 10, rng)
    X = rng.random((32, 784), dtype=np.float32)
    P, cache = nb.forward(params, X)
    assert P.shape == (32, 10) and P.dtype == np.float32
    assert cache["Z1"].shape == cache["A1"].shape == (32, 128)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(cache["A1"], np.maximum(cache["Z1"], 0))


def test_untrained_loss_is_about_ln10(nb, mnist_small, rng):
    X, y, _, _ = mnist_small
    P, _ = nb.forward(nb.init_params(784, 128, 10, rng), X[:2000])
    assert nb.cross_entropy(P, nb.one_hot(y[:2000])) == pytest.approx(np.log(10), abs=0.3)


def test_backward_shapes_match_params(nb, small_net):
    params, X, Y = small_net
    _, cache = nb.forward(params, X)
    grads = nb.backward(params, cache, Y)
    assert grads.keys() == params.keys() | {"Z2", "A1", "Z1"}  # the parameters' gradients and the intermediates'
    assert all(grads[k].shape == params[k].shape for k in params)
    assert all(grads[k].shape == cache[k].shape for k in ("Z2", "A1", "Z1"))


def test_backward_matches_numerical_gradient(nb, small_net):
    params, X, Y = small_net
    errors = nb.gradient_check(params, X, Y)
    assert set(errors) == {"W1", "b1", "W2", "b2"}
    assert max(errors.values()) < 1e-7, errors


def test_gradient_check_catches_a_wrong_backward(nb, small_net):
    """The check has teeth: a gradient that is off by a little is reported as a large error."""
    params, X, Y = small_net
    grads = nb.backward(params, nb.forward(params, X)[1], Y)
    work = {k: v.copy() for k, v in params.items()}
    numeric = nb.numerical_gradient(lambda: nb.cross_entropy(nb.forward(work, X)[0], Y), work["W1"])
    assert nb.rel_error(grads["W1"], numeric) < 1e-7
    assert nb.rel_error(grads["W1"] * 1.01, numeric) > 1e-3


def test_functions_do_not_modify_their_inputs(nb, small_net):
    params, X, Y = small_net
    before = {k: v.copy() for k, v in params.items()}
    X_before = X.copy()
    _, cache = nb.forward(params, X)
    nb.backward(params, cache, Y)
    nb.gradient_check(params, X, Y)
    nb.predict(params, X)
    assert all(np.array_equal(before[k], params[k]) for k in params)
    np.testing.assert_array_equal(X, X_before)


def test_one_sgd_step_lowers_the_loss(nb, mnist_small, rng):
    X, y, _, _ = mnist_small
    X, Y = X[:256], nb.one_hot(y[:256])
    params = nb.init_params(784, 128, 10, rng)
    P, cache = nb.forward(params, X)
    before = nb.cross_entropy(P, Y)
    grads = nb.backward(params, cache, Y)
    updated = nb.sgd_update(params, grads, 0.1)
    assert updated is params  # documented: in place
    after = nb.cross_entropy(nb.forward(params, X)[0], Y)
    assert after < before - 0.05


def test_sgd_update_formula(nb):
    params = {"W": np.array([1.0, 2.0])}
    nb.sgd_update(params, {"W": np.array([0.5, -1.0])}, 0.1)
    np.testing.assert_allclose(params["W"], [0.95, 2.1])


def test_overfits_100_examples(nb, mnist_small):
    X, y, _, _ = mnist_small
    params, history = nb.train(
        X[:100],
        y[:100],
        X[100:200],
        y[100:200],
        hidden_units=128,
        epochs=50,
        batch_size=20,
        lr=0.5,
        seed=0,
        progress=False,
    )
    assert nb.accuracy(nb.predict(params, X[:100]), y[:100]) == 1.0
    assert history["train_loss"][-1] < 0.05


def test_train_learns_and_returns_a_full_history(nb, mnist_small):
    X, y, X_val, y_val = mnist_small
    X_before = X.copy()
    params, history = nb.train(
        X, y, X_val, y_val, hidden_units=64, epochs=3, batch_size=128, lr=0.5, seed=1, progress=False
    )
    assert set(history) >= {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert all(len(history[k]) == 3 for k in ("train_loss", "train_acc", "val_loss", "val_acc"))
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_acc"][-1] == pytest.approx(nb.accuracy(nb.predict(params, X_val), y_val))
    assert history["val_acc"][-1] > 0.8
    assert params["W1"].shape == (784, 64) and params["W1"].dtype == np.float32
    np.testing.assert_array_equal(X, X_before)


def test_predict_and_accuracy(nb, rng):
    params = nb.init_params(4, 3, 2, rng, dtype=np.float64)
    X = rng.standard_normal((5, 4))
    np.testing.assert_array_equal(nb.predict(params, X), nb.forward(params, X)[0].argmax(axis=1))
    assert nb.accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75


def test_save_load_round_trip_is_exact(nb, tmp_path, rng):
    params = nb.init_params(784, 32, 10, rng)
    path = nb.save_model(tmp_path / "m.npz", params, hidden_units=32, learning_rate=0.5, seed=0, train_size=None)
    loaded = nb.load_model(path)
    assert loaded.keys() == params.keys()
    for k in params:
        assert loaded[k].dtype == params[k].dtype
        np.testing.assert_array_equal(loaded[k], params[k])
    with np.load(path, allow_pickle=False) as f:  # settings are plain arrays, readable without pickle
        assert f["hidden_units"] == 32 and f["learning_rate"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def test_split_dev_is_seeded_and_disjoint(nb):
    X = np.arange(100).reshape(100, 1)
    y = np.arange(100)
    a = nb.split_dev(X, y, 10, seed=3)
    b = nb.split_dev(X, y, 10, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    X_train, y_train, X_dev, y_dev = a
    assert len(y_dev) == 10 and len(y_train) == 90
    assert not set(y_train) & set(y_dev)
    assert len(nb.split_dev(X, y, 10, seed=3, train_size=20)[1]) == 20
