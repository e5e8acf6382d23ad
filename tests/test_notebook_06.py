"""Notebook 06 (sweeps: learning rate x compression level heat map over seeds) runs top to bottom."""

from _notebook import run_notebook


def test_notebook_06_sweeps():
    nb = run_notebook("06-sweeps.ipynb", optimized=True)  # execution-bound
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "48 runs in" in outputs and "best (lr, bits):" in outputs
