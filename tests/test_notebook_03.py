"""Execute notebooks/03-compressed-centralized.ipynb top to bottom."""

from _notebook import run_notebook


def test_notebook_03_runs():
    nb = run_notebook("03-compressed-centralized.ipynb")
    outputs = "".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "DoubleSqueeze, sign" in outputs and "double EC" in outputs
