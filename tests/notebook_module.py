"""Load the notebook's own code as a Python module (used by the tests and the benchmarks).

How: `notebook_functions()` reads neural_network_from_scratch.ipynb, turns each code cell's IPython
syntax (`%pip ...`) into plain Python with IPython's own transformer, and executes only the cells'
top-level imports (also optional ones: `try: import x` / `except ImportError: x = None`), `def`/`class`
statements and upper-case constants given as literals (the settings, `EXERCISE_RESULTS = {}`) in a fresh
module. So callers get exactly the functions a learner reads in the notebook, without
loading data or training anything.
"""

import ast
import json
import os
import types
from pathlib import Path

from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
# NN_NOTEBOOK points the tests at another copy of the notebook (e.g. a draft being edited)
NOTEBOOK = Path(os.environ.get("NN_NOTEBOOK", ROOT / "neural_network_from_scratch.ipynb"))


def notebook_cells(path=NOTEBOOK):
    """The notebook's cells, as the list in its JSON."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


def is_collapsed(cell):
    """True for a cell folded both in Colab (cellView "form") and in Jupyter (source_hidden)."""
    meta = cell.get("metadata", {})
    return bool(meta.get("jupyter", {}).get("source_hidden")) and meta.get("cellView") == "form"


def optional_import(node):
    """True for `try: import x / except ImportError: x = None`, the notebook's way to import an optional package."""
    return isinstance(node, ast.Try) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in node.body)


def literal_constant(node):
    """True for `NAME = <literal>` with an upper-case name, e.g. the exercise helper's `EXERCISE_RESULTS = {}`."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
        return False
    if not node.targets[0].id.isupper():
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def notebook_functions(path=NOTEBOOK):
    """Import the notebook's imports, functions and classes as a module."""
    cells = notebook_cells(path)
    transform = TransformerManager().transform_cell
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    body = []
    for cell in cells:
        if cell["cell_type"] == "code":
            tree = ast.parse(transform("".join(cell["source"])))
            body += [
                node for node in tree.body if isinstance(node, keep) or optional_import(node) or literal_constant(node)
            ]
    module = types.ModuleType("notebook")
    module.__file__ = str(path)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), module.__dict__)
    return module
