"""The notebook as its users run it, each a real headless papermill run with small settings (about a minute each).

- Colab, opened by the badge: the notebook alone in an empty folder (no data/, no images/ beside it), a kernel with
  `google.colab` imported at start-up, and MNIST reachable only through kagglehub (its offline cache here).
  Also: on a Colab runtime without kagglehub, the "Where are we running?" cell runs `%pip install kagglehub`.
- Kaggle: the notebook alone, KAGGLE_KERNEL_RUN_TYPE set and the dataset attached under /kaggle/input.
- The lowest versions requirements.txt allows (uv's lowest-direct resolution), on this Python and on the oldest one
  the README supports where it is installed (it downloads packages from PyPI, kept in uv's cache).
"""

import ast
import gzip
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from kagglehub_layout import cached_dataset_folder
from notebook_module import NOTEBOOK, ROOT, notebook_cells

# The quick settings: the core for one epoch on 5,000 images, the optional parts switched off, and section 16's
# batch-norm demo (which runs whatever RUN_GOING_DEEPER says: 6 trainings, half of a quick run) on 1,000 images.
QUICK = dict(
    EPOCHS=1, TRAIN_SIZE=5000, SPREAD_SEEDS=1, RUN_GOING_FURTHER=False, RUN_GOING_DEEPER=False, RUN_APPENDIX=False
)
QUICK.update(BN_DEMO_SIZE=1000, BN_DEMO_EPOCHS=1)
RUN_TIMEOUT = 600  # seconds for one papermill run; a quick run took 30-90 s here (2 cores, varying load)
OLDEST_PYTHON = (3, 10)  # the Pythons the README promises: "Python 3.10, 3.11 or 3.12"
NEWEST_PYTHON = (3, 12)


def parameters_cell_setting(name):
    """The literal value of a setting in the notebook's cell tagged `parameters`, e.g. KAGGLE_DATASET."""
    cell = next(c for c in notebook_cells() if "parameters" in c["metadata"].get("tags", []))
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} is not set in the parameters cell")


def clean_env(tmp, **changes):
    """The environment for a run: this one without anything that would make the kernel differ from a fresh one
    (no PYTHONPATH, no MPLBACKEND, no Colab or Kaggle marks, an empty IPython profile), then `changes`."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND", "KAGGLE_KERNEL_RUN_TYPE")}
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["KAGGLEHUB_CACHE"] = str(tmp / "empty_kagglehub_cache")  # kagglehub finds nothing unless a test fills one
    env.update({k: str(v) for k, v in changes.items()})
    return env


def run_papermill(notebook, out, cwd, env, parameters=None, python=sys.executable):
    """Run `python -m papermill` (so the kernel is that Python's and inherits env); return (seconds, executed nb)."""
    command = [python, "-m", "papermill", str(notebook), str(out), "--cwd", str(cwd), "-k", "python3"]
    # no save after each cell: for this notebook's ~300 cells that about doubled a quick run's time
    command += ["--no-progress-bar", "--no-request-save-on-cell-execute", "--log-output"]
    command += ["-y", json.dumps(parameters)] if parameters else []
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    seconds = time.perf_counter() - start
    print(f"papermill run of {Path(notebook).name} in {cwd}: {seconds:.0f} s")
    if not Path(out).exists():
        pytest.fail(f"papermill wrote no notebook (exit {result.returncode}):\n{result.stderr[-3000:]}")
    executed = json.loads(Path(out).read_text(encoding="utf-8"))
    assert not errors(executed), f"the run stopped with an error: {errors(executed)}"
    assert result.returncode == 0, result.stderr[-3000:]
    return seconds, executed


def code_cells(executed):
    return [c for c in executed["cells"] if c["cell_type"] == "code"]


def errors(executed):
    """(first line of the cell, 'ErrorName: message') for every error output."""
    return [
        ("".join(c["source"]).split("\n")[0], f"{o['ename']}: {o['evalue']}")
        for c in code_cells(executed)
        for o in c.get("outputs", [])
        if o["output_type"] == "error"
    ]


def printed(executed):
    """Everything the run printed (stdout and stderr of every cell)."""
    return "".join("".join(o["text"]) for c in code_cells(executed) for o in c.get("outputs", []) if "text" in o)


def printed_line(executed, start):
    lines = [line for line in printed(executed).splitlines() if line.startswith(start)]
    assert lines, f"no line starting with {start!r} in the run's output"
    return lines[0]


def stderr_text(executed):
    return "".join(
        "".join(o["text"]) for c in code_cells(executed) for o in c.get("outputs", []) if o.get("name") == "stderr"
    )


# ---- the pictures: markdown images and the figures the code draws ----

MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)", re.IGNORECASE)
IMAGE_REFERENCE = re.compile(r"!\[[^\]]*\]\[([^\]]*)\]")  # ![alt][ref], with [ref]: target elsewhere


def markdown_images_not_shown(cells):
    """Markdown images that a notebook opened alone cannot show: a relative path, or a missing attachment."""
    definitions = {}
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for ref, target in re.findall(r"^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s|$)", "".join(cell["source"]), re.M):
                definitions[ref.lower()] = target
    missing = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        targets = [a or b for a, b in MARKDOWN_IMAGE.findall(text)]
        targets += [definitions.get(ref.lower(), f"[{ref}] (undefined)") for ref in IMAGE_REFERENCE.findall(text)]
        for target in targets:
            if target.startswith(("https://", "http://", "data:image/")):
                continue
            if target.startswith("attachment:") and target.split(":", 1)[1] in cell.get("attachments", {}):
                continue
            missing.append(f"markdown cell {i} ({text.strip()[:60]!r}...) shows {target!r}")
    return missing


def draws_a_figure(source, switches):
    """True when the cell's own top-level code shows or saves a figure (plt.show(), save_figure(...)), outside
    function and class bodies and outside `if RUN_...:` blocks switched off in this run."""

    def calls_a_figure(node):
        names = {"show", "save_figure"}
        for call in ast.walk(node):
            if isinstance(call, ast.Call):
                func = call.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in names and (name != "show" or getattr(func.value, "id", None) == "plt"):
                    return True
        return False

    def switched_off(test):
        terms = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
        return any(isinstance(t, ast.Name) and switches.get(t.id) is False for t in terms)

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(node, ast.If):
                if (not switched_off(node.test) and visit(node.body)) or visit(node.orelse):
                    return True
            elif isinstance(node, (ast.For, ast.While, ast.With, ast.Try)):
                blocks = [getattr(node, k, []) for k in ("body", "orelse", "finalbody")]
                if any(visit(b) for b in blocks) or any(visit(h.body) for h in getattr(node, "handlers", [])):
                    return True
            elif calls_a_figure(node):
                return True
        return False

    return visit(ast.parse(TransformerManager().transform_cell(source)).body)


def figures_not_shown(executed, switches):
    """Cells whose code draws a figure but whose output has no picture, with the markdown that introduces them."""
    missing, last_markdown = [], ""
    cells = [c for c in executed["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    for i, cell in enumerate(cells):  # i: the cell's index in the notebook as committed (papermill's cell left out)
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            last_markdown = source.strip()
            continue
        if cell["cell_type"] != "code" or not draws_a_figure(source, switches):
            continue
        outputs = cell.get("outputs", [])
        if not any("image/png" in o.get("data", {}) for o in outputs):
            said = " ".join("".join(o.get("text", "")) for o in outputs).strip()
            missing.append(
                f"cell {i} ({source.splitlines()[0][:60]!r}), after the markdown {last_markdown[-90:]!r}, "
                f"shows no picture; it printed {said[:200]!r}"
            )
    return missing


def test_the_picture_checks_catch_what_they_should():
    """The two checks above, on made-up cells: a relative markdown image and a figure that was not drawn."""

    def md(text, **extra):
        return {"cell_type": "markdown", "source": [text], "metadata": {}, **extra}

    def code(text, outputs):
        return {"cell_type": "code", "source": [text], "metadata": {}, "outputs": outputs}

    shown = md("![a](https://example.org/a.png) <img src='data:image/png;base64,AAAA'> ![b](attachment:b.png)")
    shown["attachments"] = {"b.png": {"image/png": "AAAA"}}
    relative = [md("![net](images/net.png)"), md('<img width=3 src="images/x.svg">'), md("![c][c]\n\n[c]: c.png")]
    assert markdown_images_not_shown([shown]) == []
    assert len(markdown_images_not_shown(relative)) == 3

    picture = {"output_type": "display_data", "data": {"image/png": "AAAA"}}
    said = {"output_type": "stream", "name": "stdout", "text": ["no image file"]}
    cells = [
        md("The curves:"),
        code("fig = plot(h)\nsave_figure(fig, IMAGES_DIR, 'a.png')\nplt.show()", [picture]),
        code("if path.is_file():\n    plt.show()\nelse:\n    print('no image file')", [said]),
        code("if RUN_APPENDIX:\n    plt.show()\nelse:\n    print('skipped')", []),
        code("def plot(h):\n    plt.show()", []),
    ]
    missing = figures_not_shown({"cells": cells}, {"RUN_APPENDIX": False})
    assert len(missing) == 1 and missing[0].startswith("cell 2 ") and "no image file" in missing[0]


# ---- data as Colab and Kaggle serve it ----


@pytest.fixture(scope="module")
def mnist_csvs(tmp_path_factory):
    """data/'s MNIST as plain mnist_train.csv and mnist_test.csv: the files of Kaggle's oddrationale/mnist-in-csv."""
    folder = tmp_path_factory.mktemp("mnist-in-csv")
    for name in ("mnist_train.csv", "mnist_test.csv"):
        with gzip.open(ROOT / "data" / f"{name}.gz", "rb") as f, open(folder / name, "wb") as g:
            shutil.copyfileobj(f, g, 1 << 20)
    return [folder / "mnist_train.csv", folder / "mnist_test.csv"]


def kagglehub_cache(cache, handle, files):
    """A kagglehub cache holding the versioned dataset `owner/name/versions/N`, laid out as kagglehub lays it out."""
    folder = cached_dataset_folder(cache, handle)
    for f in files:
        try:
            os.link(f, folder / f.name)  # same bytes, no copy
        except OSError:
            shutil.copy(f, folder / f.name)
    return folder


def notebook_alone(tmp):
    """The notebook copied alone into an empty folder, as Colab and Kaggle open it."""
    folder = tmp / "alone"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    return folder / NOTEBOOK.name


def kaggle_input_has_csvs():
    root = Path("/kaggle/input")
    return root.is_dir() and any("train" in p.name.lower() and ".csv" in p.name.lower() for p in root.rglob("*"))


def fake_colab(tmp):
    """A package `google.colab` on a PYTHONPATH folder and an IPython profile whose start-up file imports it, as
    Colab's kernel has it imported before the first cell. `google` stays a namespace package (no __init__.py), so
    other google.* packages (protobuf) still import."""
    path = tmp / "colab_path"
    (path / "google" / "colab").mkdir(parents=True)
    (path / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s package (tests only)."""\n')
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # noqa: F401  (Colab's kernel imports it at start)\n")
    return path


# ---- Colab, opened alone by the badge ----


@pytest.fixture(scope="module")
def colab_run(tmp_path_factory, mnist_csvs):
    if kaggle_input_has_csvs():
        pytest.skip("/kaggle/input holds MNIST-like CSVs here, so the notebook would not need kagglehub")
    tmp = tmp_path_factory.mktemp("colab")
    notebook = notebook_alone(tmp)
    cache = tmp / "kagglehub_cache"
    kagglehub_cache(cache, parameters_cell_setting("KAGGLE_DATASET"), mnist_csvs)
    env = clean_env(tmp, PYTHONPATH=fake_colab(tmp), KAGGLEHUB_CACHE=cache)
    seconds, executed = run_papermill(notebook, tmp / "executed.ipynb", notebook.parent, env, QUICK)
    return notebook.parent, executed, seconds


def test_colab_alone_runs_clean_on_colab_with_data_from_kagglehub(colab_run):
    folder, executed, seconds = colab_run
    assert not errors(executed)
    assert printed_line(executed, "running on") == "running on Colab"
    data_line = printed_line(executed, "data from:")
    assert "kagglehub" in data_line and parameters_cell_setting("KAGGLE_DATASET") in data_line, data_line
    assert "Traceback" not in stderr_text(executed), stderr_text(executed)
    # the run's files land in OUTPUT_DIR, by default the notebook's folder (Colab's /content)
    output = folder / parameters_cell_setting("OUTPUT_DIR")
    assert (output / parameters_cell_setting("MODEL_PATH")).is_file()
    assert list((output / parameters_cell_setting("IMAGES_DIR")).glob("*.png"))


def test_colab_alone_shows_every_picture(colab_run):
    """No markdown image points at a file beside the notebook, and every figure the code draws is shown."""
    _, executed, _ = colab_run
    missing = markdown_images_not_shown(executed["cells"]) + figures_not_shown(executed, QUICK)
    assert not missing, "opened alone on Colab, these pictures are not shown:\n" + "\n".join(missing)


def test_colab_without_kagglehub_runs_the_install_branch(tmp_path):
    """On a Colab runtime where `import kagglehub` fails, the "Where are we running?" cell runs `%pip install
    kagglehub` with the kernel's own Python.

    How, without touching the environment: a kagglehub.py that raises ModuleNotFoundError sits first on
    PYTHONPATH, and pip runs for real with PIP_NO_INDEX (it sees the installed kagglehub and changes nothing;
    without it, it would fail rather than download) and PIP_LOG, whose log shows what it was asked to install and
    where. Only the cells up to and including that cell run: after a real install kagglehub would import, which a
    hidden one cannot, so the rest of the notebook is the Colab run's business above.
    """
    if importlib.util.find_spec("pip") is None:
        pytest.skip("pip is not installed in this Python, so %pip cannot run here")
    nbformat = pytest.importorskip("nbformat")
    cells = [c for c in notebook_cells() if c["cell_type"] == "code"]
    where = next(i for i, c in enumerate(cells) if "IN_COLAB = " in "".join(c["source"]))
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("".join(c["source"])) for c in cells[: where + 1]],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    folder = tmp_path / "alone"
    folder.mkdir()
    nbformat.write(notebook, folder / "first_cells.ipynb")
    hide = tmp_path / "hide_kagglehub"
    hide.mkdir()
    tried = tmp_path / "import_attempts.txt"
    (hide / "kagglehub.py").write_text(
        f"with open({str(tried)!r}, 'a') as f:\n    f.write('import kagglehub\\n')\n"
        "raise ModuleNotFoundError(\"No module named 'kagglehub'\", name='kagglehub')\n"
    )
    pip_log = tmp_path / "pip.log"
    version_before = importlib.metadata.version("kagglehub")
    env = clean_env(
        tmp_path,
        PYTHONPATH=os.pathsep.join([str(fake_colab(tmp_path)), str(hide)]),
        PIP_NO_INDEX=1,
        PIP_LOG=pip_log,
        PIP_DISABLE_PIP_VERSION_CHECK=1,
    )
    _, executed = run_papermill(folder / "first_cells.ipynb", tmp_path / "executed.ipynb", folder, env)
    assert printed_line(executed, "running on") == "running on Colab"
    assert tried.read_text().count("import kagglehub") >= 1, "the cell did not try to import kagglehub"
    assert "Note: you may need to restart the kernel" in printed(executed), "the %pip magic did not run"
    log = pip_log.read_text()
    site_packages = Path(importlib.util.find_spec("kagglehub").origin).parents[1]
    assert re.search(rf"Requirement already satisfied: kagglehub in {re.escape(str(site_packages))}", log), log[-2000:]
    assert importlib.metadata.version("kagglehub") == version_before  # nothing was installed or removed


# ---- Kaggle: the dataset attached under /kaggle/input ----


@pytest.fixture(scope="module")
def kaggle_run(tmp_path_factory, mnist_csvs):
    """Attach the dataset as Kaggle does (/kaggle/input/mnist-in-csv, the CSVs symlinked), run, then remove exactly
    what was created: the two links and the folders that did not exist before."""
    attached = Path("/kaggle/input/mnist-in-csv")
    if attached.exists():
        pytest.skip(f"{attached} exists already and is not this test's: left alone")
    created = []
    try:
        for folder in (attached.parents[1], attached.parent, attached):
            if not folder.exists():
                folder.mkdir()
                created.append(folder)
    except OSError as e:
        for folder in reversed(created):
            folder.rmdir()
        pytest.skip(f"cannot create {attached} ({e}); CI runs as root and can")
    links = [attached / f.name for f in mnist_csvs]
    try:
        for link, f in zip(links, mnist_csvs):
            link.symlink_to(f)
        tmp = tmp_path_factory.mktemp("kaggle")
        notebook = notebook_alone(tmp)
        env = clean_env(tmp, KAGGLE_KERNEL_RUN_TYPE="Interactive")
        seconds, executed = run_papermill(notebook, tmp / "executed.ipynb", notebook.parent, env, QUICK)
    finally:
        for link in links:
            if link.is_symlink():
                link.unlink()
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:  # something else was put there meanwhile: not ours to delete
                pass
    return notebook.parent, executed, seconds


def test_kaggle_alone_runs_clean_on_kaggle_with_the_attached_dataset(kaggle_run):
    folder, executed, seconds = kaggle_run
    assert not errors(executed)
    assert printed_line(executed, "running on") == "running on Kaggle"
    data_line = printed_line(executed, "data from:")
    assert "Kaggle input '/kaggle/input/mnist-in-csv'" in data_line, data_line
    assert "Traceback" not in stderr_text(executed), stderr_text(executed)
    assert (folder / parameters_cell_setting("OUTPUT_DIR") / parameters_cell_setting("MODEL_PATH")).is_file()


def test_kaggle_alone_shows_every_picture(kaggle_run):
    _, executed, _ = kaggle_run
    missing = markdown_images_not_shown(executed["cells"]) + figures_not_shown(executed, QUICK)
    assert not missing, "opened alone on Kaggle, these pictures are not shown:\n" + "\n".join(missing)


# ---- the lowest versions the requirements allow ----


def lowest_pythons():
    """The Pythons the lowest-versions test runs on: this one (the CI machine's own) and every other Python the README
    supports (3.10 to 3.12), found on PATH or under pyenv (or NN_TEST_LOWEST_PYTHON); only those that exist, each
    once."""
    supported = [(OLDEST_PYTHON[0], minor) for minor in range(OLDEST_PYTHON[1], NEWEST_PYTHON[1] + 1)]
    candidates = [sys.executable, os.environ.get("NN_TEST_LOWEST_PYTHON")]
    for major, minor in supported:
        candidates.append(shutil.which(f"python{major}.{minor}"))
        pyenv = Path.home().glob(f".pyenv/versions/{major}.{minor}.*/bin/python{major}.{minor}")
        candidates += sorted(str(p) for p in pyenv)
    found = {}
    for python in filter(None, candidates):
        result = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True
        )
        version = tuple(map(int, result.stdout.split())) if result.returncode == 0 else None
        if version and version not in found and (python == sys.executable or version in supported):
            found[version] = python
    return [pytest.param(python, id=f"python{v[0]}.{v[1]}") for v, python in sorted(found.items())]


def requirement_bounds(path, python_version):
    """{name: lower bound} of every requirement of a requirements file (not following -r) that applies on
    python_version ("3.11"): its `>=` version, after its environment marker (`; python_version < "3.12"`)."""
    bounds = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"python_version": python_version}):
            continue
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        if lower:
            bounds[canonicalize_name(requirement.name)] = lower[0]
    return bounds


def uv_binary():
    """uv, which requirements-dev.txt installs (next to this Python, or on PATH)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is not installed: pip install -r requirements-dev.txt"
    return uv


@pytest.mark.parametrize("python", lowest_pythons())
def test_lowest_allowed_versions_run_the_notebook(python, tmp_path):
    """uv's lowest-direct resolution of requirements.txt on `python` (wheels only: a bound that needs a compiler is
    not one a user can install), plus papermill and ipykernel at requirements-dev.txt's bounds; then matplotlib in
    a plain IPython shell and a quick run of the notebook with that environment's kernel, writing into one folder.

    It downloads packages (uv keeps them in UV_CACHE_DIR; .ci/run puts that in a temporary folder it reuses)."""
    uv = uv_binary()
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    start = time.perf_counter()
    subprocess.run([uv, "venv", "-q", str(venv), "--python", python], check=True, env=env)
    py = str(venv / "bin" / "python")
    version = subprocess.run([py, "-c", "import sys; print(*sys.version_info[:2], sep='.')"], capture_output=True)
    python_version = version.stdout.decode().strip()
    runtime = requirement_bounds(ROOT / "requirements.txt", python_version)
    dev = requirement_bounds(ROOT / "requirements-dev.txt", python_version)
    runner = [f"{name}>={dev[name]}" for name in ("papermill", "ipykernel")]
    install = [uv, "pip", "install", "-q", "--python", py, "--resolution", "lowest-direct", "--no-build"]
    subprocess.run([*install, "-r", str(ROOT / "requirements.txt"), *runner], check=True, env=env)
    print(f"Python {python_version}: lowest-version environment made in {time.perf_counter() - start:.0f} s")
    installed = json.loads(
        subprocess.run([uv, "pip", "list", "--python", py, "--format", "json"], capture_output=True, text=True).stdout
    )
    versions = {canonicalize_name(p["name"]): p["version"] for p in installed}
    wanted = {**runtime, "papermill": dev["papermill"], "ipykernel": dev["ipykernel"]}
    print("installed:", ", ".join(f"{name} {versions.get(name)}" for name in [*wanted, "ipython"]))
    off = {n: (b, versions.get(n)) for n, b in wanted.items() if Version(versions.get(n, "0")) != Version(b)}
    assert not off, f"not installed at its lower bound (bound, installed): {off}"

    # matplotlib's pyplot in an IPython shell: matplotlib 3.7 and 3.8 import IPython's backend2gui there, which
    # IPython 9.16 removed (ImportError), so requirements.txt asks for matplotlib 3.9
    shell = "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.ion()\nprint('pyplot in IPython: ok')"
    result = subprocess.run(
        [py, "-m", "IPython", "--quick", "-c", shell], capture_output=True, text=True, env=clean_env(tmp_path)
    )
    assert result.stdout.strip().endswith("pyplot in IPython: ok"), result.stdout[-3000:] + result.stderr[-3000:]

    out = tmp_path / "run"
    start = time.perf_counter()
    _, executed = run_papermill(
        NOTEBOOK, tmp_path / "executed.ipynb", ROOT, clean_env(tmp_path), dict(QUICK, OUTPUT_DIR=str(out)), py
    )
    print(f"Python {python_version}: quick run with the lowest versions in {time.perf_counter() - start:.0f} s")
    versions_line = printed_line(executed, "Python ")  # printed by the kernel: it ran with these versions
    assert f"NumPy {versions['numpy']}, pandas {versions['pandas']}" in versions_line, versions_line
    assert versions_line.startswith(f"Python {python_version}."), versions_line
    assert "Traceback" not in stderr_text(executed), stderr_text(executed)
    assert "Warning" not in stderr_text(executed), stderr_text(executed)  # e.g. a deprecation the bounds avoid
    assert (out / parameters_cell_setting("MODEL_PATH")).is_file()
