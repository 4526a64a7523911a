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
