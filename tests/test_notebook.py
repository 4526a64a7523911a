"""The notebook as a whole: a real headless run with small settings, and the committed run and model."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from notebook_module import NOTEBOOK, ROOT, notebook_cells


def code_cells(path):
    return [c for c in notebook_cells(path) if c["cell_type"] == "code"]


def git_status():
    """Porcelain status of the repository, or None when this is not a git checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Execute the notebook top to bottom with papermill and small settings; all outputs go to a temp folder."""
    papermill = pytest.importorskip("papermill")
    out = tmp_path_factory.mktemp("run")
    before = git_status()
    parameters = dict(
        EPOCHS=1,
        TRAIN_SIZE=5000,
        MODEL_PATH=str(out / "model.npz"),
        BEST_MODEL_PATH=str(out / "best.npz"),
        IMAGES_DIR=str(out / "images"),
        FURTHER_EPOCHS=1,
        DEEP_MODEL_PATH=str(out / "deep.npz"),
        DEEP_EPOCHS=1,
    )
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out / "executed.ipynb"),
        parameters=parameters,
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    return out, before


def test_quick_run_writes_a_loadable_model(nb, quick_run):
    out, _ = quick_run
    params = nb.load_model(out / "model.npz")
    assert params["W1"].shape == (784, 128)
    with np.load(out / "model.npz", allow_pickle=False) as f:
        assert int(f["epochs"]) == 1 and int(f["train_size"]) == 5000


def test_quick_run_has_no_errors_and_uses_the_parameters(quick_run):
    out, _ = quick_run
    cells = code_cells(out / "executed.ipynb")
    assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    injected = [c for c in cells if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "EPOCHS = 1" in "".join(injected[0]["source"])
    assert any(p.suffix == ".png" for p in (out / "images").iterdir())


def test_quick_run_changes_no_tracked_file(quick_run):
    _, before = quick_run
    if before is None:
        pytest.skip("not a git checkout")
    assert git_status() == before


def test_parameters_cell_holds_the_cores_settings_each_with_a_comment():
    cells = code_cells(NOTEBOOK)
    tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    lines = [line for line in "".join(tagged[0]["source"]).splitlines() if line.strip()]
    names = {line.split("=")[0].strip() for line in lines if not line.startswith("#")}
    required = {"DATA_DIR", "HIDDEN_UNITS", "EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "SEED", "TRAIN_SIZE", "MODEL_PATH"}
    assert required <= names
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
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
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
    pytest.importorskip("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
