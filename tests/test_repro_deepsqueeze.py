"""deepsqueeze-2bit at size="test" over three seeds: the slides' contrast (paper 004, "DeepSqueeze V.S. DCD-PSGD":
DCD-PSGD fails at 2 bits, DeepSqueeze does not) is shown and checked per seed, and what does not appear is said."""

import os

import numpy as np
import pytest

import jaxgossip as jg

pytestmark = pytest.mark.optimized  # execution-bound: compiled with XLA's optimizations (tests/conftest.py)

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def rep():
    return jg.reproduce.run("deepsqueeze-2bit", size="test", seeds=SEEDS)


def _row(rep, start):
    rows = rep.verdicts[rep.verdicts["claim"].str.startswith(start)]
    assert len(rows) == 1, (start, rep.verdicts["claim"].tolist())
    return rows.iloc[0]


def test_claims_hold_and_outputs_are_written(rep, tmp_path):
    failed = rep.verdicts[~rep.verdicts["holds"]]
    assert rep.holds, f"claims not reproduced:\n{failed.to_string()}"
    assert set(rep.frame["seed"]) == set(SEEDS)
    assert {"label", "step", "suboptimality", "bits"} <= set(rep.frame.columns)
    assert np.all(rep.frame.groupby("label")["seed"].nunique() == len(SEEDS))
    paths = rep.save(str(tmp_path))
    for key in ("csv", "verdicts", "png"):
        assert os.path.getsize(paths[key]) > 0


def test_dcd_fails_at_two_bits_where_deepsqueeze_converges(rep):
    """Issue 17: before, the verdicts said "all claims hold" while the CSV showed DCD-PSGD at 2 bits (0.110) as good
    as DeepSqueeze (0.100): the contrast was not checked. Now it is a claim, checked on every seed, from the frame."""
    assert _row(rep, "2-bit: DCD-PSGD fails on every seed")["holds"]
    assert _row(rep, "2-bit: DeepSqueeze")["holds"] and _row(rep, "sign: DeepSqueeze")["holds"]
    last = rep.frame[rep.frame.step == rep.frame.step.max()].groupby("label")["suboptimality"]
    dcd, ds, ref = (last.get_group(k).to_numpy() for k in ("DCD-PSGD 2-bit", "DeepSqueeze 2-bit", "D-PSGD (32-bit)"))
    assert len(dcd) == len(SEEDS) and np.all(~np.isfinite(dcd) | (dcd > 5 * ref))  # every seed
    assert np.all(np.isfinite(ds)) and np.all(ds < 3 * ref)
    # what does not appear is stated as such, not claimed: the slides' 4-bit failure of DCD-PSGD
    assert "not reproduced" in _row(rep, "not reproduced")["claim"]
