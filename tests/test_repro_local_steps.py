"""The local-steps reproduction at size="test": every verdict holds over two seeds; the table and figure."""

import numpy as np

import jaxgossip as jg
from jaxgossip.reproduce import local_steps as repro


def test_local_steps_verdicts_hold():
    rep = jg.reproduce.run("local-steps", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert len(rep.verdicts) == 5
    f = rep.frame
    assert set(f.seed) == {0, 1} and set(f.partition) == {"iid", "label"}
    for partition in ("iid", "label"):
        assert set(f[f.partition == partition].method) == {repro.DPSGD, repro.LOCAL, repro.TRACKING}
    last = f[f.step == f.step.max()]
    bits = last.groupby(["partition", "method"]).bits.max()
    # a quarter of the gossip steps; tracking sends two messages per gossip step
    assert bits[("iid", repro.LOCAL)] * repro.H == bits[("iid", repro.DPSGD)]
    assert bits[("label", repro.TRACKING)] == 2 * bits[("label", repro.LOCAL)]
    # between gossip steps nothing is sent: the bits grow only at the gossip steps
    local = f[(f.partition == "iid") & (f.method == repro.LOCAL) & (f.seed == 0)].sort_values("step")
    per_step = np.diff(local.bits.to_numpy()) / np.diff(local.step.to_numpy())
    np.testing.assert_allclose(per_step, per_step[0])
    assert rep.figure is not None and len(rep.figure.axes) == 3
    assert "local-steps" in jg.reproduce.names()
