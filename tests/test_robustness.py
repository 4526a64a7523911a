"""Bad model files, atomic saves, bad settings, divergence and determinism."""

import os
import zipfile

import numpy as np
import pytest


@pytest.fixture
def params(nb):
    return nb.init_params(784, 16, 10, np.random.default_rng(0))


@pytest.fixture
def saved(nb, params, tmp_path):
    return nb.save_model(tmp_path / "model.npz", params, hidden_units=16, seed=0)


# ---- model files ----


def test_load_model_missing_file(nb, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        nb.load_model(tmp_path / "absent.npz")


def test_load_model_never_unpickles(nb, params, tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, W1=params["W1"], b1=params["b1"], W2=params["W2"], b2=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz") as info:
        nb.load_model(path)
    assert "pickle" in str(info.value).lower() or "cannot be read" in str(info.value)


def test_load_model_missing_keys(nb, params, tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, W1=params["W1"], b1=params["b1"])
    with pytest.raises(ValueError, match=r"partial.npz.*missing W2, b2"):
        nb.load_model(path)


@pytest.mark.parametrize(
    "change",
    [
        {"W1": np.zeros((783, 16), np.float32)},  # wrong input size
        {"b1": np.zeros(15, np.float32)},  # hidden sizes disagree
        {"W2": np.zeros((16, 9), np.float32)},  # wrong number of classes
        {"b2": np.zeros((1, 10), np.float32)},  # wrong rank
        {"W1": np.zeros(784 * 16, np.float32)},  # flattened
    ],
)
def test_load_model_shapes_must_fit_together(nb, params, tmp_path, change):
    path = tmp_path / "shapes.npz"
    np.savez(path, **{**params, **change})
    with pytest.raises(ValueError, match=r"shapes.npz.*shapes do not fit a 784 -> H -> 10"):
        nb.load_model(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_load_model_non_finite_values(nb, params, tmp_path, bad):
    W2 = params["W2"].copy()
    W2[3, 4] = bad
    path = tmp_path / "nonfinite.npz"
    np.savez(path, **{**params, "W2": W2})
    with pytest.raises(ValueError, match=r"nonfinite.npz.*W2.*not finite"):
        nb.load_model(path)


def test_load_model_truncated(nb, saved, tmp_path):
    path = tmp_path / "truncated.npz"
    path.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated.npz.*truncated or corrupt"):
        nb.load_model(path)


def test_load_model_corrupt(nb, saved, tmp_path):
    data = bytearray(saved.read_bytes())
    data[2000:2100] = b"\xff" * 100  # inside W1's data: the zip's CRC check fails
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt.npz.*(truncated or corrupt|cannot be read)"):
        nb.load_model(path)


def test_load_model_not_a_zip(nb, tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("this is not a model")
    with pytest.raises(ValueError, match=r"text.npz"):
        nb.load_model(path)


def test_save_model_is_atomic_when_interrupted(nb, params, saved, monkeypatch):
    """A save that dies half-way keeps the old model intact and leaves no temporary file."""
    good = saved.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        nb.save_model(saved, params, hidden_units=16)
    assert saved.read_bytes() == good
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.npz"]


def test_save_model_uses_a_temporary_file_then_replace(nb, params, tmp_path, monkeypatch):
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((str(src), str(dst)))
        assert os.path.dirname(str(src)) == os.path.dirname(str(dst))  # same folder, so the rename is atomic
        assert zipfile.is_zipfile(src)  # complete before it takes the real name
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    nb.save_model(tmp_path / "m.npz", params)
    assert len(calls) == 1 and calls[0][1] == str(tmp_path / "m.npz")


def test_save_model_refuses_nan_weights(nb, params, tmp_path):
    params = {**params, "W1": np.full_like(params["W1"], np.nan)}
    with pytest.raises(ValueError, match=r"m.npz.*W1.*non-finite"):
        nb.save_model(tmp_path / "m.npz", params)
    assert not any(tmp_path.iterdir())


# ---- settings ----

GOOD = dict(
    data_dir="data",
    dev_size=5000,
    train_size=None,
    hidden_units=128,
    epochs=20,
    batch_size=128,
    lr=0.5,
    seed=0,
    model_path="mnist_model.npz",
)


def test_good_settings_pass(nb):
    nb.check_settings(**GOOD)
    nb.check_settings(**{**GOOD, "train_size": 1000, "lr": 1})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("epochs", 0, "EPOCHS"),
        ("epochs", 2.5, "EPOCHS"),
        ("epochs", "10", "EPOCHS"),
        ("batch_size", -1, "BATCH_SIZE"),
        ("batch_size", None, "BATCH_SIZE"),
        ("lr", 0, "LEARNING_RATE"),
        ("lr", -0.1, "LEARNING_RATE"),
        ("lr", float("nan"), "LEARNING_RATE"),
        ("lr", "0.1", "LEARNING_RATE"),
        ("hidden_units", 0, "HIDDEN_UNITS"),
        ("hidden_units", True, "HIDDEN_UNITS"),
        ("train_size", 0, "TRAIN_SIZE"),
        ("train_size", 10.0, "TRAIN_SIZE"),
        ("dev_size", 0, "DEV_SIZE"),
        ("seed", -1, "SEED"),
        ("data_dir", "", "DATA_DIR"),
        ("data_dir", 3, "DATA_DIR"),
        ("model_path", "model.pkl", "MODEL_PATH"),
    ],
)
def test_bad_setting_is_named(nb, name, value, message):
    with pytest.raises(ValueError, match=message) as info:
        nb.check_settings(**{**GOOD, name: value})
    assert repr(value) in str(info.value) or name == "data_dir"


def test_data_dir_that_is_a_file(nb, tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("x")
    with pytest.raises(ValueError, match="DATA_DIR.*is a file"):
        nb.check_settings(**{**GOOD, "data_dir": str(f)})


def test_train_size_larger_than_the_data(nb):
    X, y = np.zeros((100, 4), np.float32), np.zeros(100, np.int64)
    with pytest.raises(ValueError, match="TRAIN_SIZE=500"):
        nb.split_dev(X, y, 10, seed=0, train_size=500)
    with pytest.raises(ValueError, match="DEV_SIZE=100"):
        nb.split_dev(X, y, 100, seed=0)


@pytest.mark.parametrize(("name", "value"), [("epochs", 0), ("batch_size", 0), ("lr", -1.0), ("hidden_units", 0)])
def test_train_checks_its_arguments_before_any_work(nb, name, value):
    X, y = np.zeros((10, 4), np.float32), np.zeros(10, np.int64)
    kwargs = dict(hidden_units=4, epochs=1, batch_size=5, lr=0.1, seed=0, progress=False)
    with pytest.raises(ValueError, match=name if name != "lr" else "LEARNING_RATE"):
        nb.train(X, y, X, y, **{**kwargs, name: value})


# ---- divergence and determinism ----


def test_divergence_stops_with_a_clear_error(nb, mnist_small):
    X, y, X_val, y_val = mnist_small
    with pytest.raises(FloatingPointError, match=r"diverged at epoch 1, batch \d+.*smaller") as info:
        with np.errstate(all="ignore"):
            nb.train(X, y, X_val, y_val, hidden_units=32, epochs=2, batch_size=128, lr=50.0, seed=0, progress=False)
    assert "50.0" in str(info.value)


def test_non_finite_loss_stops_training(nb, mnist_small):
    X, y, X_val, y_val = mnist_small
    huge = X[:500].copy()
    huge[0, 0] = np.nan  # one bad number poisons the first batch's loss
    with pytest.raises(FloatingPointError, match=r"diverged at epoch 1, batch \d+: the loss is nan"):
        with np.errstate(all="ignore"):
            nb.train(
                huge, y[:500], X_val, y_val, hidden_units=8, epochs=1, batch_size=100, lr=0.1, seed=0, progress=False
            )


def test_same_seed_gives_bit_identical_results_and_another_seed_differs(nb, mnist_small):
    X, y, X_val, y_val = mnist_small
    kwargs = dict(hidden_units=32, epochs=2, batch_size=64, lr=0.5, progress=False)
    p1, h1 = nb.train(X[:2000], y[:2000], X_val[:500], y_val[:500], seed=7, **kwargs)
    p2, h2 = nb.train(X[:2000], y[:2000], X_val[:500], y_val[:500], seed=7, **kwargs)
    p3, h3 = nb.train(X[:2000], y[:2000], X_val[:500], y_val[:500], seed=8, **kwargs)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert h1[k] == h2[k]
    assert not np.array_equal(p1["W1"], p3["W1"])
    assert h1["train_loss"] != h3["train_loss"]
