from _notebook import run_notebook


def test_quickstart_notebook_runs():
    nb = run_notebook("01-quickstart.ipynb", optimized=True)  # execution-bound
    outputs = "".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "ValueError: quantize: bits must be" in outputs
