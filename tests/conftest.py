"""Shared fixtures. The tests run the notebook's own code, never a copy of it: see notebook_module.py."""

import pytest

from notebook_module import ROOT, notebook_functions

DATA = ROOT / "data"


@pytest.fixture(scope="session")
def nb():
    """The notebook's functions, e.g. nb.forward, nb.train."""
    return notebook_functions()


@pytest.fixture(scope="session")
def mnist_small(nb):
    """A small, fixed slice of the real MNIST: (X_train, y_train, X_test, y_test) as float32 / int64."""
    X_test_u8, y_test = nb.load_mnist_csv(DATA / "mnist_test.csv.gz")
    X = nb.to_float(X_test_u8)
    return X[:5000], y_test[:5000], X[5000:], y_test[5000:]
