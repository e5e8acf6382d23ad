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
    assert len(df) == 8 * 3 and df.groupby(["hp.lr", "hp.compressor.bits", "seed"]).ngroups == 8
    for lr, bits, seed in [(0.05, 2.0, 0), (0.2, 8.0, 1)]:
        a = jg.algorithms.naive_compressed(lr=lr, compressor=jg.compressors.quantize(bits=bits))
        ref = jg.simulate(prob, a, topo, steps=20, eval_every=10, seed=seed, shard=False)
        sub = df[(df["hp.lr"] == lr) & (df["hp.compressor.bits"] == bits) & (df.seed == seed)]
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
        sub = df[(df["hp.lr"] == lr) & (df.seed == seed)]
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
    assert df["hp.topology"].nunique() == 3 and df.groupby("config_key").ngroups == 3
    ref = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), tops[2], steps=10, eval_every=10, backend="dense", shard=False)
    np.testing.assert_allclose(df[df["hp.topology"] == "complete(8)"].loss.values, ref.metrics["loss"], rtol=2e-6)
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
    keys = ["hp.lr", "seed", "step"]
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
    keys = ["hp.lr", "seed", "step"]
    assert len(eight) == len(one) == 6 * 3
    one, eight = one.sort_values(keys).reset_index(drop=True), eight.sort_values(keys).reset_index(drop=True)
    np.testing.assert_array_equal(one[keys].values, eight[keys].values)
    np.testing.assert_allclose(eight.loss.values, one.loss.values, rtol=1e-5)
    topo_grid = jg.sweep(prob, algo, None, steps=20, eval_every=10, grid=grid, seeds=[0], shard_sweep=True,
                         backend="dense")
    assert len(topo_grid) == 6 * 3 and topo_grid.groupby(["hp.lr", "hp.topology"]).ngroups == 6
    monkeypatch.setattr(sweep_mod, "_run_batch", run_batch)
    plain = jg.sweep(prob, algo, None, steps=20, eval_every=10, grid=grid, seeds=[0], backend="dense")
    cols = ["hp.lr", "hp.topology", "step"]
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


# ---- issue 16: columns, validation, agreement with simulate, seeds that redraw the data ---------------------------------
@pytest.fixture(scope="module")
def choco():
    prob = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=0, solve_optimum=False)
    algo = jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.quantize(bits=4), consensus=0.5)
    return prob, algo, jg.topology.ring(8)


def test_swept_values_and_metrics_never_share_a_column(choco):
    """grid={"consensus": ...} used to be overwritten by the consensus metric (issue 16)."""
    prob, algo, topo = choco
    df = jg.sweep(prob, algo, topo, steps=10, eval_every=10, grid={"consensus": [0.05, 0.5]})
    assert sorted(df["hp.consensus"].unique()) == [0.05, 0.5]  # the swept values, intact
    assert "consensus" in df and df.consensus.iloc[0] == 0.0  # the metric (all workers start at x0)
    assert not any(c.startswith("hp.") for c in ("step", "loss", "consensus", "bits", "sim_time", "diverged"))
    assert {"seed", "diverged", "diverged_step", "config_key", "label"} <= set(df)
    again = jg.sweep(prob, algo, topo, steps=10, eval_every=10, grid={"hp.consensus": [0.05, 0.5]})  # prefix accepted
    np.testing.assert_array_equal(again.loss.values, df.loss.values)


@pytest.mark.parametrize("grid, message", [
    ({"lr": [0.1, -0.1]}, r"grid\['hp.lr'\] value -0.1.*lr must be"),
    ({"compressor.bits": [4, 0]}, r"grid\['hp.compressor.bits'\] value 0.*bits"),
    ({"compressor.bits": [40]}, r"grid\['hp.compressor.bits'\] value 40.*bits"),
    ({"consensus": [5.0]}, r"grid\['hp.consensus'\] value 5.0.*consensus must be"),
    ({"lr": ["fast"]}, r"grid\['hp.lr'\] value 'fast'.*must be numbers"),
    ({"seed": [1]}, r"seeds="),
])
def test_every_swept_value_is_checked_before_compiling(choco, grid, message):
    prob, algo, topo = choco
    before = sim_mod.TRACE_COUNT["chunk"]
    with pytest.raises(ValueError, match=message):
        jg.sweep(prob, algo, topo, steps=10, eval_every=10, grid=grid)
    assert sim_mod.TRACE_COUNT["chunk"] == before  # nothing compiled


def test_top_k_k_above_d_is_rejected_naming_the_grid_key(choco):
    prob, _, topo = choco
    algo = jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.top_k(k=10), consensus=0.5)
    with pytest.raises(ValueError, match=r"grid\['hp.compressor.k'\] value 1000"):
        jg.sweep(prob, algo, topo, steps=10, eval_every=10, grid={"compressor.k": [10, 1000]})  # d = 650


def test_replace_hyper_checks_ranges_like_the_factory():
    with pytest.raises(ValueError, match="lr must be"):
        jg.algorithms.dpsgd(lr=0.1).replace_hyper(lr=-1)
    with pytest.raises(ValueError, match="consensus must be"):
        jg.algorithms.choco_sgd(lr=0.1, compressor=jg.compressors.sign(), consensus=0.5).replace_hyper(consensus=5.0)
    assert float(jg.algorithms.dpsgd(lr=0.1).replace_hyper(lr=0.3).hyper["lr"]) == pytest.approx(0.3)


def test_sweep_and_simulate_agree_within_the_documented_tolerance(choco):
    """A quantized CHOCO sweep and the same runs by simulate: not bitwise (different compiled programs; a stochastic
    rounding decision can flip on an ulp), but within the tolerance the sweep docstring gives, and the step-0
    evaluation within float32 rounding."""
    prob, algo, topo = choco
    grid = {"lr": [0.05, 0.2], "compressor.bits": [4.0, 8.0]}
    df = jg.sweep(prob, algo, topo, steps=100, eval_every=50, grid=grid, seeds=[0, 1])
    for lr in grid["lr"]:
        for bits in grid["compressor.bits"]:
            a = jg.algorithms.choco_sgd(lr=lr, compressor=jg.compressors.quantize(bits=bits), consensus=0.5)
            for seed in (0, 1):
                ref = jg.simulate(prob, a, topo, steps=100, eval_every=50, seed=seed, shard=False)
                sub = df[(df["hp.lr"] == lr) & (df["hp.compressor.bits"] == bits) & (df.seed == seed)]
                np.testing.assert_allclose(sub.loss.values[0], ref.metrics["loss"][0], rtol=1e-6)
                np.testing.assert_allclose(sub.loss.values, ref.metrics["loss"], rtol=2.5e-3 if bits == 4 else 1e-4)
                np.testing.assert_allclose(sub.bits.values, ref.metrics["bits"], rtol=1e-6)


def _factory(seed):
    return jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=seed, solve_optimum=False)


def test_a_problem_factory_redraws_the_data_per_seed_in_one_program():
    topo = jg.topology.ring(8)
    algo = jg.algorithms.dpsgd(lr=0.1)
    before = sim_mod.TRACE_COUNT["chunk"]
    df = jg.sweep(_factory, algo, topo, steps=20, eval_every=10, grid={"lr": [0.05, 0.2]}, seeds=[0, 1, 2])
    assert sim_mod.TRACE_COUNT["chunk"] - before == 1  # 3 data sets stacked: still one program
    assert list(df.data_seed.unique()) == [0, 1, 2]
    for lr, seed in [(0.05, 1), (0.2, 2)]:
        ref = jg.simulate(_factory(seed), jg.algorithms.dpsgd(lr=lr), topo, steps=20, eval_every=10, seed=seed,
                          shard=False)
        sub = df[(df["hp.lr"] == lr) & (df.seed == seed)]
        np.testing.assert_allclose(sub.loss.values, ref.metrics["loss"], rtol=2e-6)
    final = df[df.step == 20]
    plain = jg.sweep(_factory(0), algo, topo, steps=20, eval_every=10, grid={"lr": [0.05, 0.2]}, seeds=[0, 1, 2])
    start, start_plain = df[df.step == 0], plain[plain.step == 0]
    assert start.grad_norm_sq.nunique() == 3  # each data seed's own data: a different gradient at the same x0
    assert start_plain.grad_norm_sq.nunique() == 1  # a fixed Problem: the run seed redraws only what happens in a run
    assert final.loss.nunique() == len(final)
    paired = jg.sweep(_factory, algo, topo, steps=10, eval_every=10, seeds=[0, 1], data_seeds=[5, 5])
    assert list(paired.data_seed.unique()) == [5] and "hp.lr" not in paired
    with pytest.raises(ValueError, match="data_seeds"):
        jg.sweep(_factory(0), algo, topo, steps=10, seeds=[0], data_seeds=[1])
    with pytest.raises(ValueError, match="one per run seed"):
        jg.sweep(_factory, algo, topo, steps=10, seeds=[0, 1], data_seeds=[1])


def test_problems_of_different_shapes_run_as_separate_programs():
    """Dirichlet partitions give each data seed its own largest share m: no stacking, one program per shape, each
    configuration still the numbers of its own problem."""
    def skewed(seed):
        return jg.problems.logistic_regression("digits", n_workers=4, batch_size=4, partition="dirichlet", alpha=0.5,
                                               seed=seed, solve_optimum=False)

    topo = jg.topology.ring(4)
    shapes = {skewed(s).data_x.shape for s in (0, 1)}
    assert len(shapes) == 2
    df = jg.sweep(skewed, jg.algorithms.dpsgd(lr=0.1), topo, steps=20, eval_every=10, grid={"lr": [0.05, 0.2]},
                  seeds=[0, 1])
    assert len(df) == 4 * 3 and sorted(df.data_seed.unique()) == [0, 1]
    ref = jg.simulate(skewed(1), jg.algorithms.dpsgd(lr=0.2), topo, steps=20, eval_every=10, seed=1, shard=False)
    sub = df[(df["hp.lr"] == 0.2) & (df.seed == 1)]
    np.testing.assert_allclose(sub.loss.values, ref.metrics["loss"], rtol=2e-6)
