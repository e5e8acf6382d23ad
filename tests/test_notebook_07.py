"""Notebook 07 (your own model: a flax CNN with BatchNorm and dropout, layerwise top-k, momentum with step decay)
runs top to bottom."""

from _notebook import run_notebook


def test_notebook_07_your_own_model():
    nb = run_notebook("07-your-own-model.ipynb", optimized=True)  # execution-bound
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "CHOCO, layerwise top-10%" in outputs and "worst worker" in outputs
    assert "spread of the BatchNorm means over workers" in outputs
