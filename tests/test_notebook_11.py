"""Notebook 11 (a user's CHOCO-SGD with traced heavy-ball momentum, from the public toolkit) runs top to bottom, its
identity reductions hold, and its sweep and comparison print what the text says."""

import re

from _notebook import run_notebook


def test_notebook_11_your_own_algorithm():
    nb = run_notebook("11-your-own-algorithm.ipynb")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "refused before compiling: choco_momentum: momentum must be a number in [0, 1), got 1.0" in outputs
    exact = re.search(r"momentum 0 +vs choco_sgd: +max \|loss difference\| = (\S+); same bits: (\w+)", outputs)
    assert float(exact.group(1)) == 0.0 and exact.group(2) == "True"  # bit for bit
    trace = re.search(r"momentum 0\.9 vs choco_sgd \+ trace\(0\.9\): +max \|loss difference\| = (\S+) \(losses ~ (\S+)\)",
                      outputs)
    assert float(trace.group(1)) <= 1e-5 * float(trace.group(2))  # float rounding
    assert "16 runs in" in outputs
    final = {(float(a), float(b)): float(v) for a, b, v in
             re.findall(r"lr = (\S+) +momentum = (\S+) +f\(xbar\) - f\* = (\S+)", outputs)}
    assert len(final) == 8
    assert final[(0.01, 0.9)] < 0.5 * final[(0.01, 0.0)], final  # momentum acts as a larger step at a small lr
    rows = dict(re.findall(r"^(CHOCO-SGD \+ momentum|CHOCO-SGD|BEER) +best .*?f\(xbar\) - f\* = (\S+)", outputs, re.M))
    assert set(rows) == {"CHOCO-SGD", "CHOCO-SGD + momentum", "BEER"}, rows
    assert all(float(v) > 0 for v in rows.values())
    # the text: within each other's seed bands (no method is claimed better)
    assert max(map(float, rows.values())) < 3 * min(map(float, rows.values())), rows
