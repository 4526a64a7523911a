"""The notebook as a lesson: names defined before use, the core kept to the core, plumbing folded, checks with teeth."""

import ast
import builtins
import inspect
import re

import numpy as np
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from notebook_module import is_collapsed, notebook_cells

CELLS = notebook_cells()


def source(cell):
    return "".join(cell["source"])


def section_of_each_cell():
    """Section number ("5", "15", "A" for the appendix, "" before section 1) of every cell, by the ## headings."""
    section, out = "", []
    for cell in CELLS:
        heading = re.match(r"## (\d+|Appendix|Summary)", source(cell)) if cell["cell_type"] == "markdown" else None
        if heading:
            section = heading.group(1)
        out.append(section)
    return out


def names_defined_and_used(code):
    """(names a cell defines at top level, global names it or its functions read)."""
    tree = ast.parse(TransformerManager().transform_cell(code))
    defined, local, used = set(), set(), set()
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

    def visit(node, inside):
        into = local if inside else defined
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            into.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            into.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            local.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            into.add(node.name)
        elif isinstance(node, ast.Name):
            (into if isinstance(node.ctx, ast.Store) else used).add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, inside or isinstance(node, scopes))

    visit(tree, False)
    return defined, used - local - defined


def first_definitions():
    """name -> index of the first code cell that defines it, and per code cell (index, names used)."""
    first, uses = {}, []
    for i, cell in enumerate(CELLS):
        if cell["cell_type"] != "code":
            continue
        defined, used = names_defined_and_used(source(cell))
        for name in defined:
            first.setdefault(name, i)
        uses.append((i, used))
    return first, uses


def test_every_name_is_defined_in_an_earlier_cell():
    first, uses = first_definitions()
    known = set(dir(builtins)) | {"display", "get_ipython"}
    late = [
        f"cell {i} uses {name!r}, first defined in cell {first[name]}"
        for i, used in uses
        for name in sorted(used - known)
        if first.get(name, -1) > i
    ]
    assert not late, "\n".join(late)


def test_no_function_or_class_is_defined_twice():
    """A later cell redefining a function would silently change what every earlier cell's name means."""
    where = {}
    for i, cell in enumerate(CELLS):
        if cell["cell_type"] == "code":
            for node in ast.parse(TransformerManager().transform_cell(source(cell))).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    where.setdefault(node.name, []).append(i)
    twice = {name: cells for name, cells in where.items() if len(cells) > 1}
    assert not twice, f"defined in more than one cell: {twice}"


def test_the_forward_reference_check_has_teeth():
    """A cell calling a function that only a later cell defines is reported."""
    defined, used = names_defined_and_used("def f(x):\n    return helper(x) + np.sum(x)\n")
    assert defined == {"f"} and {"helper", "np"} <= used
    defined, used = names_defined_and_used("for k in range(3):\n    total = k\nprint([j for j in range(k)])")
    assert {"k", "total"} <= defined and "j" not in used


def test_the_core_sections_use_only_names_of_the_core():
    """Sections 1-8 (data, model, backward pass, checks, training) use nothing that a later section defines."""
    sections = section_of_each_cell()
    first, uses = first_definitions()
    core_cells = {i for i, s in enumerate(sections) if s == "" or (s.isdigit() and int(s) <= 8)}
    end_of_core = max(core_cells)
    outside = [
        f"cell {i} uses {name!r} from cell {first[name]}"
        for i, used in uses
        if i in core_cells
        for name in used
        if first.get(name, -1) > end_of_core
    ]
    assert not outside, outside


def test_the_core_functions_have_no_options_of_later_sections(nb):
    assert list(inspect.signature(nb.forward).parameters) == ["params", "X"]
    assert list(inspect.signature(nb.backward).parameters) == ["params", "cache", "Y"]
    assert "activation" not in inspect.signature(nb.train).parameters
    assert "loss_name" not in inspect.signature(nb.train).parameters


# --- plumbing folded, the network's code in front ----------------------------------------------------------

PLUMBING = [
    "def load_mnist_csv(",
    "def find_mnist_csvs(",
    "def check_settings(",
    "def save_model(",
    "def load_model(",
    "def plot_history(",
    "def show_prediction(",
    "class progress_bar(",
    "def load_grayscale(",
]
NETWORK = [
    "def init_params(",
    "def relu(",
    "def softmax(",
    "def forward(",
    "def cross_entropy(",
    "def backward(",
    "def numerical_gradient(",
    "def compare(",
    "def gradient_check(",
    "def sgd_update(",
    "def train(",
]


def cell_defining(text):
    found = [c for c in CELLS if c["cell_type"] == "code" and text in source(c)]
    assert found, f"no code cell contains {text!r}"
    return found[0]


@pytest.mark.parametrize("text", PLUMBING)
def test_plumbing_is_collapsed_with_a_title(text):
    cell = cell_defining(text)
    assert is_collapsed(cell), f"{text}: needs cellView form and jupyter.source_hidden"
    assert re.match(r"#\s?@title \S", source(cell)), "the first line says what the folded cell does"


@pytest.mark.parametrize("text", NETWORK)
def test_the_networks_code_is_never_collapsed(text):
    cell = cell_defining(text)
    meta = cell.get("metadata", {})
    assert not meta.get("jupyter", {}).get("source_hidden") and meta.get("cellView") != "form"


def test_every_collapsed_cell_has_both_conventions_and_a_title():
    for cell in CELLS:
        meta = cell.get("metadata", {})
        if cell["cell_type"] == "code" and (
            meta.get("cellView") == "form" or meta.get("jupyter", {}).get("source_hidden")
        ):
            assert is_collapsed(cell), source(cell)[:80]
            assert re.match(r"#\s?@title \S", source(cell)), source(cell)[:80]


def test_little_code_before_the_first_picture_of_digits():
    count = 0
    for cell in CELLS:
        if cell["cell_type"] != "code":
            continue
        if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            break
        if not is_collapsed(cell) and "parameters" not in cell["metadata"].get("tags", []):
            count += sum(1 for line in source(cell).splitlines() if line.strip())
    else:
        pytest.fail("the committed notebook shows no picture")
    assert count <= 40, f"{count} visible code lines before the first picture"


def test_static_views_show_finished_progress_bars():
    for cell in CELLS:
        for o in cell.get("outputs", []):
            text = "".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", ""))
            assert not re.search(r"(?<!\d)0%\|", text), f"an unfinished progress bar is saved: {text[:80]!r}"


def test_progress_bar_outside_a_notebook_is_plain_tqdm(nb):
    total = sum(nb.progress_bar(range(5), disable=True))
    assert total == 10


# --- the backward pass, every intermediate checked ----------------------------------------------------------


@pytest.fixture
def check_net(nb):
    """Section 7's kind of check network: float64, non-zero biases."""
    rng = np.random.default_rng(1)
    params = nb.init_params(5, 4, 3, rng, dtype=np.float64)
    params["b1"], params["b2"] = rng.standard_normal(4), rng.standard_normal(3)
    X = rng.standard_normal((7, 5))
    Y = nb.one_hot(rng.integers(0, 3, size=7), 3).astype(np.float64)
    return params, X, Y


def test_every_intermediate_gradient_matches_its_numerical_reference(nb, check_net):
    params, X, Y = check_net
    _, cache = nb.forward(params, X)
    grads = nb.backward(params, cache, Y)
    Z2, A1, Z1 = (cache[k].copy() for k in ("Z2", "A1", "Z1"))
    W2, b2 = params["W2"], params["b2"]
    references = {
        "Z2": nb.numerical_gradient(lambda: nb.cross_entropy(nb.softmax(Z2), Y), Z2),
        "A1": nb.numerical_gradient(lambda: nb.cross_entropy(nb.softmax(A1 @ W2 + b2), Y), A1),
        "Z1": nb.numerical_gradient(lambda: nb.cross_entropy(nb.softmax(nb.relu(Z1) @ W2 + b2), Y), Z1),
    }
    for name, reference in references.items():
        assert nb.compare("d" + name, grads[name], reference)
        assert np.max(np.abs(grads[name] - reference)) < 1e-8


def test_compare_catches_a_planted_wrong_gradient(nb, check_net, capsys):
    params, X, Y = check_net
    _, cache = nb.forward(params, X)
    grads = nb.backward(params, cache, Y)
    Z1, W2, b2 = cache["Z1"].copy(), params["W2"], params["b2"]
    reference = nb.numerical_gradient(lambda: nb.cross_entropy(nb.softmax(nb.relu(Z1) @ W2 + b2), Y), Z1)
    assert nb.compare("dZ1", grads["Z1"], reference) is True
    assert "approximate: True" in capsys.readouterr().out
    forgot_the_relu = grads["A1"]  # the classic bug: dZ1 = dA1, without the ReLU's indicator
    assert nb.compare("dZ1", forgot_the_relu, reference) is False
    out = capsys.readouterr().out
    assert "exact: False" in out and "approximate: False" in out
    max_diff = float(re.search(r"max difference: (\S+)", out).group(1))
    assert max_diff == pytest.approx(np.max(np.abs(forgot_the_relu - reference)), rel=0.06)
    assert nb.compare("db1", grads["Z1"].sum(), grads["b1"]) is False  # summed over every axis: wrong shape
    assert "wrong shape" in capsys.readouterr().out
    assert nb.compare("dW2", grads["W2"], grads["W2"].copy()) is True
    assert "exact: True" in capsys.readouterr().out


def test_bias_gradients_are_sums_over_the_rows(nb, check_net):
    params, X, Y = check_net
    grads = nb.backward(params, nb.forward(params, X)[1], Y)
    np.testing.assert_allclose(grads["b2"], grads["Z2"].sum(axis=0))
    np.testing.assert_allclose(grads["b1"], grads["Z1"].sum(axis=0))
    np.testing.assert_allclose(grads["Z2"], (nb.forward(params, X)[0] - Y) / len(X))


# --- a path through it: parts with times, the map, the chain rule, the worked example ----------------------


def markdown_index(pattern):
    found = [i for i, c in enumerate(CELLS) if c["cell_type"] == "markdown" and re.search(pattern, source(c), re.M)]
    assert found, f"no markdown cell matches {pattern!r}"
    return found[0]


def test_the_parts_are_named_with_what_they_teach_and_how_long_they_take():
    top = source(CELLS[0])
    assert "express path" in top.lower() and re.search(r"\d+-\d+ hours", top)
    for pattern in (r"^# Part 1\. ", r"^# Part 2\. ", r"^# Second course"):
        text = source(CELLS[markdown_index(pattern)])
        assert re.search(r"(?i)after this part you can|after it you can", text), pattern
        assert re.search(r"(?i)hours?\b", text), f"{pattern}: how long it takes"
    assert markdown_index(r"^# Part 1\. ") < markdown_index(r"^## 1\. ")
    assert markdown_index(r"^# Part 2\. ") < markdown_index(r"^## 12\. ")
    assert markdown_index(r"^# Second course") < markdown_index(r"^## 15\. ")


def test_the_whole_picture_comes_before_the_model_and_is_drawn_in_the_notebook():
    picture = markdown_index(r"^## The whole picture")
    assert picture < markdown_index(r"^## 5\. ")
    calls = [i for i, c in enumerate(CELLS) if c["cell_type"] == "code" and "draw_network_map(784" in source(c)]
    descent = [i for i, c in enumerate(CELLS) if c["cell_type"] == "code" and "draw_gradient_descent(" in source(c)]
    assert calls and descent and picture < calls[0] < descent[-1] < markdown_index(r"^## 5\. ")
    assert "\\theta \\leftarrow \\theta - \\eta" in "".join(
        source(c) for c in CELLS[picture : markdown_index(r"^## 5\. ")]
    )


def test_no_markdown_image_points_into_the_repository():
    """The notebook opened alone (the Colab badge) must show every picture it refers to."""
    for cell in CELLS:
        if cell["cell_type"] == "markdown":
            links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)|<img [^>]*src=\"([^\"]+)\"", source(cell))
            local = [a or b for a, b in links if not (a or b).startswith(("http://", "https://", "data:"))]
            assert not local, local


def test_the_chain_rule_is_taught_before_it_is_used():
    chain = markdown_index(r"^### 6\.1 The chain rule")
    text = source(CELLS[chain])
    assert "add up" in text and "14" in text, "the two-path example with numbers"
    assert chain < markdown_index(r"^### 6\.4 ") < markdown_index(r"^### 6\.5 ")
    backward = next(i for i, c in enumerate(CELLS) if c["cell_type"] == "code" and "def backward(" in source(c))
    assert chain < backward


def test_the_worked_example_by_hand_matches_the_printout():
    cell = next(c for c in CELLS if c["cell_type"] == "code" and "ex_params = {" in source(c))
    printed = "".join("".join(o.get("text", "")) for o in cell["outputs"])
    by_hand = source(CELLS[markdown_index(r"^\*\*One entry by hand\.\*\*")])
    value = re.search(r"= (-?\d\.\d{4}),\s*\$\$", by_hand).group(1)
    assert value == "-0.0923" and value in printed, (value, printed)
    for number in ("1.1", "-0.0416", "0.1", "-0.4654"):
        assert number in printed and number in by_hand


def test_every_visible_code_cell_fits_a_screen():
    long = [
        (i, len(source(c).splitlines()))
        for i, c in enumerate(CELLS)
        if c["cell_type"] == "code" and not is_collapsed(c) and len(source(c).splitlines()) > 45
    ]
    assert not long, f"(cell, lines): {long}"


# --- the wall of 6.4-6.5 with numbers, dead units, the risky rate, the recap, the times ---------------------


def code_cell_with(text):
    """The source of the one code cell that contains text."""
    found = [source(c) for c in CELLS if c["cell_type"] == "code" and text in source(c)]
    assert len(found) == 1, f"{len(found)} code cells contain {text!r}"
    return found[0]


def run_cells(nb, *texts, **names):
    """Execute the notebook's own code cells (each found by a piece of its text), in order, in a namespace holding
    the notebook's functions plus `names`; return the namespace."""
    namespace = {**vars(nb), **names}
    for text in texts:
        exec(TransformerManager().transform_cell(code_cell_with(text)), namespace)
    return namespace


WORKED_EXAMPLE = "ex_params = {"
JACOBIAN_CELLS = ("def softmax_jacobian(", "dz_by_jacobian = J.T @ g")


def test_the_worked_examples_softmax_jacobian_gives_backwards_dZ2(nb, capsys):
    ns = run_cells(nb, WORKED_EXAMPLE, *JACOBIAN_CELLS)
    np.testing.assert_allclose(ns["J"], ns["J_nudged"], atol=1e-8)  # the formula agrees with nudging each logit
    dZ2 = ns["ex_grads"]["Z2"]
    np.testing.assert_allclose(ns["dz_by_jacobian"], ns["p"] - ns["y"], atol=1e-12)
    np.testing.assert_allclose(ns["dz_by_jacobian"] / ns["ex_m"], dZ2[1], atol=1e-12)
    P, Y = ns["ex_P"], ns["ex_Y"]
    for i in range(len(P)):  # every row of the worked example: J^T (-y / p) / m is backward's row of dZ2
        np.testing.assert_allclose(nb.softmax_jacobian(P[i]).T @ (-Y[i] / P[i]) / len(P), dZ2[i], atol=1e-12)
    assert "backward's dZ2[1]" in capsys.readouterr().out


def test_the_softmax_jacobian_matches_a_numerical_one_for_ten_classes(nb, rng):
    z = rng.standard_normal((1, 10))
    J = nb.softmax_jacobian(nb.softmax(z)[0])
    numerical = np.stack([nb.numerical_gradient(lambda k=k: nb.softmax(z)[0, k], z)[0] for k in range(10)])
    np.testing.assert_allclose(J, numerical, atol=1e-9)
    np.testing.assert_allclose(J.sum(axis=0), 0, atol=1e-12)  # the probabilities' sum never moves


def test_dW2_by_loops_matches_backward_on_the_worked_example_and_a_random_batch(nb, small_net, capsys):
    ns = run_cells(nb, WORKED_EXAMPLE, "def dW2_by_loops(")
    np.testing.assert_allclose(nb.dW2_by_loops(ns["A1_ex"], ns["dZ2_ex"]), ns["ex_grads"]["W2"], atol=1e-12)
    np.testing.assert_allclose(ns["A1_ex"].T @ ns["dZ2_ex"], ns["ex_grads"]["W2"], atol=1e-12)
    assert "by loops" in capsys.readouterr().out
    params, X, Y = small_net
    grads = nb.backward(params, nb.forward(params, X)[1], Y)
    np.testing.assert_allclose(nb.dW2_by_loops(nb.forward(params, X)[1]["A1"], grads["Z2"]), grads["W2"], atol=1e-12)


def test_the_dead_unit_demo_kills_one_unit_for_good(nb, mnist_small, capsys):
    X, y = mnist_small[0][:256], mnist_small[1][:256]
    ns = run_cells(
        nb, "dead_net = init_params(", X_train=X, Y_train=nb.one_hot(y), HIDDEN_UNITS=8, BATCH_SIZE=64, SEED=0,
        LEARNING_RATE=0.5,
    )  # fmt: skip
    assert (ns["dead_cache"]["Z1"][:, 0] <= 0).all()
    assert np.array_equal(ns["dead_net"]["W1"][:, 0], ns["dead_start"]["W1"][:, 0])  # not a bit changed
    assert ns["dead_net"]["b1"][0] == ns["dead_start"]["b1"][0]
    assert not np.array_equal(ns["dead_net"]["W1"][:, 1], ns["dead_start"]["W1"][:, 1])  # a live unit learns
    assert "dW1[:, 0] all 0: True" in capsys.readouterr().out


RATE_CELLS = ("def one_epoch_at_rate(", "rate_seeds = range(")  # exercise 9's "try it", then rate 1.5 over seeds


def test_the_try_it_demonstration_reports_that_rate_5_diverges_instead_of_stopping(nb, mnist_small, capsys):
    X_train, y_train, X_dev, y_dev = mnist_small
    settings = dict(HIDDEN_UNITS=128, BATCH_SIZE=128, SEED=0, LEARNING_RATE=0.5)  # as in the notebook
    settings.update(EXERCISE_RESULTS={9: False})  # it prints once exercise 9's check has the predictions
    run_cells(nb, RATE_CELLS[0], X_train=X_train, y_train=y_train, X_dev=X_dev, y_dev=y_dev, **settings)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["rate 0.05", "rate 0.5", "rate 1.5", "rate 5.0"], lines
    assert lines[3].startswith("rate 5.0: diverged (training diverged"), lines
    assert all("dead hidden units" in line for line in lines[:3]), lines


def test_the_risky_rate_demonstration_reports_divergence_instead_of_stopping(nb, mnist_small, capsys):
    """Data on which training diverges: MNIST with its pixels tripled (rate 1.5 diverges after a few steps, rate
    0.5 mostly still trains), and a 28 x 28 set whose pixels were never divided by 255 (every run diverges at
    once). Both demonstration cells complete either way and report each divergence."""
    X_train, y_train, X_dev, y_dev = mnist_small
    settings = dict(HIDDEN_UNITS=16, BATCH_SIZE=64, SEED=0, LEARNING_RATE=0.5, EXERCISE_RESULTS={9: True})
    run_cells(nb, *RATE_CELLS, X_train=3 * X_train, y_train=y_train, X_dev=3 * X_dev, y_dev=y_dev, **settings)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 + 6, lines  # 4 rates on 2,000 images, then 2 rates x 3 seeds
    assert all("dead hidden units" in line or ": diverged (training diverged" in line for line in lines), lines
    assert any(": diverged (" in line for line in lines[4:] if line.startswith("rate 1.5,")), lines
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(600, 784)).astype(np.float32)  # 0-255, not 0-1
    y = rng.integers(0, 10, size=600)
    run_cells(nb, *RATE_CELLS, X_train=X[:500], y_train=y[:500], X_dev=X[500:], y_dev=y[500:], **settings)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10 and all(": diverged (" in line for line in lines), lines
    run = nb.one_epoch_at_rate(X[:500], y[:500], X[500:], y[500:], lr=1.5, seed=0, hidden_units=16, batch_size=64)
    assert set(run) == {"diverged"} and "training diverged" in run["diverged"]


def test_the_risky_rate_demonstration_counts_dead_units_when_training_works(nb, mnist_small):
    X_train, y_train, X_dev, y_dev = mnist_small
    run = nb.one_epoch_at_rate(X_train, y_train, X_dev, y_dev, lr=0.5, seed=0, hidden_units=32, batch_size=64)
    assert set(run) == {"val_acc", "dead"} and run["val_acc"] > 0.5 and 0 <= run["dead"] <= 32


def python_blocks(markdown):
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def code_part(line):
    return line.split("  #")[0].strip()


def function_source(name):
    """The source of the notebook's function `name`, from the code cell that defines it."""
    code = TransformerManager().transform_cell(code_cell_with(f"def {name}("))
    node = next(n for n in ast.parse(code).body if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(code, node)


def test_part_1_ends_with_a_recap_whose_lines_are_the_notebooks():
    recap = markdown_index(r"^### Part 1 in one screen")
    assert markdown_index(r"^## 11\. ") < recap < markdown_index(r"^# Part 2\. ")
    blocks = python_blocks(source(CELLS[recap]))
    assert len(blocks) == 3, "forward, backward, update"
    for block, name, pattern in zip(
        blocks, ("forward", "backward", "sgd_update"), (r"(Z1|A1|Z2|P) = ", r"d\w+ = ", r"params\[k\] -= ")
    ):
        recap_lines = [code_part(line) for line in block.splitlines() if line.strip()]
        function_lines = [code_part(line) for line in function_source(name).splitlines()]
        wanted = [line for line in function_lines if re.match(pattern, line)]
        assert len(wanted) >= 1 and recap_lines == wanted, (name, recap_lines, wanted)


def part_1_section_headings():
    return [
        source(c).splitlines()[0]
        for c in CELLS[: markdown_index(r"^# Part 2\. ")]
        if c["cell_type"] == "markdown" and re.match(r"## (\d+\.|The whole picture)", source(c))
    ]


def test_every_section_of_part_1_states_its_time_and_they_add_up_to_at_most_4_hours():
    headings = part_1_section_headings()
    assert len(headings) == 12, headings  # sections 1-11 and the whole picture
    minutes = [re.search(r"\(about (\d+) min", h) for h in headings]
    assert all(minutes), [h for h, m in zip(headings, minutes) if not m]
    recap = re.search(r"\(about (\d+) min", source(CELLS[markdown_index(r"^### Part 1 in one screen")]))
    assert sum(int(m.group(1)) for m in minutes) + int(recap.group(1)) <= 240


def test_the_express_path_is_a_checklist_of_sections_with_a_backprop_exercise_within_2_hours():
    top = source(CELLS[0])
    items = re.findall(r"^- \[ \] (.*(?:\n  .*)*)", top, re.M)  # an item and its indented continuation lines
    assert len(items) >= 8, items
    assert all(re.search(r"\d|Part 1|whole picture", item) for item in items)
    assert any(re.search(r"exercise (6|8)\b", item) for item in items), "an exercise that tests backprop itself"
    assert sum(int(m) for item in items for m in re.findall(r"\((\d+) min\)", item)) <= 120


SIDE_TOPICS = [
    "papermill",
    "COMMAND_LINE",
    "BLAS",
    "an earlier version",
    "the committed run",
    "the tests check",
    "benchmarks/README",
    "pickle",
    "atomic",
    "Taylor",
    "variance of the sum",
]


def test_part_1_keeps_side_topics_in_in_more_depth_notes():
    sections = section_of_each_cell()
    end = markdown_index(r"^# Part 2\. ")
    exercise_tags = {"exercise", "check", "answer", "solution", "reference"}
    for i, cell in enumerate(CELLS[:end]):
        if cell["cell_type"] != "markdown" or not sections[i] or exercise_tags & set(cell["metadata"].get("tags", [])):
            continue
        main_line = re.sub(r"<details>.*?</details>", "", source(cell), flags=re.S)
        found = [topic for topic in SIDE_TOPICS if topic.lower() in main_line.lower()]
        assert not found, f"cell {i} ({cell['id']}) has {found} outside a folded note"


def test_exercise_9s_demonstrations_wait_for_its_check(nb, mnist_small, capsys):
    """Both cells that train at exercise 9's rates print their outcomes only once the check has the predictions."""
    X_train, y_train, X_dev, y_dev = mnist_small
    settings = dict(HIDDEN_UNITS=16, BATCH_SIZE=64, SEED=0, LEARNING_RATE=0.5, EXERCISE_RESULTS={})
    run_cells(nb, *RATE_CELLS, X_train=X_train, y_train=y_train, X_dev=X_dev, y_dev=y_dev, **settings)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("once exercise 9's check has your predictions" in line for line in lines), lines


def top_level_names(text):
    """(names a cell binds outside its functions, names it reads there): comprehension variables left out."""
    tree = ast.parse(TransformerManager().transform_cell(text))
    bound, read, local = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            local |= {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            stack += [d for d in node.args.defaults if d is not None] if not isinstance(node, ast.ClassDef) else []
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        stack += list(ast.iter_child_nodes(node))
    return bound - local, read - local


def test_no_later_cell_rebinds_a_name_an_earlier_cell_reads():
    """Running a cell again after the whole notebook gives what it gave the first time: no later cell gives a
    name it reads from an earlier cell another value (as section 14's `big` once did to 5.3's softmax demo).
    Random generators are re-created where they are used, so `rng` may be rebound."""
    cells = [(i, source(c)) for i, c in enumerate(CELLS) if c["cell_type"] == "code"]
    names = {i: top_level_names(text) for i, text in cells}
    found = []
    for i, _ in cells:
        bound, read = names[i]
        for name in sorted(read - bound - {"rng"}):
            before = [j for j, _ in cells if j < i and name in names[j][0]]
            after = [j for j, _ in cells if j > i and name in names[j][0]]
            if before and after:
                found.append(f"cell {i} reads {name!r} from cell {before[-1]}; cell {after[0]} binds it again")
    assert not found, "\n".join(found)


def opening_words(markdown):
    """Words a reader sees in the opening (badges, HTML tags and closed folds left out; a fold's title counted)."""
    markdown = re.sub(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)", "", markdown)
    summaries = " ".join(re.findall(r"<summary>(.*?)</summary>", markdown, re.S))
    visible = re.sub(r"<details>.*?</details>", " ", markdown, flags=re.S) + " " + summaries
    return len(re.findall(r"[A-Za-z0-9][\w'.,%/-]*", re.sub(r"<[^>]+>", " ", visible)))


def test_the_opening_is_short_and_gives_one_set_of_times():
    """Issue 29: the cells before section 1 in about 300 words; each part's time the same wherever it is given."""
    opening = "\n\n".join(source(c) for c in CELLS[: markdown_index(r"^## 1\. ")] if c["cell_type"] == "markdown")
    assert opening_words(opening) <= 320, opening_words(opening)
    assert "How these times were found" not in opening and "OpenBLAS" not in opening
    second = source(CELLS[markdown_index(r"^# Second course")])
    for part, hours in (("15", "2-2.5 hours"), ("16", "4-5 hours")):
        assert f"{part}: {hours}" in opening and hours in second, (part, hours)
    assert "1-1.25 hours" in opening and "1-1.25 hours" in second
    assert "1-1.5 hours" in source(CELLS[markdown_index(r"^# Part 2\. ")]) and "1-1.5 hours" in opening
    assert "3.5-4 hours" in source(CELLS[markdown_index(r"^# Part 1\. ")]) and "3.5-4 hours" in opening


def first_markdown_with(pattern):
    return next(i for i, c in enumerate(CELLS) if c["cell_type"] == "markdown" and re.search(pattern, source(c)))


def test_terms_come_with_their_definitions_and_cross_references_point_where_the_text_is():
    """SGD is named where gradient descent is drawn; exercise 3 says what dW2 names before section 6 defines it and
    points at shapes above it; section 8 says what OpenBLAS and its threads have to do with rounding; the express
    path sends the reader to section 7's opening, where the small float64 network is explained."""
    sgd = first_markdown_with(r"\bSGD\b")
    assert "**stochastic gradient descent**" in source(CELLS[sgd]) and sgd < markdown_index(r"^## 5\. ")
    task = next(source(c) for c in CELLS if source(c).startswith("**Exercise 3:"))
    assert "`dW2` is the gradient of the loss with respect to" in task
    assert "forward pass above" not in task and "*The whole picture*" in task
    blas = first_markdown_with(r"OpenBLAS")
    assert markdown_index(r"^## 8\. ") < blas < markdown_index(r"^## 9\. ")
    assert "threads" in source(CELLS[blas]) and "every addition rounds" in source(CELLS[blas])
    assert "In more depth: why the number of threads changes the rounding" in source(CELLS[blas])
    express = re.search(r"^- \[ \] 7: (.*(?:\n  .*)*)", source(CELLS[0]), re.M).group(1)
    assert "its opening" in express and "float64" in express and "7.1's text" not in express
    assert "float64" in source(CELLS[markdown_index(r"^## 7\. ")])


def test_exercise_5s_answer_is_not_the_label_of_the_figure_above_it():
    drawing = code_cell_with("def draw_computation_graph(")
    assert "\\mathbb{1}[Z_1 > 0]" not in drawing and "exercise 5" in drawing
