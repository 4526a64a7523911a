"""Smoke test of benchmarks/bench_train.py: it runs end to end on a tiny slice and reports what it should.

Never asserts a timing (those belong in the benchmark's own output, see benchmarks/README.md).
"""

import sys

import numpy as np
import pytest

from notebook_module import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_train  # noqa: E402


def test_epoch_flops_formula():
    # forward X W1 and A1 W2, backward dW1 and dW2, dA1: 4 m 784 H + 6 m H 10
    assert bench_train.epoch_flops(1, hidden=128) == 4 * 784 * 128 + 6 * 128 * 10
    assert bench_train.epoch_flops(60_000) == 60_000 * bench_train.epoch_flops(1)


def test_parse_gnu_time_output():
    text = "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50\n\tMaximum resident set size (kbytes): 524288\n"
    wall, rss_mib = bench_train._parse_time_v(text)
    assert wall == pytest.approx(62.5)
    assert rss_mib == pytest.approx(512)


@pytest.mark.parametrize("shuffle", ["gather", "copy"])
def test_floor_does_the_work_and_leaves_the_data_alone(mnist_small, shuffle):
    X = mnist_small[0][:1000]
    before = X.copy()
    assert bench_train.time_floor(X, shuffle) > 0
    np.testing.assert_array_equal(X, before)


def test_benchmark_runs_and_reports(nb, mnist_small):
    pytest.importorskip("torch")
    pytest.importorskip("threadpoolctl")
    X, y, X_dev, y_dev = mnist_small
    result = bench_train.run_benchmark(
        nb, X[:1000], y[:1000], X_dev[:500], y_dev[:500], epochs=1, repeats=2, matmul_n=256, log=lambda *a: None
    )
    for stat in ("median", "best"):
        numbers = result[stat]
        keys = "ours_s torch_s ratio_ours_over_torch peak_gflops ours_fraction_of_peak ceiling_s floor_gather_s"
        for key in (keys + " floor_copy_s floor_gather_fraction_of_peak floor_copy_fraction_of_peak").split():
            assert numbers[key] > 0, (stat, key)
        assert numbers["ratio_ours_over_torch"] == pytest.approx(numbers["ours_s"] / numbers["torch_s"])
        assert numbers["ratio_floor_over_torch"] == pytest.approx(numbers["floor_gather_s"] / numbers["torch_s"])
    assert len(result["samples"]["ours_s"]) == len(result["samples"]["torch_s"]) == 2
    assert 0 <= result["ours_dev_acc"] <= 1 and 0 <= result["torch_dev_acc"] <= 1

    info = bench_train.machine_info()
    assert info["numpy_blas"] and info["torch_threads"] >= 1
    table = bench_train.markdown_table(result, info)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| measure | median | best of 2 |")
    assert any(row.startswith("| ratio ours / PyTorch |") for row in rows)
    assert any(row.startswith("| ours, fraction of the NumPy peak |") for row in rows)
    assert any(row.startswith("| floor, gathering, fraction of the peak |") for row in rows)
