"""Divergence that fires (issue 16): non-finite values, a loss far above its start, an exploding consensus distance
mark a run diverged at the evaluation where it happened; sweeps mark, freeze and report such configurations."""

import importlib

import numpy as np
import pytest

import jaxgossip as jg

sim_mod = importlib.import_module("jaxgossip.simulate")


@pytest.fixture(scope="module")
def setup():
    prob = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=0, solve_optimum=False)
    return prob, jg.topology.ring(8)


def test_a_loss_hundreds_of_times_its_start_is_divergence(setup):
    """dpsgd(lr=500) takes the loss from 2.3 to ~1000: diverged with the default threshold (it was not at 1e6)."""
    prob, topo = setup
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=500), topo, steps=60, eval_every=10, shard=False)
    assert r.diverged and r.diverged_step == 10
    assert np.isfinite(r.metrics["loss"][:2]).all() and np.isnan(r.metrics["loss"][2:]).all()  # frozen after it
    loose = jg.simulate(prob, jg.algorithms.dpsgd(lr=500), topo, steps=60, eval_every=10, shard=False,
                        divergence_threshold=1e6)
    assert not loose.diverged and np.nanmax(loose.metrics["loss"]) > 100 * loose.metrics["loss"][0]  # configurable


def test_a_diverged_run_keeps_the_models_of_the_evaluation_that_caught_it(setup):
    """The blocks after a divergence are skipped whole: the final models are those of step 10 (where lr=500 is
    caught), not of 50 more steps."""
    prob, topo = setup
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=500), topo, steps=60, eval_every=10, shard=False)
    at_10 = jg.simulate(prob, jg.algorithms.dpsgd(lr=500), topo, steps=10, eval_every=10, shard=False)
    assert r.diverged_step == 10 and at_10.diverged_step == 10
    np.testing.assert_allclose(np.asarray(r.state.x), np.asarray(at_10.state.x), rtol=1e-6)
    longer = jg.simulate(prob, jg.algorithms.dpsgd(lr=500), topo, steps=20, eval_every=10, shard=False,
                         divergence_threshold=float("inf"), consensus_threshold=float("inf"))
    assert np.abs(np.asarray(longer.state.x) - np.asarray(at_10.state.x)).max() > 1.0  # steps would have moved them


def test_an_exploding_consensus_distance_is_divergence(setup):
    """CHOCO-SGD with top-k and consensus step 1: the workers drift apart while the loss at their average stays
    moderate; the consensus test catches it, and turning it off leaves the run undetected."""
    prob, topo = setup
    algo = jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.top_k(k=5), consensus=1.0)
    r = jg.simulate(prob, algo, topo, steps=200, eval_every=20, shard=False)
    assert r.diverged and 20 <= r.diverged_step < 200
    seen = r.metrics["consensus"][r.metrics["step"] == r.diverged_step][0]
    assert seen > 100.0  # the evaluation that tripped it
    off = jg.simulate(prob, algo, topo, steps=200, eval_every=20, shard=False, consensus_threshold=float("inf"))
    assert not off.diverged and off.metrics["consensus"][-1] > 1e5 and off.metrics["loss"][-1] < 2.3


def test_non_finite_values_are_divergence():
    prob = jg.problems.quadratic(n_workers=4, dim=5, seed=0)
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=1e6), jg.topology.ring(4), steps=40, eval_every=10, shard=False,
                    divergence_threshold=float("inf"), consensus_threshold=float("inf"))
    assert r.diverged and r.diverged_step is not None


def test_healthy_runs_are_not_flagged(setup):
    prob, topo = setup
    for algo in (jg.algorithms.dpsgd(lr=0.1),
                 jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.quantize(bits=4), consensus=0.5)):
        assert not jg.simulate(prob, algo, topo, steps=200, eval_every=20, shard=False).diverged


@pytest.mark.parametrize("kw, match", [({"divergence_threshold": 1.0}, "divergence_threshold"),
                                       ({"consensus_threshold": -1}, "consensus_threshold"),
                                       ({"divergence_threshold": "big"}, "divergence_threshold")])
def test_thresholds_are_checked(setup, kw, match):
    prob, topo = setup
    with pytest.raises(ValueError, match=match):
        jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=10, **kw)
    with pytest.raises(ValueError, match=match):
        jg.sweep(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=10, **kw)


def test_a_sweep_marks_freezes_and_dates_its_diverged_configurations(setup):
    prob, topo = setup
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=60, eval_every=10, grid={"lr": [0.1, 500.0]},
                  seeds=[0, 1])
    bad, good = df[df["hp.lr"] == 500.0], df[df["hp.lr"] == 0.1]
    assert bad.diverged.all() and (bad.diverged_step == 10).all() and bad[bad.step > 10].loss.isna().all()
    assert not good.diverged.any() and (good.diverged_step == -1).all() and good.loss.notna().all()
    ref = jg.simulate(prob, jg.algorithms.dpsgd(lr=500.0), topo, steps=60, eval_every=10, seed=1, shard=False)
    assert ref.diverged_step == 10  # the same verdict as simulate
