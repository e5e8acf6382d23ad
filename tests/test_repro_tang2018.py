"""The claims of tang2018-fig1 and tang2018-fig4 hold at size="test" over three seeds (deepsqueeze-2bit: its own file)."""

import os

import numpy as np
import pytest

import jaxgossip as jg

pytestmark = pytest.mark.optimized  # execution-bound: compiled with XLA's optimizations (tests/conftest.py)

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("name", ["tang2018-fig1", "tang2018-fig4"])  # deepsqueeze-2bit: test_repro_deepsqueeze.py
def test_reproduction_claims_hold(name, tmp_path):
    rep = jg.reproduce.run(name, size="test", seeds=SEEDS)
    failed = rep.verdicts[~rep.verdicts["holds"]]
    assert rep.holds, f"{name}: claims not reproduced:\n{failed.to_string()}"
    assert len(rep.verdicts) >= 4
    assert set(rep.frame["seed"]) == set(SEEDS)
    assert {"label", "step", "suboptimality", "bits"} <= set(rep.frame.columns)
    paths = rep.save(str(tmp_path))
    for key in ("csv", "verdicts", "png"):
        assert os.path.getsize(paths[key]) > 0
    # every algorithm ran every seed to the end or was marked diverged
    counts = rep.frame.groupby("label")["seed"].nunique()
    assert np.all(counts == len(SEEDS))


def test_registered_names():
    names = jg.reproduce.names()
    for name in ("tang2018-fig1", "tang2018-fig4", "deepsqueeze-2bit"):
        assert name in names
