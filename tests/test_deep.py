"""Section 16, "Going deeper": layers, batch norm, networks of any depth, RMSProp, folding, saving, PyTorch.

The RMSProp values below were worked out by hand from the formula in the notebook's markdown (not by calling
the notebook's functions), for theta = [1, -2], gradients g1 = [0.5, 1] then g2 = [-1, 2].
"""

import numpy as np
import pytest

from notebook_module import ROOT, notebook_cells

TOL = 1e-7  # the gradient checks' bound, as stated in the notebook


@pytest.fixture
def bn_param():
    def make(n, mode="train"):
        return {"mode": mode, "eps": 1e-5, "momentum": 0.9, "running_mean": np.zeros(n), "running_var": np.ones(n)}

    return make


def tiny_batch(nb, rng, sizes, m=8):
    X = rng.standard_normal((m, sizes[0]))
    Y = nb.one_hot(rng.integers(0, sizes[-1], m), sizes[-1]).astype(np.float64)
    return X, Y


# --- each layer on its own -------------------------------------------------------------------------------


def test_affine_layer_gradient_check(nb, rng):
    inputs = {"X": rng.standard_normal((7, 5)), "W": rng.standard_normal((5, 4)), "b": rng.standard_normal(4)}
    errors = nb.check_layer(nb.affine_forward, nb.affine_backward, inputs, rng)
    assert set(errors) == {"X", "W", "b"} and max(errors.values()) < TOL


def test_relu_layer_gradient_check(nb, rng):
    errors = nb.check_layer(nb.relu_forward, nb.relu_backward, {"Z": rng.standard_normal((7, 5))}, rng)
    assert max(errors.values()) < TOL


def test_dropout_layer_gradient_check_and_scaling(nb, rng):
    errors = nb.check_layer(
        lambda A: nb.dropout_forward(A, 0.5, np.random.default_rng(1)),
        nb.dropout_backward,
        {"A": rng.random((7, 5))},
        rng,
    )
    assert max(errors.values()) < TOL
    A = np.ones((2000, 50), dtype=np.float32)
    out, mask = nb.dropout_forward(A, 0.25, np.random.default_rng(0))
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.75)} and abs(out.mean() - 1) < 0.01
    assert out.dtype == np.float32 and nb.dropout_forward(A, 0.25, None)[0] is A  # no rng: evaluation, no dropout


def test_softmax_cross_entropy_layer(nb, rng):
    Z, Y = rng.standard_normal((7, 4)), nb.one_hot(rng.integers(0, 4, 7), 4).astype(np.float64)
    loss, dZ = nb.softmax_cross_entropy(Z, Y)
    assert loss == pytest.approx(nb.cross_entropy(nb.softmax(Z), Y))
    numeric = nb.numerical_gradient(lambda: nb.softmax_cross_entropy(Z, Y)[0], Z)
    assert nb.rel_error(dZ, numeric) < TOL


# --- batch normalisation ---------------------------------------------------------------------------------


def test_batchnorm_gradient_check(nb, rng, bn_param):
    inputs = {"x": 3 + 2 * rng.standard_normal((8, 4)), "gamma": 1 + rng.random(4), "beta": rng.random(4)}
    param = bn_param(4)
    errors = nb.check_layer(
        lambda x, g, b: nb.batchnorm_forward(x, g, b, dict(param)), nb.batchnorm_backward, inputs, rng
    )
    assert set(errors) == {"x", "gamma", "beta"} and max(errors.values()) < TOL


def test_batchnorm_train_mode_normalises_and_updates_running_averages(nb, rng, bn_param):
    x = 5 + 3 * rng.standard_normal((64, 6))
    param = bn_param(6)
    out, _ = nb.batchnorm_forward(x, np.ones(6), np.zeros(6), param)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-5)  # eps makes it a hair below 1
    # running = 0.9 * running + 0.1 * batch value, from mean 0 and variance 1
    np.testing.assert_allclose(param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(param["running_var"], 0.9 + 0.1 * x.var(axis=0), rtol=1e-12)
    gamma, beta = rng.random(6) + 0.5, rng.random(6)
    out, _ = nb.batchnorm_forward(x, gamma, beta, param)
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-5)


def test_batchnorm_running_averages_converge_and_test_mode_uses_them(nb, rng, bn_param):
    data = 5 + 3 * rng.standard_normal((20_000, 3))
    param = bn_param(3)
    for batch in np.split(data, 200):
        nb.batchnorm_forward(batch, np.ones(3), np.zeros(3), param)
    np.testing.assert_allclose(param["running_mean"], data.mean(axis=0), atol=0.3)
    np.testing.assert_allclose(param["running_var"], data.var(axis=0), rtol=0.15)
    test = dict(param, mode="test")
    before = {k: test[k].copy() for k in ("running_mean", "running_var")}
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 3.0])
    x = rng.standard_normal((5, 3))
    out, _ = nb.batchnorm_forward(x, gamma, beta, test)
    expected = gamma * (x - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5) + beta
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    alone, _ = nb.batchnorm_forward(x[:1], gamma, beta, test)  # one image gets the same answer alone
    np.testing.assert_array_equal(alone[0], out[0])
    for k, v in before.items():  # test mode never changes the running averages
        np.testing.assert_array_equal(test[k], v)
    with pytest.raises(ValueError, match="mode"):
        nb.batchnorm_forward(x, gamma, beta, dict(param, mode="eval"))


# --- networks of any depth -------------------------------------------------------------------------------


@pytest.mark.parametrize("batchnorm, dropout", [(False, 0.0), (True, 0.0), (True, 0.3)])
def test_deep_network_gradient_check(nb, rng, batchnorm, dropout):
    sizes = [6, 5, 4, 3]
    params = nb.init_deep_params(sizes, rng, batchnorm=batchnorm, dtype=np.float64)
    for k in params:
        if k.startswith(("gamma", "beta")):
            params[k] += rng.random(params[k].shape)
    X, Y = tiny_batch(nb, rng, sizes)
    errors = nb.deep_gradient_check(params, X, Y, dropout, seed=3)
    assert set(errors) == set(params) and max(errors.values()) < TOL


def test_deep_network_with_one_hidden_layer_is_the_core_network(nb, small_net):
    params, X, Y = small_net  # the core's 6-5-4 float64 network
    Z, caches = nb.deep_forward(params, X)
    P, cache = nb.forward(params, X)
    np.testing.assert_allclose(nb.softmax(Z), P, rtol=1e-12)
    loss, dZ = nb.softmax_cross_entropy(Z, Y)
    assert loss == pytest.approx(nb.cross_entropy(P, Y), rel=1e-12)
    ours, core = nb.deep_backward(dZ, caches), nb.backward(params, cache, Y)
    assert set(ours) == set(params)
    for k in params:
        np.testing.assert_allclose(ours[k], core[k], rtol=1e-10, atol=1e-14)


def test_init_deep_params_shapes_and_batchnorm_keys(nb, rng):
    params = nb.init_deep_params([784, 64, 32, 10], rng, batchnorm=True)
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (784, 64), "gamma1": (64,), "beta1": (64,), "W2": (64, 32), "gamma2": (32,), "beta2": (32,),
        "W3": (32, 10), "b3": (10,),
    }  # fmt: skip
    assert nb.layer_count(params) == 3 and all(v.dtype == np.float32 for v in params.values())
    assert set(nb.init_bn_params(params, 1e-5, 0.9)) == {1, 2}


def test_train_deep_runs_learns_and_is_reproducible(nb, mnist_small):
    X_train, y_train, X_dev, y_dev = mnist_small
    settings = dict(
        hidden=[32, 32], epochs=2, batch_size=50, lr=0.1, seed=0, batchnorm=True, dropout=0.1, weight_decay=1e-4,
        max_degrees=5, max_scale=0.05, max_shift=1, progress=False,
    )  # fmt: skip
    params, bn_params, history = nb.train_deep(X_train[:1000], y_train[:1000], X_dev[:500], y_dev[:500], **settings)
    again, _, _ = nb.train_deep(X_train[:1000], y_train[:1000], X_dev[:500], y_dev[:500], **settings)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert len(history["val_acc"]) == 2 and history["val_acc"][-1] > 0.6
    assert len(history["batch_loss"]) == 2 * (1000 // 50)
    assert nb.accuracy(nb.deep_predict(params, X_dev[:500], bn_params), y_dev[:500]) == history["val_acc"][-1]


def test_train_deep_reports_divergence(nb, mnist_small):
    X, y, X_dev, y_dev = mnist_small
    kwargs = dict(hidden=[64] * 4, epochs=1, batch_size=64, lr=50.0, seed=0, optimizer="sgd", schedule=None)
    with pytest.raises(FloatingPointError, match="diverged"):
        nb.train_deep(X[:640], y[:640], X_dev[:100], y_dev[:100], progress=False, **kwargs)
    _, _, history = nb.train_deep(X[:640], y[:640], X_dev[:100], y_dev[:100], raise_on_divergence=False, **kwargs)
    assert "diverged" in history


def test_random_affine_identity_range_and_input_untouched(nb, mnist_small):
    X = mnist_small[0][:64]
    copy = X.copy()
    np.testing.assert_allclose(nb.random_affine(X, 0, 0, 0, np.random.default_rng(0)), X, atol=1e-6)
    out = nb.random_affine(X, 15, 0.15, 2, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == X.dtype and out.min() >= 0 and out.max() <= 1 + 1e-6
    assert not np.allclose(out, X)
    np.testing.assert_array_equal(X, copy)
    again = nb.random_affine(X, 15, 0.15, 2, np.random.default_rng(0))
    np.testing.assert_array_equal(out, again)  # the same generator state, the same distortions


# --- folding, saving and loading ---------------------------------------------------------------------------


def bn_network(nb, rng, depth):
    sizes = [784, *[16] * (depth - 1), 10]
    params = nb.init_deep_params(sizes, rng, batchnorm=True)
    bn_params = nb.init_bn_params(params, 1e-5, 0.9)
    for layer, p in bn_params.items():
        p["running_mean"] = rng.standard_normal(sizes[layer]).astype(np.float32)
        p["running_var"] = (rng.random(sizes[layer]) + 0.5).astype(np.float32)
        params[f"gamma{layer}"] += rng.random(sizes[layer]).astype(np.float32)
        params[f"beta{layer}"] += rng.random(sizes[layer]).astype(np.float32)
    return params, bn_params


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_folded_save_load_round_trip(nb, rng, tmp_path, mnist_small, depth):
    X = mnist_small[2][:2000]
    params, bn_params = bn_network(nb, rng, depth)
    folded = nb.fold_batchnorm(params, bn_params)
    assert sorted(folded) == sorted(f"{p}{layer}" for layer in range(1, depth + 1) for p in "Wb")
    Z_bn, _ = nb.deep_forward(params, X, nb.eval_mode(bn_params))
    Z_folded, _ = nb.deep_forward(folded, X)
    np.testing.assert_allclose(Z_folded, Z_bn, rtol=1e-4, atol=1e-4)  # exact up to float32 rounding
    path = nb.save_model(tmp_path / f"deep{depth}.npz", folded, layer_sizes="test", test_accuracy=0.5)
    reloaded = nb.load_deep_model(path)
    assert all(np.array_equal(reloaded[k], folded[k]) for k in folded)
    np.testing.assert_array_equal(nb.deep_predict(reloaded, X), Z_folded.argmax(axis=1))


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p, w: p.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2]), ""),  # truncated
        (lambda p, w: p.write_text("W1,b1\n1,2\n"), ""),  # not an .npz at all
        (lambda p, w: write_npz(p, gamma=np.ones(3)), "no W1"),
        (lambda p, w: write_npz(p, W1=np.ones((784, 4)), W2=np.ones((4, 10)), b2=np.ones(10)), "missing"),
        (lambda p, w: write_npz(p, W1=np.ones((784, 4)), b1=np.ones(4), W2=np.ones((5, 10)), b2=np.ones(10)), "shapes"),
        (lambda p, w: write_npz(p, W1=np.ones((784, 10)), b1=np.ones(9)), "shapes"),
        (lambda p, w: write_npz(p, W1=np.full((784, 10), np.nan), b1=np.ones(10)), "finite"),
        (lambda p, w: write_npz(p, W1=np.ones((784, 10), dtype=np.int64), b1=np.ones(10)), "floating"),
        (lambda p, w: write_npz(p, W1=np.ones((784, 4)), gamma1=np.ones(4), beta1=np.ones(4)), "batch-norm"),
    ],
)
def test_load_deep_model_rejects_bad_files_naming_them(nb, rng, tmp_path, make, message):
    good = nb.save_model(tmp_path / "good.npz", nb.fold_batchnorm(*bn_network(nb, rng, 2)))
    bad = tmp_path / "bad_model.npz"
    make(bad, good)
    with pytest.raises(ValueError, match="bad_model.npz") as error:
        nb.load_deep_model(bad)
    assert message in str(error.value)


def test_load_deep_model_checks_input_and_output_sizes(nb, rng, tmp_path):
    path = nb.save_model(tmp_path / "deep.npz", nb.fold_batchnorm(*bn_network(nb, rng, 3)))
    assert nb.layer_count(nb.load_deep_model(path)) == 3
    with pytest.raises(ValueError, match="shapes"):
        nb.load_deep_model(path, n_in=100)
    with pytest.raises(ValueError, match="shapes"):
        nb.load_deep_model(path, n_out=3)


def test_committed_deep_model_reaches_99_percent_on_the_official_test_set(nb):
    path = ROOT / "mnist_model_deep.npz"
    if not path.exists():
        pytest.skip("mnist_model_deep.npz is not committed yet")
    params = nb.load_deep_model(path)
    X, y = nb.load_mnist_csv(ROOT / "data" / "mnist_test.csv.gz")
    assert nb.accuracy(nb.deep_predict(params, nb.to_float(X)), y) >= 0.99
    with np.load(path, allow_pickle=False) as f:
        assert float(f["test_accuracy"]) >= 0.99 and str(f["layer_sizes"]).startswith("784-")


# --- RMSProp ---------------------------------------------------------------------------------------------


def test_rmsprop_two_steps_by_hand(nb):
    # lr = 0.1, beta = 0.9, nu = 0 at the start; step = lr * g / (sqrt(nu) + eps)
    # step 1: nu = 0.1 * g1^2 = [0.025, 0.1]; g / sqrt(nu) = [3.16227766, 3.16227766]
    #         theta = [1 - 0.316227766, -2 - 0.316227766] = [0.683772234, -2.316227766]
    # step 2: nu = 0.9 * [0.025, 0.1] + 0.1 * [1, 4] = [0.1225, 0.49]; sqrt = [0.35, 0.7]
    #         g / sqrt(nu) = [-2.857142857, 2.857142857]; theta = [0.969486519, -2.601942052]
    theta = {"theta": np.array([1.0, -2.0])}
    state = {"nu": nb.zeros_like_params(theta)}
    nb.rmsprop_update(theta, {"theta": np.array([0.5, 1.0])}, state, lr=0.1, beta=0.9)
    np.testing.assert_allclose(state["nu"]["theta"], [0.025, 0.1], rtol=1e-12)
    np.testing.assert_allclose(theta["theta"], [0.683772234, -2.316227766], atol=1e-7)
    nb.rmsprop_update(theta, {"theta": np.array([-1.0, 2.0])}, state, lr=0.1, beta=0.9)
    np.testing.assert_allclose(state["nu"]["theta"], [0.1225, 0.49], rtol=1e-12)
    np.testing.assert_allclose(theta["theta"], [0.969486519, -2.601942052], atol=1e-7)


def test_rmsprop_beats_sgd_in_the_narrow_valley(nb):
    curvature = np.array([1.0, 100.0])
    sgd, rms = {"theta": np.array([1.0, 1.0])}, {"theta": np.array([1.0, 1.0])}
    state = {"nu": nb.zeros_like_params(rms)}
    for _ in range(100):
        nb.sgd_update(sgd, {"theta": curvature * sgd["theta"]}, 0.019)
        nb.rmsprop_update(rms, {"theta": curvature * rms["theta"]}, state, 0.019, beta=0.9)
    assert np.linalg.norm(rms["theta"]) < np.linalg.norm(sgd["theta"]) / 10


def test_train_deep_accepts_every_optimizer(nb, mnist_small):
    X, y, X_dev, y_dev = mnist_small
    for optimizer, lr in [("sgd", 0.5), ("momentum", 0.05), ("rmsprop", 0.003), ("adam", 0.003)]:
        _, _, history = nb.train_deep(
            X[:1000], y[:1000], X_dev[:500], y_dev[:500], hidden=[32], epochs=1, batch_size=50, lr=lr, seed=0,
            optimizer=optimizer, progress=False,
        )  # fmt: skip
        assert history["val_acc"][-1] > 0.5, optimizer  # guessing: 0.1


# --- PyTorch ---------------------------------------------------------------------------------------------


def test_pytorch_gives_the_same_loss_and_gradients(nb, rng):
    pytest.importorskip("torch")
    sizes = [20, 16, 12, 10]
    params = nb.init_deep_params(sizes, rng, dtype=np.float64)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}  # non-zero biases too
    X, y = rng.standard_normal((32, sizes[0])), rng.integers(0, sizes[-1], 32)
    Z, caches = nb.deep_forward(params, X)
    loss, dZ = nb.softmax_cross_entropy(Z, nb.one_hot(y, sizes[-1]).astype(np.float64))
    grads = nb.deep_backward(dZ, caches)
    torch_loss, torch_grads = nb.torch_loss_and_grads(nb.to_torch_sequential(params), X, y)
    assert abs(loss - torch_loss) < 1e-12
    assert set(torch_grads) == set(params)
    for k in params:
        np.testing.assert_allclose(torch_grads[k], grads[k], rtol=0, atol=1e-12)


def test_pytorch_training_loop_runs_and_learns(nb, mnist_small):
    torch = pytest.importorskip("torch")
    X, y, X_dev, y_dev = mnist_small
    model = nb.train_torch(
        X[:2000], y[:2000], hidden=[64], epochs=1, batch_size=50, lr=0.1, momentum=0.9, dropout=0.1, bn_eps=1e-5,
        bn_momentum=0.9, seed=0,
    )  # fmt: skip
    assert not model.training
    with torch.no_grad():
        predictions = model(torch.from_numpy(X_dev[:1000])).argmax(dim=1).numpy()
    assert nb.accuracy(predictions, y_dev[:1000]) > 0.8


# --- the named steps of random_affine (16.6) and train_deep (16.7) -----------------------------------------


def test_source_pixels_and_bilinear_sample(nb):
    """No distortion reads every pixel from itself; a whole-pixel shift moves the image by exactly that."""
    side, m = 28, 3
    zeros, ones = np.zeros((m, 1), np.float32), np.ones((m, 1), np.float32)
    src_r, src_c = nb.source_pixels(zeros, ones, zeros, zeros, side)
    rows, cols = np.indices((side, side)).reshape(2, -1) + 1  # +1: the frame of zeros above and left
    np.testing.assert_allclose(src_r, np.broadcast_to(rows, (m, side * side)), atol=1e-5)
    np.testing.assert_allclose(src_c, np.broadcast_to(cols, (m, side * side)), atol=1e-5)
    X = np.zeros((m, side * side), np.float32)
    X[:, 14 * side + 14] = 1
    moved = nb.bilinear_sample(X, *nb.source_pixels(zeros, ones, ones * 2, ones * -1, side), side)
    assert np.all(moved.reshape(m, side, side)[:, 16, 13] == pytest.approx(1.0))  # down 2, left 1
    assert moved.sum() == pytest.approx(m)


def test_deep_optimizer_step_adds_rmsprop_to_optimizer_step(nb):
    theta = {"theta": np.array([1.0, -2.0])}
    grad = {"theta": np.array([0.5, 1.0])}
    ours, state = {"theta": theta["theta"].copy()}, nb.init_optimizer_state(theta)
    nb.deep_optimizer_step(ours, grad, state, 0.1, 1, "rmsprop", rmsprop_beta=0.9)
    np.testing.assert_allclose(ours["theta"], [0.683772234, -2.316227766], atol=1e-7)  # the RMSProp test above
    ours, state = {"theta": theta["theta"].copy()}, nb.init_optimizer_state(theta)
    nb.deep_optimizer_step(ours, grad, state, 0.1, 1, "momentum", momentum=0.9)
    np.testing.assert_allclose(ours["theta"], [0.95, -2.1])


def test_train_deep_rejects_bad_arguments_by_name(nb, mnist_small):
    X, y, X_dev, y_dev = mnist_small
    common = dict(hidden=[8], epochs=1, batch_size=50, lr=0.1, seed=0, progress=False)
    for bad, message in [
        (dict(optimizer="lbfgs"), "optimizer"),
        (dict(schedule="step"), "schedule"),
        (dict(epochs=0), "epochs"),
        (dict(hidden=[8, 0]), "hidden width"),
    ]:
        with pytest.raises(ValueError, match=message):
            nb.train_deep(X[:100], y[:100], X_dev[:50], y_dev[:50], **dict(common, **bad))


def test_the_initialisation_figure_legend_matches_the_markers_of_both_panels():
    """16.4's figure has one legend for its two panels: every line must use the marker the legend shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = next(
        "".join(c["source"])
        for c in notebook_cells()
        if c["cell_type"] == "code" and '"deep_init.png"' in "".join(c["source"])
    )
    spread = {scale: ([0.3 * scale, 0.3 * scale**2], [1e-3 * scale, 1e-3 * scale**2]) for scale in (0.5, 1.0, 2.0)}
    namespace = dict(np=np, plt=plt, spread=spread, save_figure=lambda *args: None, IMAGES_DIR=None)
    namespace |= dict(INIT_DEMO_LAYERS=2, INIT_DEMO_WIDTH=4, INIT_DEMO_IMAGES=3)
    exec(source.replace("plt.show()", ""), namespace)
    fig = namespace["fig"]
    (legend,) = fig.legends
    shown = {text.get_text(): handle.get_marker() for text, handle in zip(legend.get_texts(), legend.legend_handles)}
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == 2 * len(spread)
    for line in lines:
        assert line.get_marker() == shown[line.get_label()], line.get_label()
    plt.close(fig)
