"""Time the notebook's own training loop against PyTorch eager and the machine's float32 matmul peak.

    python benchmarks/bench_train.py                       # 3 epochs, 3 interleaved repeats
    python benchmarks/bench_train.py --epochs 5 --repeats 5
    python benchmarks/bench_train.py --notebook            # also: the whole default notebook, wall time + peak memory

What is timed, per repeat and in this order (so that background load hits all of them alike):
1. ours:    the notebook's `train` (loaded from the notebook itself, never a copy) on the full 60,000
            MNIST training images, 784-128-10, batch 128, lr 0.5, with its per-epoch evaluation on a
            5,000-image dev set (the first 5,000 images of the official test file).
2. pytorch: the same work in PyTorch eager on the CPU: nn.Linear, ReLU, nn.Linear, CrossEntropyLoss on
            the logits, torch.optim.SGD, the same float32 data, a new random order (permutation) every
            epoch whose consecutive slices pick each batch's rows, the per-batch loss / accuracy bookkeeping
            and the same dev evaluation (--torch-copy-shuffle: copy the shuffled data once per epoch instead).
3. matmul:  the machine's float32 matmul peak, the median of several n x n @ n x n NumPy matmuls
            (2 n^3 FLOPs each), through the same BLAS our loop uses; the same for torch, for reference.
4. ceiling: only the matrix products of one epoch at batch 128 (X W1, A1 W2, A1^T dZ2, dZ2 W2^T, X^T dZ1),
            with NumPy: the best a NumPy loop could do at this batch size.
5. floors:  the work no NumPy training loop can skip: those products, moving each batch's rows into place
            and rewriting the weights after every batch; once gathering each batch's rows (as the notebook
            does), once copying the whole set in shuffled order into a reused buffer once per epoch.

The medians over the repeats are reported. One epoch is 4*m*784*H + 6*m*H*10 FLOPs (forward
2*m*784*H + 2*m*H*10, backward dW1 2*m*784*H, dW2 and dA1 2*m*H*10 each). Thread counts are left at
the libraries' defaults and are printed with the BLAS in use.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from notebook_module import NOTEBOOK, notebook_functions  # noqa: E402

N_IN, N_OUT = 784, 10
HIDDEN, BATCH, LR = 128, 128, 0.5  # the notebook's defaults (HIDDEN_UNITS, BATCH_SIZE, LEARNING_RATE)
DEV_SIZE = 5000  # images of the test file used as the per-epoch evaluation set (the notebook's DEV_SIZE)


def epoch_flops(m, hidden=HIDDEN, n_in=N_IN, n_out=N_OUT):
    """Matrix-product FLOPs of one training epoch over m images."""
    return 4 * m * n_in * hidden + 6 * m * hidden * n_out


def load_data(nb, train_size=None):
    """(X, y, X_dev, y_dev): the MNIST training file (float32, row-major) and the first DEV_SIZE test images."""
    X_u8, y = nb.load_mnist_csv(ROOT / "data" / "mnist_train.csv.gz")
    X_test_u8, y_test = nb.load_mnist_csv(ROOT / "data" / "mnist_test.csv.gz")
    if train_size is not None:
        X_u8, y = X_u8[:train_size], y[:train_size]
    # row-major (one image contiguous in memory), as the notebook trains on; a no-op with the current loader,
    # but older notebook versions (--ipynb) returned pandas' column-major layout, where row gathers are slow
    X_u8, X_dev_u8 = np.ascontiguousarray(X_u8), np.ascontiguousarray(X_test_u8[:DEV_SIZE])
    return nb.to_float(X_u8), y, nb.to_float(X_dev_u8), y_test[:DEV_SIZE]


def time_ours(nb, X, y, X_dev, y_dev, epochs, seed=0):
    """Seconds per epoch of the notebook's train (whole call / epochs) and the final dev accuracy."""
    start = time.perf_counter()
    _, history = nb.train(
        X, y, X_dev, y_dev, hidden_units=HIDDEN, epochs=epochs, batch_size=BATCH, lr=LR, seed=seed, progress=False
    )
    return (time.perf_counter() - start) / epochs, history["val_acc"][-1]


def time_torch(X, y, X_dev, y_dev, epochs, seed=0, copy_shuffle=False):
    """The same work in PyTorch eager: seconds per epoch (whole run / epochs) and the final dev accuracy.

    copy_shuffle=True copies the whole data set in shuffled order once per epoch instead (for comparison).
    """
    import torch
    from torch import nn

    start = time.perf_counter()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(X.shape[1], HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, N_OUT))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    X_dev_t, y_dev_t = torch.from_numpy(X_dev), torch.from_numpy(y_dev)
    m = len(X_t)
    history = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        order = torch.randperm(m)  # a new random order every epoch
        if copy_shuffle:  # the whole data set copied in shuffled order, then consecutive slices
            X_shuffled, y_shuffled = X_t[order], y_t[order]
        loss_sum = correct = 0.0
        for i in range(0, m, BATCH):
            if copy_shuffle:
                X_batch, y_batch = X_shuffled[i : i + BATCH], y_shuffled[i : i + BATCH]
            else:  # as the notebook does: each batch gathers its rows
                rows = order[i : i + BATCH]
                X_batch, y_batch = X_t[rows], y_t[rows]
            logits = model(X_batch)
            loss = loss_fn(logits, y_batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_value = loss.item()  # ours checks every batch's loss for divergence, so torch reads it too
            if not np.isfinite(loss_value):
                raise FloatingPointError("pytorch diverged")
            loss_sum += loss_value * len(X_batch)
            correct += (logits.argmax(dim=1) == y_batch).sum().item()
        with torch.no_grad():
            logits = model(X_dev_t)
            history["val_loss"].append(loss_fn(logits, y_dev_t).item())
            history["val_acc"].append((logits.argmax(dim=1) == y_dev_t).float().mean().item())
        history["train_loss"].append(loss_sum / m)
        history["train_acc"].append(correct / m)
    return (time.perf_counter() - start) / epochs, history["val_acc"][-1]


def matmul_gflops(n=2048, calls=5, library="numpy"):
    """Median GFLOP/s of n x n float32 matmuls (2 n^3 FLOPs each), with NumPy's BLAS or torch."""
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    if library == "torch":
        import torch

        A, B = torch.from_numpy(A), torch.from_numpy(B)
    A @ B  # warm-up: thread pool start, page faults of the result
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        A @ B
        seconds.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(seconds) / 1e9


def batch_products(X_batch, W1, W2):
    """The five matrix products of one training step (X W1, A1 W2, A1^T dZ2, dZ2 W2^T, X^T dZ1): (dW1, dW2)."""
    A1 = X_batch @ W1
    dZ2 = A1 @ W2
    dW2 = A1.T @ dZ2
    dZ1 = dZ2 @ W2.T
    return X_batch.T @ dZ1, dW2


def time_blas_ceiling(X, hidden=HIDDEN, batch=BATCH, seed=0):
    """Seconds for only the matrix products of one epoch (NumPy, batch-sized operands): the BLAS ceiling."""
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((X.shape[1], hidden), dtype=np.float32)
    W2 = rng.standard_normal((hidden, N_OUT), dtype=np.float32)
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        batch_products(X[i : i + batch], W1, W2)
    return time.perf_counter() - start


def time_floor(X, shuffle="gather", hidden=HIDDEN, batch=BATCH, lr=LR, seed=0):
    """Seconds for one epoch of only the work no NumPy training loop can skip: the five matrix products, moving
    each batch's rows into place and rewriting the weights (W -= lr * dW) after every batch. No bias, ReLU,
    softmax, loss or bookkeeping, so no real loop can be faster than this on this machine.

    shuffle="gather": each batch gathers its rows, X[rows] (what the notebook does).
    shuffle="copy": the whole data set is copied once per epoch in shuffled order into a buffer made once
    (np.take(..., out=...)), then the batches are consecutive slices of it.
    """
    rng = np.random.default_rng(seed)
    m = len(X)
    W1 = (rng.standard_normal((X.shape[1], hidden)) * 0.05).astype(np.float32)
    W2 = (rng.standard_normal((hidden, N_OUT)) * 0.05).astype(np.float32)
    # made once, reused every epoch; ones_like writes it, so its pages exist before the clock starts
    buffer = np.ones_like(X) if shuffle == "copy" else None
    start = time.perf_counter()
    order = rng.permutation(m)
    if shuffle == "copy":
        np.take(X, order, axis=0, out=buffer, mode="clip")  # mode="clip": no bounds-check buffering
    for i in range(0, m, batch):
        X_batch = buffer[i : i + batch] if shuffle == "copy" else X[order[i : i + batch]]
        dW1, dW2 = batch_products(X_batch, W1, W2)
        W1 -= lr * 1e-6 * dW1  # tiny steps: the values must stay finite, the memory traffic is what counts
        W2 -= lr * 1e-6 * dW2
    return time.perf_counter() - start


def machine_info():
    """CPU, core count, library versions, BLAS and thread counts."""
    from threadpoolctl import threadpool_info

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["numpy_blas"] = [
        {k: pool.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "num_threads")}
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info


def machine_busy_seconds():
    """CPU seconds all programs have used so far (Linux /proc/stat), or None elsewhere."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU seconds used by this process and its finished children."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def run_benchmark(
    nb,
    X,
    y,
    X_dev,
    y_dev,
    epochs=3,
    repeats=3,
    matmul_n=2048,
    with_torch=True,
    torch_copy_shuffle=False,
    nb_other=None,
    log=print,
):
    """Interleaved repeats of ours / pytorch / matmul peak / BLAS ceiling; returns the medians and all samples.

    nb_other: the functions of another version of the notebook (e.g. before a change), timed right after ours.
    """
    m = len(X)
    keys = (
        "ours_s",
        "other_s",
        "torch_s",
        "peak_gflops",
        "torch_peak_gflops",
        "ceiling_s",
        "floor_gather_s",
        "floor_copy_s",
    )
    samples = {k: [] for k in keys}
    accuracy = {}
    busy0, own0, wall0 = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    log("warm-up ...")
    for funcs in (nb, nb_other) if nb_other is not None else (nb,):
        time_ours(funcs, X[:2000], y[:2000], X_dev, y_dev, 1)
    if with_torch:
        time_torch(X[:2000], y[:2000], X_dev, y_dev, 1)
    for r in range(repeats):
        seconds, accuracy["ours"] = time_ours(nb, X, y, X_dev, y_dev, epochs)
        samples["ours_s"].append(seconds)
        if nb_other is not None:
            seconds, accuracy["other"] = time_ours(nb_other, X, y, X_dev, y_dev, epochs)
            samples["other_s"].append(seconds)
        if with_torch:
            seconds, accuracy["pytorch"] = time_torch(X, y, X_dev, y_dev, epochs, copy_shuffle=torch_copy_shuffle)
            samples["torch_s"].append(seconds)
            samples["torch_peak_gflops"].append(matmul_gflops(matmul_n, library="torch"))
        samples["peak_gflops"].append(matmul_gflops(matmul_n))
        samples["ceiling_s"].append(time_blas_ceiling(X))
        samples["floor_gather_s"].append(time_floor(X, "gather"))
        samples["floor_copy_s"].append(time_floor(X, "copy"))
        log(f"repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in samples.items() if v))
    wall = time.perf_counter() - wall0
    other = None if busy0 is None else (machine_busy_seconds() - busy0 - (own_cpu_seconds() - own0)) / wall
    result = {
        "other_programs_cores": other,  # average cores used by other programs during the run (noise)
        "train_images": m,
        "epochs": epochs,
        "repeats": repeats,
        "batch": BATCH,
        "hidden": HIDDEN,
        "matmul_n": matmul_n,
        "epoch_gflop": epoch_flops(m) / 1e9,
        "ours_dev_acc": accuracy["ours"],
        "torch_dev_acc": accuracy.get("pytorch"),
        "other_dev_acc": accuracy.get("other"),
        "median": summarise(samples, statistics.median, m),
        "best": summarise(samples, min, m),  # least disturbed by other programs on the machine
        "samples": samples,
    }
    return result


def summarise(samples, pick, m):
    """Derived numbers from one statistic of the samples (pick = median or min of the times; peaks use the
    matching statistic of the matmul times, so "best" takes the fastest of everything)."""
    s = {k: pick(v) for k, v in samples.items() if v and k.endswith("_s")}
    for k in ("peak_gflops", "torch_peak_gflops"):
        if samples[k]:
            s[k] = 1 / pick([1 / g for g in samples[k]])
    flops = epoch_flops(m) / 1e9
    s["ours_gflops"] = flops / s["ours_s"]
    s["ours_fraction_of_peak"] = s["ours_gflops"] / s["peak_gflops"]
    s["ceiling_fraction_of_peak"] = flops / s["ceiling_s"] / s["peak_gflops"]
    for k in ("floor_gather", "floor_copy"):
        if f"{k}_s" in s:
            s[f"{k}_fraction_of_peak"] = flops / s[f"{k}_s"] / s["peak_gflops"]
    if "other_s" in s:
        s["ratio_ours_over_other"] = s["ours_s"] / s["other_s"]
    if "torch_s" in s:
        s["torch_gflops"] = flops / s["torch_s"]
        s["ratio_ours_over_torch"] = s["ours_s"] / s["torch_s"]
        s["ratio_floor_over_torch"] = s["floor_gather_s"] / s["torch_s"]  # no loop that gathers gets below this
    return s


def _parse_time_v(text):
    """Wall seconds and max RSS (MiB) from GNU time -v output."""
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    hours, minutes, secs = (float(g) if g else 0.0 for g in wall.groups())
    return hours * 3600 + minutes * 60 + secs, int(rss.group(1)) / 1024


def _notebook_outputs(path):
    """Test accuracy (%) and the training seconds printed by the executed notebook, where found."""
    text = "".join(
        "".join(out.get("text", ""))
        for cell in json.loads(Path(path).read_text())["cells"]
        for out in cell.get("outputs", [])
    )
    test = re.search(r"test accuracy: ([\d.]+)%", text)
    trained = re.search(r"trained \d+ epochs in ([\d.]+) s", text)
    return (float(test.group(1)) if test else None), (float(trained.group(1)) if trained else None)


def run_notebook(extra_params=(), path=NOTEBOOK, log=print):
    """Execute the default notebook (no going further, no going deeper, no appendix) with papermill into a temp folder.

    Returns wall seconds, max RSS in MiB of the largest process (the kernel), test accuracy and training seconds.
    Tracked files are never written: the model, the figures and the executed copy go to the temp folder.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.ipynb"
        papermill = shutil.which("papermill", path=str(Path(sys.executable).parent)) or shutil.which("papermill")
        params = {
            "RUN_GOING_FURTHER": False,
            "RUN_GOING_DEEPER": False,
            "RUN_APPENDIX": False,
            "MODEL_PATH": f"{tmp}/model.npz",
            "DEEP_MODEL_PATH": f"{tmp}/deep.npz",
            "BEST_MODEL_PATH": f"{tmp}/best.npz",
            "IMAGES_DIR": f"{tmp}/images",
            **dict(extra_params),
        }
        cmd = [papermill, str(path), str(out), "--cwd", str(ROOT), "--log-level", "WARNING"]
        for k, v in params.items():
            cmd += ["-p", k, str(v)]
        gnu_time = Path("/usr/bin/time")
        if gnu_time.exists():
            cmd = [str(gnu_time), "-v"] + cmd
        log("running: " + " ".join(cmd))
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"the notebook failed:\n{proc.stderr[-3000:]}")
        if gnu_time.exists():
            wall, rss_mib = _parse_time_v(proc.stderr)
        else:  # the kernel is a child of papermill: RUSAGE_CHILDREN's ru_maxrss is the largest single process
            rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        test_acc, train_s = _notebook_outputs(out)
    return {"wall_s": wall, "max_rss_mib": rss_mib, "test_acc_pct": test_acc, "train_s": train_s}


def markdown_table(result, info):
    """The summary as a markdown table: median and best (fastest) of the interleaved repeats."""
    med, best = result["median"], result["best"]
    rows = [("ours (notebook `train`), s / epoch", "ours_s", "{:.3f}", f"dev acc {result['ours_dev_acc']:.4f}")]
    if "other_s" in med:
        rows += [
            ("the other notebook's `train`, s / epoch", "other_s", "{:.3f}", f"dev acc {result['other_dev_acc']:.4f}"),
            ("ratio ours / the other notebook", "ratio_ours_over_other", "{:.2f}", "< 1: ours is faster"),
        ]
    if "torch_s" in med:
        rows += [
            ("PyTorch eager, s / epoch", "torch_s", "{:.3f}", f"dev acc {result['torch_dev_acc']:.4f}"),
            ("ratio ours / PyTorch", "ratio_ours_over_torch", "{:.2f}", "goal <= 0.5"),
            (
                "floor (below) / PyTorch",
                "ratio_floor_over_torch",
                "{:.2f}",
                "the lowest ratio a gathering loop can have",
            ),
        ]
    rows += [
        ("ours, GFLOP/s", "ours_gflops", "{:.1f}", f"one epoch = {result['epoch_gflop']:.2f} GFLOP"),
        ("float32 matmul peak (NumPy), GFLOP/s", "peak_gflops", "{:.1f}", f"{result['matmul_n']}^3 matmul"),
    ]
    if "torch_peak_gflops" in med:
        rows += [("float32 matmul peak (torch), GFLOP/s", "torch_peak_gflops", "{:.1f}", "for reference")]
    rows += [
        ("ours, fraction of the NumPy peak", "ours_fraction_of_peak", "{:.0%}", "goal >= 50 %"),
        ("the matmuls alone, s / epoch", "ceiling_s", "{:.3f}", "same products, batch 128, nothing else"),
        ("the matmuls alone, fraction of the peak", "ceiling_fraction_of_peak", "{:.0%}", "the BLAS ceiling"),
        ("floor, gathering each batch, s / epoch", "floor_gather_s", "{:.3f}", "products + X[rows] + W -= lr dW"),
        (
            "floor, gathering, fraction of the peak",
            "floor_gather_fraction_of_peak",
            "{:.0%}",
            "no loop that gathers beats it",
        ),
        ("floor, one shuffled copy per epoch, s / epoch", "floor_copy_s", "{:.3f}", "products + copy + W -= lr dW"),
        (
            "floor, copying, fraction of the peak",
            "floor_copy_fraction_of_peak",
            "{:.0%}",
            "no loop that copies beats it",
        ),
    ]
    blas = "; ".join(
        f"{p['internal_api']} {p['version']} {p['architecture']} {p['num_threads']} threads" for p in info["numpy_blas"]
    )
    lines = [
        f"{info['cpu']}, {info['cores']} cores; Python {info['python']}, NumPy {info['numpy']} ({blas}); "
        f"torch {info.get('torch')} ({info.get('torch_threads')} threads)",
        f"{result['train_images']:,} training images, 784-{result['hidden']}-10, batch {result['batch']}, "
        f"{result['epochs']} epochs per run, {result['repeats']} interleaved repeats"
        + (
            f"; other programs used {result['other_programs_cores']:.2f} of {info['cores']} cores meanwhile"
            if result.get("other_programs_cores") is not None
            else ""
        ),
        "",
        f"| measure | median | best of {result['repeats']} | note |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {name} | {fmt.format(med[k])} | {fmt.format(best[k])} | {note} |" for name, k, fmt, note in rows]
    return "\n".join(lines)


def notebook_table(notebook, info):
    """The whole-notebook run as a markdown table."""
    return "\n".join(
        [
            f"{info['cpu']}, {info['cores']} cores: the default notebook (no going further, no appendix), papermill",
            "",
            "| default notebook | value | goal |",
            "|---|---:|---|",
            f"| wall time, s | {notebook['wall_s']:.1f} | <= 60 |",
            f"| peak memory (largest process: the kernel), MiB | {notebook['max_rss_mib']:.0f} | <= 1024 |",
            f"| training time printed by the notebook, s | {notebook['train_s']} | |",
            f"| test accuracy, % | {notebook['test_acc_pct']} | >= 97.5 |",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported (default 3)")
    parser.add_argument("--notebook", action="store_true", help="also run the whole default notebook (papermill)")
    parser.add_argument("--notebook-only", action="store_true", help="only run the whole default notebook")
    parser.add_argument("--train-size", type=int, default=None, help="use only this many training images (default all)")
    parser.add_argument("--matmul-n", type=int, default=2048, help="size of the square matmul for the peak")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch (if it is not installed)")
    parser.add_argument(
        "--torch-copy-shuffle", action="store_true", help="PyTorch copies the data in shuffled order once per epoch"
    )
    parser.add_argument(
        "--ipynb", type=Path, default=NOTEBOOK, help="benchmark this copy of the notebook (default: the repository's)"
    )
    parser.add_argument(
        "--compare-ipynb", type=Path, default=None, help="also time the train of this notebook (e.g. an older version)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    args = parser.parse_args(argv)

    info = machine_info()
    print(json.dumps(info))
    if args.notebook_only:
        notebook = run_notebook(path=args.ipynb)
        print()
        print(notebook_table(notebook, info))
        result = None
    else:
        nb = notebook_functions(args.ipynb)
        start = time.perf_counter()
        X, y, X_dev, y_dev = load_data(nb, args.train_size)
        print(f"data: {X.shape} {X.dtype}, dev {X_dev.shape}, loaded in {time.perf_counter() - start:.1f} s")
        result = run_benchmark(
            nb,
            X,
            y,
            X_dev,
            y_dev,
            epochs=args.epochs,
            repeats=args.repeats,
            matmul_n=args.matmul_n,
            with_torch=not args.no_torch and info["torch"] is not None,
            torch_copy_shuffle=args.torch_copy_shuffle,
            nb_other=notebook_functions(args.compare_ipynb) if args.compare_ipynb else None,
        )
        notebook = run_notebook(path=args.ipynb) if args.notebook else None
        print()
        print(markdown_table(result, info))
        if notebook:
            print()
            print(notebook_table(notebook, info))
    if args.json:
        args.json.write_text(json.dumps({"info": info, "result": result, "notebook": notebook}, indent=1))
    return result


if __name__ == "__main__":
    main()
