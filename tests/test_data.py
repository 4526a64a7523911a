"""Reading MNIST CSVs: the three Kaggle layouts, plain and gzip, every kind of bad file, and where data comes from."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from kagglehub_layout import cached_dataset_folder
from notebook_module import ROOT

DATA = ROOT / "data"
HEADERS = {
    "mnist-in-csv": ["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)],
    "digit-recognizer": ["label"] + [f"pixel{i}" for i in range(784)],
    "fashion-mnist": ["label"] + [f"pixel{i}" for i in range(1, 785)],
}


@pytest.fixture(scope="module")
def real_rows(nb):
    """The first 20 rows of the real test set: X uint8 (20, 784), y (20,)."""
    X, y = nb.load_mnist_csv(DATA / "mnist_test.csv.gz")
    return X[:20], y[:20]


def csv_text(header, X, y):
    lines = [",".join(header)] if header else []
    lines += [",".join(map(str, [label, *row])) for label, row in zip(y, X)]
    return "\n".join(lines) + "\n"


def write(path, text):
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_full_mnist_files_shipped_in_data(nb):
    X, y = nb.load_mnist_csv(DATA / "mnist_train.csv.gz")
    assert X.shape == (60000, 784) and X.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert X.max() == 255 and X.min() == 0
    assert "CC BY-SA 3.0" in (DATA / "README.md").read_text()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("layout", sorted(HEADERS))
def test_reads_each_kaggle_layout_plain_and_gzip(nb, tmp_path, real_rows, layout, suffix):
    X, y = real_rows
    path = write(tmp_path / f"{layout}_train{suffix}", csv_text(HEADERS[layout], X, y))
    X_read, y_read = nb.load_mnist_csv(path)
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)
    assert X_read.dtype == np.uint8 and y_read.dtype == np.int64


def test_file_without_header_keeps_every_row(nb, tmp_path, real_rows):
    X, y = real_rows
    X_read, y_read = nb.load_mnist_csv(write(tmp_path / "noheader.csv", csv_text(None, X, y)))
    assert len(y_read) == len(y)  # the first row is data, not silently dropped as a header
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(y_read, y)


# ---- bad files: the error names the file and the problem (issue: robustness) ----


def bad_file(tmp_path, real_rows, edit, name="bad.csv"):
    """Write the 20 real rows with mnist-in-csv's header, after edit(lines) changed the list of lines."""
    X, y = real_rows
    lines = csv_text(HEADERS["mnist-in-csv"], X, y).splitlines()
    lines = edit(lines)
    return write(tmp_path / name, "\n".join(lines) + ("\n" if lines else ""))


def set_cell(lines, line_no, col, value):
    cells = lines[line_no - 1].split(",")
    cells[col] = value
    lines[line_no - 1] = ",".join(cells)
    return lines


def test_missing_file(nb, tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        nb.load_mnist_csv(path)


@pytest.mark.parametrize(
    ("case", "edit", "message"),
    [
        ("empty", lambda lines: [], "empty"),
        ("header only", lambda lines: lines[:1], "no data rows"),
        ("no label column", lambda lines: [",".join(line.split(",")[1:]) for line in lines], "no 'label' column"),
        (
            "label not first",
            lambda lines: [",".join(line.split(",")[1:] + line.split(",")[:1]) for line in lines],
            "must come first",
        ),
        (
            "wrong number of columns",
            lambda lines: [",".join(line.split(",")[:-1]) for line in lines],
            "expected 785 columns.*found 784",
        ),
        ("ragged row, too many fields", lambda lines: lines[:4] + [lines[4] + ",0"] + lines[5:], "line 5"),
        (
            "ragged row, too few fields",
            lambda lines: lines[:6] + [lines[6].rsplit(",", 1)[0]] + lines[7:],
            "line 7.*too few",
        ),
        ("non-numeric cell", lambda lines: set_cell(lines, 3, 100, "abc"), "line 3.*non-numeric.*'abc'.*column 101"),
        ("blank cell", lambda lines: set_cell(lines, 8, 10, ""), "line 8.*blank cell.*column 11"),
        ("label above 9", lambda lines: set_cell(lines, 2, 0, "10"), "line 2.*label 10 .*outside 0-9"),
        ("negative label", lambda lines: set_cell(lines, 4, 0, "-1"), "line 4.*label -1 .*outside 0-9"),
        ("pixel above 255", lambda lines: set_cell(lines, 5, 300, "256"), "line 5.*pixel value 256 .*outside 0-255"),
        ("negative pixel", lambda lines: set_cell(lines, 6, 1, "-3"), "line 6.*pixel value -3 .*outside 0-255"),
        ("fractional pixel", lambda lines: set_cell(lines, 9, 50, "0.5"), "line 9.*0.5 is not a whole number"),
    ],
)
def test_bad_csv_gets_a_clear_error(nb, tmp_path, real_rows, case, edit, message):
    path = bad_file(tmp_path, real_rows, edit)
    with pytest.raises(ValueError, match=message) as info:
        nb.load_mnist_csv(path)
    assert str(path) in str(info.value), f"{case}: the message must name the file"


def test_truncated_gzip(nb, tmp_path):
    data = (DATA / "mnist_test.csv.gz").read_bytes()[:200_000]
    path = tmp_path / "mnist_test.csv.gz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="gzip") as info:
        nb.load_mnist_csv(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip(nb, tmp_path):
    data = bytearray((DATA / "mnist_test.csv.gz").read_bytes()[:50_000])
    data[1000:1400] = os.urandom(400)
    path = tmp_path / "corrupt.csv.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="gzip|corrupt|cannot be read") as info:
        nb.load_mnist_csv(path)
    assert str(path) in str(info.value)


def test_not_gzip_at_all(nb, tmp_path):
    path = tmp_path / "fake.csv.gz"
    path.write_text("label,1x1\n1,2\n")
    with pytest.raises(ValueError, match="gzip") as info:
        nb.load_mnist_csv(path)
    assert str(path) in str(info.value)


# ---- where the data comes from ----


def test_find_prefers_data_dir(nb, tmp_path):
    train, test, source = nb.find_mnist_csvs(DATA, "oddrationale/mnist-in-csv/versions/2", kaggle_input=tmp_path)
    assert (train.name, test.name) == ("mnist_train.csv.gz", "mnist_test.csv.gz")
    assert "local folder" in source


def test_find_uses_attached_kaggle_input(nb, tmp_path, real_rows):
    X, y = real_rows
    folder = tmp_path / "input" / "fashionmnist"
    folder.mkdir(parents=True)
    write(folder / "fashion-mnist_train.csv", csv_text(HEADERS["fashion-mnist"], X, y))
    write(folder / "fashion-mnist_test.csv", csv_text(HEADERS["fashion-mnist"], X, y))
    train, test, source = nb.find_mnist_csvs(tmp_path / "empty", "x/y/versions/1", kaggle_input=tmp_path / "input")
    assert train.name == "fashion-mnist_train.csv" and test.name == "fashion-mnist_test.csv"
    assert "Kaggle input" in source


@pytest.fixture
def kagglehub_cache(tmp_path, monkeypatch, real_rows):
    """A pre-filled kagglehub cache for the versioned handle, the way kagglehub itself lays it out."""
    X, y = real_rows
    cache = tmp_path / "kagglehub"
    folder = cached_dataset_folder(cache)
    write(folder / "mnist_train.csv", csv_text(HEADERS["mnist-in-csv"], X, y))
    write(folder / "mnist_test.csv", csv_text(HEADERS["mnist-in-csv"], X[:10], y[:10]))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    return cache, folder


def test_kagglehub_path_without_network(nb, tmp_path, kagglehub_cache, real_rows):
    """The real kagglehub serves a versioned handle from its cache: no network, nothing deleted."""
    cache, folder = kagglehub_cache
    train, test, source = nb.find_mnist_csvs(
        tmp_path / "empty", "oddrationale/mnist-in-csv/versions/2", kaggle_input=tmp_path / "no_kaggle"
    )
    assert "kagglehub" in source
    assert train == folder / "mnist_train.csv" and test == folder / "mnist_test.csv"
    X, y = nb.load_mnist_csv(train)
    np.testing.assert_array_equal(X, real_rows[0])
    assert (folder / "mnist_train.csv").exists() and (folder / "mnist_test.csv").exists()


def test_no_data_anywhere_lists_what_was_tried_and_keeps_the_cache(nb, tmp_path, kagglehub_cache):
    cache, folder = kagglehub_cache
    before = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    # an unversioned handle makes kagglehub ask Kaggle, which this machine (or an offline laptop) cannot reach
    with pytest.raises(FileNotFoundError) as info:
        nb.find_mnist_csvs(
            tmp_path / "empty", "oddrationale/mnist-in-csv-missing/versions/1", kaggle_input=tmp_path / "no_kaggle"
        )
    message = str(info.value)
    assert "empty" in message and "no_kaggle" in message and "kagglehub" in message
    assert "DATA_DIR" in message and "attach" in message  # how to fix it
    assert all((cache / p).exists() for p in before)  # kagglehub's cache is never deleted
    assert (folder / "mnist_train.csv").exists()
