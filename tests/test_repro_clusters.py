"""The two-cluster reproduction at size="test": every verdict holds over two seeds; the table and figure."""

import numpy as np

import jaxgossip as jg
from jaxgossip.reproduce import clusters as repro


def test_clusters_verdicts_hold():
    rep = jg.reproduce.run("clusters", size="test")
    assert rep.holds, rep.verdicts.to_string()
    assert len(rep.verdicts) == 2
    f = rep.frame
    assert set(f.seed) == {0, 1} and set(f.method) == {repro.ALLREDUCE, repro.RING, repro.BRIDGE}
    # the bridged graph: two rings of 8 and one crossing pair (degree 3 at workers 7 and 8)
    degrees = jg.topology.step_degrees(repro.bridged_rings(16))[0][0]
    assert list(np.flatnonzero(degrees == 3)) == [7, 8] and set(degrees) == {2, 3}
    # the network: slow links exactly between the clusters
    lat = np.asarray(repro.network(16).latency)
    assert lat[0, 8] == repro.BETWEEN[0] and lat[0, 7] == repro.INSIDE[0] and lat[8, 15] == repro.INSIDE[0]
    assert rep.figure is not None and len(rep.figure.axes) == 2
    assert "clusters" in jg.reproduce.names()
