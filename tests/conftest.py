"""Shared fixtures. The tests run the notebook's own code, never a copy of it: see notebook_module.py."""

import os

import numpy as np
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


@pytest.fixture(scope="session")
def model(nb):
    """The committed mnist_model.npz, read with the notebook's load_model."""
    return nb.load_model(ROOT / "mnist_model.npz")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def small_net(nb, rng):
    """A float64 6-5-4 network with a batch of 9 examples."""
    params = nb.init_params(6, 5, 4, rng, dtype=np.float64)
    X = rng.standard_normal((9, 6))
    Y = nb.one_hot(rng.integers(0, 4, size=9), 4).astype(np.float64)
    return params, X, Y


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI set, as .ci/run sets it) every test must run: a test that would be skipped fails, saying why."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"
