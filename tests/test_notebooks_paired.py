"""Each notebook is reviewed as a jupytext .py file; its .ipynb twin must hold the same cells."""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.py"))


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_matches_its_py_pair(script):
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} is missing: run jupytext --sync {script}"
    source = [(c.cell_type, c.source) for c in jupytext.read(script).cells]
    paired = [(c.cell_type, c.source) for c in jupytext.read(notebook).cells]
    assert source == paired, f"{notebook.name} is out of date: run jupytext --sync {script}"


@pytest.mark.parametrize("script", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_is_committed_without_outputs(script):
    notebook = jupytext.read(script.with_suffix(".ipynb"))
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
