"""Notebook 10 (unreliable, uneven networks: per-link speeds, link failures, churn, availability traces, local steps)
runs top to bottom, and its numbers show the claims it makes."""

import re

from _notebook import run_notebook


def test_notebook_10_unreliable_networks():
    nb = run_notebook("10-unreliable-networks.ipynb")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "2 programs (10 runs) in" in outputs
    # 1. two clusters: D-PSGD's step is far shorter in simulated seconds than ring AllReduce's
    sec = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^(.+?)\s+seconds per step = (\S+)", outputs,
                                                                      re.M)}
    assert sec["D-PSGD, ring"] < 0.1 * sec["ring AllReduce"], sec
    assert sec["D-PSGD, bridged rings"] < 0.1 * sec["ring AllReduce"], sec
    # 2. link failures: bits scale as 1 - p, and links_up is 1 - p
    rows = [tuple(float(x) for x in m.groups()) for m in re.finditer(
        r"^p = (\S+)\s+bits / bits\(p=0\) = (\S+)\s+\(1 - p = \S+\)\s+mean links_up = (\S+)\s+loss = (\S+)", outputs,
        re.M)]
    assert [r[0] for r in rows] == [0.0, 0.1, 0.3, 0.5], rows
    for p, ratio, up, loss in rows:
        assert abs(ratio - (1 - p)) < 0.03 and abs(up - (1 - p)) < 0.03 and loss < 1.0, rows
    # the measured consensus factor of plain gossip sits at or a little below the theory's expected rate, which
    # grows with p
    rates = [tuple(float(x) for x in m.groups()) for m in re.finditer(
        r"^\s*(\S+)\s+(\S+)\s+(\S+)\s+consensus rate$", outputs, re.M)]
    assert [r[0] for r in rates] == [0.0, 0.1, 0.3, 0.5], rates
    assert all(0.95 * theory < measured < theory + 0.005 for _, measured, theory in rates), rates
    assert all(a[2] < b[2] and a[1] < b[1] for a, b in zip(rates, rates[1:])), rates
    # 3. churn: about 80% of the workers online; an offline worker's model does not move, an online one's does
    online = float(re.search(r"mean workers_online = (\S+)", outputs).group(1))
    assert abs(online - 0.8) < 0.08, online
    moved = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^worker\s+(\d+): worker_loss moved by (\S+)",
                                                                      outputs, re.M)}
    assert moved[12] == 0.0 and moved[0] > 1e-4, moved
    # 4. local steps: a quarter of the bits
    quarter = re.search(r"local D-PSGD / D-PSGD bits = (\S+); local SGD / AllReduce bits = (\S+)", outputs)
    assert abs(float(quarter.group(1)) - 0.25) < 1e-6 and abs(float(quarter.group(2)) - 0.25) < 1e-6, quarter.groups()
