"""The link-failures reproduction at size="test": every verdict holds over two seeds; the table and figure."""

import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.reproduce import link_failures as repro

pytestmark = pytest.mark.optimized  # execution-bound: compiled with XLA's optimizations (tests/conftest.py)


def test_link_failures_verdicts_hold():
    rep = jg.reproduce.run("link-failures", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert len(rep.verdicts) == 3
    f = rep.frame
    assert set(f.seed) == {0, 1} and set(f.p) == set(repro.PS)
    # links_up is the measured fraction of links up: 1 without failures, about 1 - p with them
    for p in repro.PS:
        up = f[(f.p == p) & (f.step > 0)].links_up.mean()
        assert abs(up - (1 - p)) < 0.02, (p, up)
    # the predicted growth is the ratio of consensus gaps of jg.theory.link_failure_rate, increasing in p
    growth = repro.predicted_growth({p: jg.theory.link_failure_rate(jg.topology.ring(16), p) for p in repro.PS})
    assert growth[0.0] == 1.0 and np.all(np.diff([growth[p] for p in repro.PS]) > 0)
    assert rep.figure is not None and len(rep.figure.axes) == 2
    assert "link-failures" in jg.reproduce.names()
