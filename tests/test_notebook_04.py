from _notebook import run_notebook


def test_stragglers_and_deadlines_notebook_runs():
    nb = run_notebook("04-stragglers-and-deadlines.ipynb")
    outputs = "".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "QuanTimed-DSGD" in outputs and "s per iteration with a 10x straggler" in outputs
    assert "Traceback" not in outputs
