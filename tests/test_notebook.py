"""The notebook as a whole: a real headless run with small settings, and the committed run and model."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from notebook_module import NOTEBOOK, ROOT, notebook_cells


def code_cells(path):
    return [c for c in notebook_cells(path) if c["cell_type"] == "code"]


MODEL_FILES = ("mnist_model.npz", "mnist_model_best.npz", "mnist_model_deep.npz")
NOT_COPIED = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".venv")


def checkout_state(folder):
    """What a run could change in a checkout: `git status --porcelain` (untracked files too) when it is a git
    checkout, else every file's path, size and modification time."""
    if shutil.which("git") and (folder / ".git").exists():
        command = ["git", "status", "--porcelain", "--untracked-files=all"]
        return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Execute the notebook top to bottom with papermill in a copy of the checkout (.git included, so that nothing
    else working in the checkout meanwhile disturbs the comparison), every part on with small settings, and only
    OUTPUT_DIR telling it where to write (no MODEL_PATH, IMAGES_DIR or a later part's path)."""
    import papermill

    out = tmp_path_factory.mktemp("run")
    checkout = out / "checkout"
    shutil.copytree(ROOT, checkout, symlinks=True, ignore=NOT_COPIED)
    before = checkout_state(checkout)
    parameters = dict(EPOCHS=1, TRAIN_SIZE=5000, FURTHER_EPOCHS=1, DEEP_EPOCHS=1, OUTPUT_DIR=str(out / "output"))
    papermill.execute_notebook(
        str(checkout / NOTEBOOK.name if NOTEBOOK.parent == ROOT else NOTEBOOK),
        str(out / "executed.ipynb"),
        parameters=parameters,
        cwd=str(checkout),
        kernel_name="python3",
        progress_bar=False,
    )
    return out, before


def test_quick_run_writes_a_loadable_model(nb, quick_run):
    out, _ = quick_run
    params = nb.load_model(out / "output" / "mnist_model.npz")
    assert params["W1"].shape == (784, 128)
    with np.load(out / "output" / "mnist_model.npz", allow_pickle=False) as f:
        assert int(f["epochs"]) == 1 and int(f["train_size"]) == 5000


def test_quick_run_has_no_errors_and_uses_the_parameters(quick_run):
    out, _ = quick_run
    cells = code_cells(out / "executed.ipynb")
    assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "EPOCHS = 1" in "".join(injected[0]["source"])


def test_output_dir_alone_puts_every_file_of_the_run_in_it_and_leaves_the_checkout_untouched(quick_run):
    """-p OUTPUT_DIR <folder> alone: the three models and the figures are in the folder, and the checkout is as it
    was (`git status --porcelain` unchanged: no committed model or figure overwritten, nothing new)."""
    out, before = quick_run
    written = out / "output"
    assert sorted(p.name for p in written.glob("*.npz")) == sorted(MODEL_FILES)
    figures = {p.name for p in (written / "images").glob("*.png")}
    for name in ("learning_curves.png", "confusion_matrix.png", "recipes_dev_accuracy.png", "deep_init.png"):
        assert name in figures, f"{name} is not in {written / 'images'}: {sorted(figures)}"
    assert {p.name for p in written.iterdir()} == {*MODEL_FILES, "images"}, "OUTPUT_DIR holds only the run's files"
    assert checkout_state(out / "checkout") == before, "the run changed the checkout"


def test_output_path_puts_a_relative_path_inside_output_dir_and_keeps_an_absolute_one(nb, tmp_path, monkeypatch):
    monkeypatch.setattr(nb, "OUTPUT_DIR", str(tmp_path / "out"))
    assert nb.output_path("mnist_model.npz") == tmp_path / "out" / "mnist_model.npz"
    assert nb.output_path("images") == tmp_path / "out" / "images"
    assert nb.output_path(str(tmp_path / "elsewhere.npz")) == tmp_path / "elsewhere.npz"
    assert nb.output_path(None) is None
    monkeypatch.setattr(nb, "OUTPUT_DIR", ".")
    assert nb.output_path("mnist_model.npz") == Path("mnist_model.npz")  # the default: where the committed files are


@pytest.mark.parametrize("bad", ["", 3, None])
def test_output_dir_must_be_a_folder_path(nb, bad):
    with pytest.raises(ValueError, match="OUTPUT_DIR"):
        nb.check_output_dir(bad)


def test_output_dir_that_is_a_file(nb, tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(ValueError, match="OUTPUT_DIR.*is a file"):
        nb.check_output_dir(str(tmp_path / "out"))
    nb.check_output_dir(str(tmp_path / "not yet made"))  # a folder the run will make is fine


def test_parameters_cell_holds_the_cores_settings_each_with_a_comment():
    cells = code_cells(NOTEBOOK)
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    lines = [line for line in "".join(tagged[0]["source"]).splitlines() if line.strip()]
    names = {line.split("=")[0].strip() for line in lines if not line.startswith("#")}
    required = {"DATA_DIR", "HIDDEN_UNITS", "EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "SEED", "TRAIN_SIZE", "MODEL_PATH"}
    assert required | {"OUTPUT_DIR", "IMAGES_DIR"} <= names
    assert len(lines) <= 25, "the first screen shows the core's settings only"
    assert all("#" in line for line in lines), "every setting has a comment"


def test_every_later_setting_sits_in_its_parts_settings_cell_with_a_comment():
    cells = [c for c in code_cells(NOTEBOOK) if "settings" in c["metadata"].get("tags", [])]
    assert len(cells) >= 4
    for cell in cells:
        *settings, last = [line for line in "".join(cell["source"]).splitlines() if line.strip()]
        assert last.startswith("globals().update(COMMAND_LINE)"), "a value given with papermill -p wins"
        assert all("#" in line for line in settings)


def test_a_later_setting_given_on_the_command_line_wins_over_its_parts_cell(tmp_path):
    """papermill -p FURTHER_EPOCHS 3: the notebook's own cells, run in a real kernel, end with FURTHER_EPOCHS == 3."""
    import nbclient
    import nbformat

    cells = code_cells(NOTEBOOK)
    pick = [
        next(c for c in cells if "import numpy as np" in "".join(c["source"])),
        next(c for c in cells if "IN_COLAB = " in "".join(c["source"])),
        next(c for c in cells if "parameters" in c["metadata"].get("tags", [])),
        nbformat.v4.new_code_cell("# Parameters\nFURTHER_EPOCHS = 3\nEPOCHS = 2\n"),
        next(c for c in cells if "def command_line_settings(" in "".join(c["source"])),
        next(c for c in cells if "FURTHER_EPOCHS = 40" in "".join(c["source"])),
        nbformat.v4.new_code_cell("print(FURTHER_EPOCHS, EPOCHS, MOMENTUM)"),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("".join(c["source"])) for c in pick])
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    assert "".join(notebook.cells[-1].outputs[0]["text"]).split() == ["3", "2", "0.9"]


def test_committed_notebook_is_a_clean_top_to_bottom_run():
    cells = code_cells(NOTEBOOK)
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "run it whole with the README's command before committing"
    assert not [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in cells), "run with defaults"
    images = [o for c in cells for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) >= 5, "plots are inline in the committed notebook"


def test_committed_model_reaches_97_5_percent_on_the_official_test_set(nb):
    params = nb.load_model(ROOT / "mnist_model.npz")
    X, y = nb.load_mnist_csv(ROOT / "data" / "mnist_test.csv.gz")
    assert len(y) == 10000
    assert nb.accuracy(nb.predict(params, nb.to_float(X)), y) >= 0.975


def test_lint_ruff_check_and_format():
    """Lint like a maintained project: ruff reads the notebook natively."""
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
