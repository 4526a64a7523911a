"""Section 13 (inside the network): confusion matrix, confident mistakes, weight pictures, PCA, and the
committed notebook's figures. The numbers use the committed model on the full official test set."""

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from notebook_module import NOTEBOOK, ROOT

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURES = [  # saved by the notebook into images/ and shown in its outputs
    "confusion_matrix.png",
    "confident_mistakes.png",
    "first_layer_weights.png",
    "hidden_pca.png",
    "my_digit_result.png",
]


def figure_cells_without_images(notebook_path, names=FIGURES):
    """Names of figures whose saving cell (the code cell mentioning "name") has no image/png output.

    Used on the committed notebook by the test below; point it at a papermill output to check a fresh run.
    """
    cells = json.loads(Path(notebook_path).read_text(encoding="utf-8"))["cells"]
    missing = []
    for name in names:
        found = [c for c in cells if c["cell_type"] == "code" and f'"{name}"' in "".join(c["source"])]
        has_png = any("image/png" in out.get("data", {}) for c in found for out in c.get("outputs", []))
        if len(found) != 1 or not has_png:
            missing.append(name if found else f"{name} (no cell saves it)")
    return missing


@pytest.fixture(scope="module")
def test_set(nb, mnist_small, model):
    """The full official test set (10,000 images), with the committed model's probabilities."""
    X = np.concatenate([mnist_small[0], mnist_small[2]])
    y = np.concatenate([mnist_small[1], mnist_small[3]])
    P, _ = nb.forward(model, X)
    return X, y, P


def test_confusion_matrix_small_example(nb):
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    cm = nb.confusion_matrix(y_true, y_pred, n_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_allclose(nb.per_class_accuracy(cm), [0.5, 1.0, 2 / 3])
    np.testing.assert_array_equal(y_pred, [0, 1, 1, 2, 0, 2])  # inputs untouched


def test_confusion_matrix_on_the_test_set(nb, test_set):
    X, y, P = test_set
    y_pred = P.argmax(axis=1)
    cm = nb.confusion_matrix(y, y_pred)
    assert cm.shape == (10, 10)
    assert cm.sum() == len(y) == 10_000
    assert np.trace(cm) / cm.sum() == pytest.approx(nb.accuracy(y_pred, y))
    assert nb.accuracy(y_pred, y) > 0.97  # the committed model
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(y, minlength=10))  # rows: true classes
    np.testing.assert_array_equal(cm.sum(axis=0), np.bincount(y_pred, minlength=10))  # columns: predictions
    per_class = nb.per_class_accuracy(cm)
    expected = [np.mean(y_pred[y == d] == d) for d in range(10)]
    np.testing.assert_allclose(per_class, expected)


def test_per_class_accuracy_of_an_absent_class_is_zero_not_nan(nb):
    cm = nb.confusion_matrix(np.array([0, 0]), np.array([0, 1]), n_classes=3)
    np.testing.assert_array_equal(nb.per_class_accuracy(cm), [0.5, 0.0, 0.0])


def test_most_confident_mistakes_are_wrong_and_sorted(nb, test_set):
    _, y, P = test_set
    idx = nb.most_confident_mistakes(P, y, k=24)
    assert len(idx) == 24
    assert np.all(P[idx].argmax(axis=1) != y[idx]), "every listed image must really be misclassified"
    confidence = P[idx].max(axis=1)
    assert np.all(np.diff(confidence) <= 0), "sorted by confidence, largest first"
    wrong = np.flatnonzero(P.argmax(axis=1) != y)
    brute = np.sort(P[wrong].max(axis=1))[::-1][:24]  # the 24 highest confidences among all mistakes
    np.testing.assert_array_equal(confidence, brute)
    assert len(set(idx.tolist())) == 24


def test_most_confident_mistakes_edge_cases(nb):
    P = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=np.float32)
    y = np.array([1, 1, 1, 0])  # rows 0, 2, 3 are wrong, with confidence 0.9, 0.6, 0.7
    np.testing.assert_array_equal(nb.most_confident_mistakes(P, y, k=10), [0, 3, 2])  # k > mistakes: all
    np.testing.assert_array_equal(nb.most_confident_mistakes(P, y, k=1), [0])
    assert len(nb.most_confident_mistakes(P, P.argmax(axis=1), k=5)) == 0  # no mistakes


def test_hidden_activations_come_from_forward(nb, model, test_set):
    X = test_set[0][:500]
    A1 = nb.hidden_activations(model, X)
    assert A1.shape == (500, model["W1"].shape[1])
    np.testing.assert_allclose(A1, np.maximum(X @ model["W1"] + model["b1"], 0), rtol=1e-5, atol=1e-5)


def test_pca_2d_finds_the_directions_of_largest_variance(nb):
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))  # a random rotation
    stds = np.array([5.0, 2.0, 0.5, 0.2, 0.1])
    A = (rng.standard_normal((4000, 5)) * stds) @ Q.T + 3.0  # known principal axes Q[:, 0], Q[:, 1], offset 3
    A_before = A.copy()
    coords, explained = nb.pca_2d(A)
    assert coords.shape == (4000, 2) and explained.shape == (2,)
    np.testing.assert_allclose(coords.mean(axis=0), 0, atol=1e-9)  # centred
    cov = np.cov(coords.T)
    assert abs(cov[0, 1]) < 1e-8 * cov[0, 0]  # the two coordinates are uncorrelated
    assert cov[0, 0] > cov[1, 1]
    np.testing.assert_allclose(explained, stds[:2] ** 2 / np.sum(stds**2), rtol=0.1)
    centred = A - A.mean(axis=0)
    for j in range(2):  # the same projection as onto the true axes, up to sign
        corr = np.corrcoef(coords[:, j], centred @ Q[:, j])[0, 1]
        assert abs(corr) > 0.99
    np.testing.assert_array_equal(A, A_before)


def test_weight_mosaic_tiles_each_unit(nb):
    rng = np.random.default_rng(1)
    W1 = rng.standard_normal((784, 20)).astype(np.float32)
    mosaic = nb.weight_mosaic(W1, n_cols=8)  # 3 rows of 8 tiles, the last row with 4 empty tiles
    assert mosaic.shape == (3 * 29, 8 * 29)
    for h in (0, 7, 8, 19):
        r, c = divmod(h, 8)
        tile = mosaic[29 * r : 29 * r + 28, 29 * c : 29 * c + 28]
        np.testing.assert_allclose(tile, W1[:, h].reshape(28, 28) / np.abs(W1[:, h]).max(), rtol=1e-6)
    assert np.isnan(mosaic[2 * 29 :, 4 * 29 :]).all()  # no unit 20-23: empty
    assert np.nanmax(np.abs(mosaic)) == pytest.approx(1.0)


def test_plots_return_figures(nb, model, test_set):
    X, y, P = test_set
    cm = nb.confusion_matrix(y, P.argmax(axis=1))
    figures = []
    fig = nb.plot_confusion_matrix(cm)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 100 and texts[0] == str(cm[0, 0])  # every count is written in its cell
    figures.append(fig)
    idx = nb.most_confident_mistakes(P, y, k=10)
    fig = nb.plot_mistakes(X, y, P, idx, n_cols=5)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titled) == 10 and titled[0].startswith(f"true {y[idx[0]]}, said {P[idx[0]].argmax()}")
    figures.append(fig)
    figures.append(nb.plot_first_layer_weights(model["W1"]))
    assert figures[-1].axes[0].images[0].get_array().shape == nb.weight_mosaic(model["W1"]).shape
    coords, explained = nb.pca_2d(nb.hidden_activations(model, X[:1000]))
    fig = nb.plot_pca(coords, y[:1000], explained)
    assert len(fig.axes[0].collections) == 10  # one scatter per digit
    figures.append(fig)
    for fig in figures:
        assert isinstance(fig, matplotlib.figure.Figure)
        plt.close(fig)


def test_committed_notebook_shows_the_figures():
    """The committed, executed notebook must contain the section 13/14 figures as image/png outputs."""
    assert figure_cells_without_images(NOTEBOOK) == []


def test_key_figures_are_committed_in_images():
    for name in FIGURES:
        path = ROOT / "images" / name
        assert path.is_file(), f"{path} is missing: run the notebook with IMAGES_DIR = 'images'"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"


def test_show_prediction_marks_and_writes_what_lies_below_the_log_axis(nb, model, test_set):
    """Section 12: a probability below the axis' floor is not a missing bar: it gets a triangle, and every
    digit's probability is written above its bar."""
    X, y, P = test_set
    floor = 1e-8
    i = int(np.argmax((P < floor).sum(axis=1)))  # the image with the most probabilities below the floor
    fig, probs = nb.show_prediction(model, X[i], y[i], floor=floor)
    ax = fig.axes[1]
    below = np.flatnonzero(probs < floor)
    assert len(below) > 0
    marked = ax.collections[0].get_offsets()[:, 0]
    np.testing.assert_array_equal(np.sort(marked), below)
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"{p:.0e}" for p in probs]
    assert ax.get_ylim()[0] == pytest.approx(floor)
    plt.close(fig)


def test_first_layer_weights_figure_numbers_the_rows_and_columns(nb):
    """13.3's text names tiles by "row r, column c": the mosaic carries those numbers, at the tiles' centres,
    and unit j is at row j // n_cols + 1, column j % n_cols + 1."""
    rng = np.random.default_rng(2)
    W1 = rng.standard_normal((784, 20)).astype(np.float32)
    fig = nb.plot_first_layer_weights(W1, n_cols=8)  # 3 rows of 8 tiles
    ax = fig.axes[0]
    assert ax.xaxis.get_major_formatter().format_ticks(ax.get_xticks()) == [str(c) for c in range(1, 9)]
    assert ax.yaxis.get_major_formatter().format_ticks(ax.get_yticks()) == ["1", "2", "3"]
    mosaic = ax.images[0].get_array()
    j = 13  # row 2, column 6
    row, col = j // 8 + 1, j % 8 + 1
    x, y = int(round(ax.get_xticks()[col - 1])), int(round(ax.get_yticks()[row - 1]))
    np.testing.assert_allclose(mosaic[y, x], W1[:, j].reshape(28, 28)[13, 13] / np.abs(W1[:, j]).max(), rtol=1e-6)
    assert ax.get_xlabel() == "column" and ax.get_ylabel() == "row"
    plt.close(fig)


def test_gradient_descent_figure_has_a_colour_bar_for_the_step_number(nb):
    """The dots of "the whole picture" are coloured by step: a colour bar says so, one tick per step."""
    steps = 5
    fig = nb.draw_gradient_descent(lrs=(0.1, 1.05), steps=steps)
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1
    assert "step" in colour_bars[0].get_ylabel()
    np.testing.assert_array_equal(colour_bars[0].get_yticks(), np.arange(steps + 1))
    dots = [c for ax in fig.axes if ax not in colour_bars for c in ax.collections]
    assert len(dots) == 2 and all(len(d.get_offsets()) == steps + 1 for d in dots)
    plt.close(fig)
