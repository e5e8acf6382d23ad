"""The churn reproduction at size="test": every verdict holds over two seeds; the table and figure."""

import pytest

import jaxgossip as jg
from jaxgossip.reproduce import churn as repro

pytestmark = pytest.mark.optimized  # execution-bound: compiled with XLA's optimizations (tests/conftest.py)


def test_churn_verdicts_hold():
    rep = jg.reproduce.run("churn", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert len(rep.verdicts) == 3
    f = rep.frame
    assert set(f.seed) == {0, 1} and set(f.method) == set(repro.METHODS)
    churned = f[f.churn & (f.step > 0)]
    # workers_online is a fraction that moves over time (the chain), below 1 on average
    assert churned.workers_online.between(0, 1).all() and churned.workers_online.nunique() > 5
    # an offline worker sends nothing: fewer bits than the fault-free run of the same method and seed
    last = f[f.step == f.step.max()].groupby(["method", "churn", "seed"]).bits.max()
    for m in repro.METHODS:
        for s in (0, 1):
            assert last[(m, True, s)] < 0.9 * last[(m, False, s)]
    assert rep.figure is not None and len(rep.figure.axes) == 2
    assert "churn" in jg.reproduce.names()
