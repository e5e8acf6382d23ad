"""jg.sweep: grid x seeds as one vmapped program equals separate runs; resume; batching; clear errors."""

import jax
import numpy as np
import pytest

import importlib

import jaxgossip as jg

sim_mod = importlib.import_module("jaxgossip.simulate")  # the modules (jg.simulate / jg.sweep are the functions)
sweep_mod = importlib.import_module("jaxgossip.sweep")


@pytest.fixture(scope="module")
def setup():
    prob = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=0, solve_optimum=False)
    algo = jg.algorithms.naive_compressed(lr=0.1, compressor=jg.compressors.quantize(bits=4))
    return prob, algo, jg.topology.ring(8)


GRID = {"lr": [0.05, 0.2], "compressor.bits": [2.0, 8.0]}


def test_sweep_matches_separate_runs_and_compiles_once(setup, tmp_path):
    prob, algo, topo = setup
    before = sim_mod.TRACE_COUNT["chunk"]
    path = str(tmp_path / "sweep.csv")
    df = jg.sweep(prob, algo, topo, steps=20, eval_every=10, grid=GRID, seeds=[0, 1], resume=path)
    assert sim_mod.TRACE_COUNT["chunk"] - before == 1  # 8 configurations, one traced program
    assert len(df) == 8 * 3 and df.groupby(["lr", "compressor.bits", "seed"]).ngroups == 8
    for lr, bits, seed in [(0.05, 2.0, 0), (0.2, 8.0, 1)]:
        a = jg.algorithms.naive_compressed(lr=lr, compressor=jg.compressors.quantize(bits=bits))
        ref = jg.simulate(prob, a, topo, steps=20, eval_every=10, seed=seed, shard=False)
        sub = df[(df.lr == lr) & (df["compressor.bits"] == bits) & (df.seed == seed)]
        np.testing.assert_array_equal(sub.step.values, ref.metrics["step"])
        np.testing.assert_allclose(sub.bits.values, ref.metrics["bits"], rtol=1e-6)
        # the stochastic quantizer can turn a float32 rounding difference (vmap batches the matmuls) into a different
        # rounding decision, so losses agree closely but not to float precision (see the dpsgd test below for that)
        np.testing.assert_allclose(sub.loss.values, ref.metrics["loss"], rtol=1e-3)
    # different bits give different messages, so the configurations really differ
    last = df[df.step == 20]
    assert last.bits.nunique() == 2 and last.loss.nunique() == 8

    # resume: a rerun finds every configuration done and runs nothing
    calls = []
    orig = sweep_mod._run_batch_of
    sweep_mod._run_batch_of = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        again = jg.sweep(prob, algo, topo, steps=20, eval_every=10, grid=GRID, seeds=[0, 1], resume=path)
        grown = jg.sweep(prob, algo, topo, steps=20, eval_every=10, grid=GRID, seeds=[0, 1, 2], resume=path,
                         batch_size=2)
    finally:
        sweep_mod._run_batch_of = orig
    assert len(again) == len(df) and len(calls) == 2  # nothing for `again`; the 4 new seed-2 configs in 2 batches
    assert len(grown) == 12 * 3
    np.testing.assert_allclose(np.sort(again.loss.values), np.sort(df.loss.values))



def test_sweep_equals_separate_runs_to_float_precision(setup):
    prob, _, topo = setup
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=20, eval_every=10, grid={"lr": [0.05, 0.2]},
                  seeds=[0, 1])
    for lr, seed in [(0.05, 0), (0.2, 1)]:
        ref = jg.simulate(prob, jg.algorithms.dpsgd(lr=lr), topo, steps=20, eval_every=10, seed=seed, shard=False)
        sub = df[(df.lr == lr) & (df.seed == seed)]
        # vmap batches the matmuls: equal to float32 rounding, not bitwise
        np.testing.assert_allclose(sub.loss.values, ref.metrics["loss"], rtol=2e-6)
        np.testing.assert_allclose(sub.consensus.values, ref.metrics["consensus"], rtol=1e-4, atol=1e-9)
    wide = 2**32 + 7  # beyond 32 bits: keyed as jax.random.key(seed) keys it, like simulate
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=20, eval_every=10, seeds=[wide])
    ref = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), topo, steps=20, eval_every=10, seed=wide, shard=False)
    np.testing.assert_allclose(df.loss.values, ref.metrics["loss"], rtol=2e-6)

def test_sweep_over_topologies_and_errors(setup):
    prob, algo, _ = setup
    tops = [jg.topology.ring(8), jg.topology.hypercube(8), jg.topology.complete(8)]
    df = jg.sweep(prob, jg.algorithms.dpsgd(lr=0.1), None, steps=10, eval_every=10, grid={"topology": tops},
                  backend="dense")
    assert df.topology.nunique() == 3 and df.groupby("config_key").ngroups == 3
    ref = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), tops[2], steps=10, eval_every=10, backend="dense", shard=False)
    np.testing.assert_allclose(df[df.topology == "complete(8)"].loss.values, ref.metrics["loss"], rtol=2e-6)
    with pytest.raises(ValueError, match="not a hyperparameter"):
        jg.sweep(prob, algo, jg.topology.ring(8), steps=10, grid={"gamma": [1.0]})
    with pytest.raises(ValueError, match="not a parameter"):
        jg.sweep(prob, algo, jg.topology.ring(8), steps=10, grid={"compressor.k": [1.0]})
    with pytest.raises(ValueError, match="batch_size"):
        jg.sweep(prob, algo, jg.topology.ring(8), steps=10, grid={"lr": [0.1]}, batch_size=0)


def test_memory_estimate_and_automatic_chunking(setup):
    prob, algo, topo = setup
    m1 = sweep_mod.estimate_memory(prob, algo, topo, configs=1)
    m10 = sweep_mod.estimate_memory(prob, algo, topo, configs=10)
    assert (m10 - m1) % 9 == 0 and (m10 - m1) // 9 >= 8 * prob.d * 4  # linear, at least one (n, d) float32 stack
    calls = []
    orig = sweep_mod._run_batch_of
    sweep_mod._run_batch_of = lambda prep, points, *a: calls.append(len(points)) or orig(prep, points, *a)
    try:
        limit = m1 + (m10 - m1) // 9  # room for 2 configurations
        jg.sweep(prob, algo, topo, steps=10, eval_every=10, grid={"lr": [0.1, 0.2, 0.3, 0.4]}, memory_limit=limit)
    finally:
        sweep_mod._run_batch_of = orig
    assert calls == [2, 2]


def test_sweep_sharded_over_devices_equals_one_device(setup, devices, monkeypatch):
    """shard_sweep=True spreads the configurations over the 8 devices; every configuration's numbers are unchanged."""
    prob, _, topo = setup
    assert len(devices) == 8
    algo = jg.algorithms.dpsgd(lr=0.1)
    grid = {"lr": [0.02, 0.05, 0.1, 0.2]}
    kw = dict(steps=20, eval_every=10, grid=grid, seeds=[0, 1])
    one = jg.sweep(prob, algo, topo, shard_sweep=False, **kw)
    seen, run_batch = [], sweep_mod._run_batch

    def spy(carry, *args, **kwargs):
        seen.append(len(jax.tree.leaves(carry)[0].sharding.device_set))
        return run_batch(carry, *args, **kwargs)

    monkeypatch.setattr(sweep_mod, "_run_batch", spy)
    eight = jg.sweep(prob, algo, topo, shard_sweep=True, **kw)
    assert seen and set(seen) == {8}  # the configurations really were spread over the devices
    assert len(one) == len(eight) == 8 * 3
    keys = ["lr", "seed", "step"]
    one, eight = one.sort_values(keys).reset_index(drop=True), eight.sort_values(keys).reset_index(drop=True)
    np.testing.assert_array_equal(one[keys].values, eight[keys].values)
    np.testing.assert_allclose(eight.loss.values, one.loss.values, rtol=1e-5)
    np.testing.assert_allclose(eight.consensus.values, one.consensus.values, rtol=1e-4, atol=1e-9)


def test_sharded_sweep_pads_a_batch_that_does_not_divide_over_the_devices(setup, devices, monkeypatch):
    """6 configurations (and a topology grid) on 8 devices: padded to 8, still spread, the padding dropped."""
    prob, _, topo = setup
    algo = jg.algorithms.dpsgd(lr=0.1)
    grid = {"lr": [0.02, 0.1, 0.2], "topology": [jg.topology.ring(8), jg.topology.hypercube(8)]}
    kw = dict(steps=20, eval_every=10, grid={"lr": grid["lr"]}, seeds=[0, 1])
    seen, run_batch = [], sweep_mod._run_batch

    def spy(carry, *args, **kwargs):
        seen.append((len(jax.tree.leaves(carry)[0].sharding.device_set), jax.tree.leaves(carry)[0].shape[0]))
        return run_batch(carry, *args, **kwargs)

    one = jg.sweep(prob, algo, topo, shard_sweep=False, **kw)
    monkeypatch.setattr(sweep_mod, "_run_batch", spy)
    eight = jg.sweep(prob, algo, topo, shard_sweep=True, **kw)
    assert seen and set(seen) == {(8, 8)}  # 6 configurations + 2 copies, one per device
    keys = ["lr", "seed", "step"]
    assert len(eight) == len(one) == 6 * 3
    one, eight = one.sort_values(keys).reset_index(drop=True), eight.sort_values(keys).reset_index(drop=True)
    np.testing.assert_array_equal(one[keys].values, eight[keys].values)
    np.testing.assert_allclose(eight.loss.values, one.loss.values, rtol=1e-5)
    topo_grid = jg.sweep(prob, algo, None, steps=20, eval_every=10, grid=grid, seeds=[0], shard_sweep=True,
                         backend="dense")
    assert len(topo_grid) == 6 * 3 and topo_grid.groupby(["lr", "topology"]).ngroups == 6
    monkeypatch.setattr(sweep_mod, "_run_batch", run_batch)
    plain = jg.sweep(prob, algo, None, steps=20, eval_every=10, grid=grid, seeds=[0], backend="dense")
    cols = ["lr", "topology", "step"]
    a, b = plain.sort_values(cols).reset_index(drop=True), topo_grid.sort_values(cols).reset_index(drop=True)
    np.testing.assert_allclose(b.loss.values, a.loss.values, rtol=1e-5)


def test_sharded_batches_use_every_accelerators_memory(setup, devices, monkeypatch):
    """Where each device has its own memory, a sharded batch holds the configurations that fit per device times the
    devices; CPU devices share the RAM, so there a sharded batch is sized as an unsharded one."""
    prob, algo, topo = setup
    m1 = sweep_mod.estimate_memory(prob, algo, topo, configs=1)
    per = sweep_mod.estimate_memory(prob, algo, topo, configs=2) - m1
    calls = []
    orig = sweep_mod._run_batch_of
    monkeypatch.setattr(sweep_mod, "_run_batch_of", lambda prep, points, *a: calls.append(len(points)) or
                        orig(prep, points, *a))
    grid, kw = {"lr": [0.05 * (i + 1) for i in range(10)]}, dict(steps=10, eval_every=10, seeds=[0, 1])
    limit = m1 + per  # 2 configurations per device
    jg.sweep(prob, algo, topo, grid=grid, memory_limit=limit, shard_sweep=True, **kw)
    assert calls == [2] * 10  # CPU: shared RAM
    calls.clear()
    monkeypatch.setattr(sweep_mod, "_device_bytes_limit", lambda: 1 << 40)  # as an accelerator reports its own
    jg.sweep(prob, algo, topo, grid=grid, memory_limit=limit, shard_sweep=True, **kw)
    assert calls == [16, 4]  # 2 per device on 8 devices
    calls.clear()
    jg.sweep(prob, algo, topo, grid=grid, memory_limit=limit, shard_sweep=False, **kw)
    assert calls == [2] * 10
