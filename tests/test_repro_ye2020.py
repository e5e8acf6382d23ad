"""The ye2020 reproduction at size="test": every verdict holds and the table covers every method and eps."""

import numpy as np

import jaxgossip as jg
from jaxgossip.reproduce.ye2020 import EPS


def test_ye2020_table_and_verdicts():
    rep = jg.reproduce.run("ye2020", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert len(rep.verdicts) == 9
    f = rep.frame
    assert set(f.method) == {"iade", "aiade", "gd", "nesterov", "qgd (constant e=1e-3)"}
    assert sorted(f.eps.unique()) == sorted(EPS)
    reached = f.dropna(subset=["iterations"])
    # every method but the constant-error one reaches 1e-8; iterations and bits grow as eps shrinks
    assert set(reached[reached.eps == 1e-8].method) == {"iade", "aiade", "gd", "nesterov"}
    for _, g in reached.groupby("method"):
        g = g.sort_values("eps", ascending=False)
        assert np.all(np.diff(g.iterations.to_numpy()) > 0) and np.all(np.diff(g.total_bits.to_numpy()) > 0)
    assert rep.figure is not None and len(rep.figure.axes) == 1
