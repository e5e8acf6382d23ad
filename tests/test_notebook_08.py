"""Notebook 08 (fair comparisons: four algorithms, each tuned on its own grid, five seeds with redrawn data) runs top
to bottom and reports a best setting for every algorithm."""

from _notebook import run_notebook


def test_notebook_08_fair_comparisons():
    nb = run_notebook("08-fair-comparisons.ipynb", optimized=True)  # execution-bound
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "settings x 5 seeds" in outputs
    for label in ("D-PSGD (32 bits)", "DCD-PSGD", "CHOCO-SGD", "DeepSqueeze"):
        assert f"best {label}:" in outputs
    assert "comparison.json" in outputs and "comparison.pdf" in outputs
