"""Execute notebooks/05-increasing-accuracy.ipynb top to bottom."""

from _notebook import run_notebook


def test_notebook_05_runs():
    nb = run_notebook("05-increasing-accuracy.ipynb")
    assert any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
