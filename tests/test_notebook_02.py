"""Notebook 02 (compression meets decentralization) runs top to bottom."""

from _notebook import run_notebook


def test_notebook_02_runs():
    nb = run_notebook("02-compression-meets-decentralization.ipynb")
    outputs = "".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Thm. 1" in outputs  # simulate warned about DCD at 4 bits on ring(16)
    assert "dcd_psgd max |x - x_dpsgd|" in outputs
    assert "tang2018-fig4" in outputs
