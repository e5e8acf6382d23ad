"""The simulator core: D-PSGD's behaviour, identities, one compile, reproducibility, errors before compiling."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgossip as jg
import importlib

sim_mod = importlib.import_module("jaxgossip.simulate")

N = 8


@pytest.fixture(scope="module")
def quad():
    return jg.problems.quadratic(n_workers=N, dim=10, samples_per_worker=40, heterogeneity=1.0, noise=0.1,
                                 condition_number=5.0, batch_size=4, seed=0)


@pytest.fixture(scope="module")
def ring():
    return jg.topology.ring(N)


def test_dpsgd_converges_to_neighbourhood_of_optimum(quad, ring):
    r = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, steps=3000, eval_every=100, seed=0, shard=False)
    d = r.metrics["dist_to_opt"]
    assert d[0] > 1.0
    assert d[-1] < 0.1 * d[0]
    # a neighbourhood, not a drift: the last third stays small
    assert np.max(d[-10:]) < 0.15 * d[0]
    # the neighbourhood's level: the mean over the stationary last 10 evaluations (a single SGD sample is noisy)
    assert np.mean(r.metrics["suboptimality"][-10:]) < 0.01 * r.metrics["suboptimality"][0]
    # a smaller step size lands closer (the neighbourhood shrinks with gamma)
    r2 = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.01), ring, steps=12000, eval_every=1000, seed=0, shard=False)
    assert np.mean(r2.metrics["dist_to_opt"][-4:]) < np.mean(d[-10:])


def test_pure_gossip_consensus_decays_at_rho_squared(quad):
    topo = jg.topology.ring(16)
    prob = jg.problems.quadratic(n_workers=16, dim=10, samples_per_worker=5, batch_size=1, seed=1)
    X0 = jax.random.normal(jax.random.key(3), (16, 10))
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.0), topo, steps=200, eval_every=1, x0=X0, shard=False)
    c = r.metrics["consensus"]
    ratios = c[101:] / c[100:-1]
    np.testing.assert_allclose(ratios, topo.rho**2, rtol=2e-3)
    # the average never moves under pure gossip
    assert float(jnp.abs(r.state.x.mean(0) - X0.mean(0)).max()) < 1e-5


@pytest.mark.parametrize("order", ["paper", "survey"])
def test_dpsgd_orders_match_their_formulas(quad, ring, order):
    algo = jg.algorithms.dpsgd(lr=0.1, order=order)
    prep = sim_mod.prepare(quad, algo, ring, steps=1, shard=False)
    X = jax.random.normal(jax.random.key(0), (N, quad.d))
    ctx = jg.algorithms.Context(quad, prep.mixing, prep.pricing, jnp.int32(0))
    state = algo.init(X, ctx)
    key = jax.random.key(7)
    new, cost = algo.step(state, key, ctx)
    G, _ = quad.stochastic_grads(jax.random.fold_in(key, 0), X)
    W = jnp.asarray(ring.W, jnp.float32)
    expected = W @ X - 0.1 * G if order == "paper" else W @ (X - 0.1 * G)
    np.testing.assert_allclose(new.x, expected, rtol=1e-5, atol=1e-6)
    assert float(cost.bits) == 2 * N * 32 * quad.d


def test_identity_compressor_makes_naive_equal_dpsgd(quad, ring):
    kw = dict(steps=200, eval_every=20, seed=4, shard=False)
    a = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, **kw)
    b = jg.simulate(quad, jg.algorithms.naive_compressed(lr=0.05, compressor=jg.compressors.identity()), ring, **kw)
    np.testing.assert_allclose(np.asarray(a.state.x), np.asarray(b.state.x), rtol=1e-6, atol=1e-6)
    for k in ("loss", "consensus", "bits"):
        np.testing.assert_allclose(a.metrics[k], b.metrics[k], rtol=1e-6)


def test_naive_compression_stalls(quad, ring):
    kw = dict(eval_every=500, seed=0, shard=False)
    comp = jg.compressors.quantize(bits=2)
    short = jg.simulate(quad, jg.algorithms.naive_compressed(lr=0.05, compressor=comp), ring, steps=2000, **kw)
    long = jg.simulate(quad, jg.algorithms.naive_compressed(lr=0.05, compressor=comp), ring, steps=6000, **kw)
    exact = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, steps=2000, **kw)
    floor_short, floor_long = short.metrics["dist_to_opt"][-1], np.mean(long.metrics["dist_to_opt"][-4:])
    assert floor_short > 2 * exact.metrics["dist_to_opt"][-1]
    assert floor_long > 0.5 * floor_short  # three times the steps does not shrink the floor


def test_cpsgd_keeps_rows_equal_and_matches_minibatch_sgd(quad):
    r = jg.simulate(quad, jg.algorithms.cpsgd(lr=0.05), None, steps=100, eval_every=10, shard=False)
    X = np.asarray(r.state.x)
    assert np.abs(X - X[0]).max() == 0
    assert r.metrics["consensus"].max() < 1e-12  # rounding of the mean only
    # one step by hand
    algo = jg.algorithms.cpsgd(lr=0.05)
    prep = sim_mod.prepare(quad, algo, None, steps=1, shard=False)
    ctx = jg.algorithms.Context(quad, prep.mixing, prep.pricing, jnp.int32(0))
    X0 = jnp.tile(quad.x0 + 1.0, (N, 1))
    key = jax.random.key(2)
    new, cost = algo.step(algo.init(X0, ctx), key, ctx)
    G, _ = quad.stochastic_grads(jax.random.fold_in(key, 0), X0)
    np.testing.assert_allclose(new.x[0], X0[0] - 0.05 * G.mean(0), rtol=1e-6)


def test_optax_direction_as_local_update(quad, ring):
    r = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.02, optimizer=optax.scale_by_adam()), ring, steps=1000,
                    eval_every=100, shard=False)
    assert r.metrics["dist_to_opt"][-1] < 0.2 * r.metrics["dist_to_opt"][0]
    m = jg.simulate(quad, jg.algorithms.cpsgd(lr=0.02, optimizer=optax.trace(0.9)), None, steps=200, eval_every=100,
                    shard=False)
    assert np.isfinite(m.metrics["loss"]).all()


def test_compiles_once_per_static_configuration(quad, ring):
    kw = dict(steps=40, eval_every=10, shard=False)
    jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, **kw)
    before = sim_mod.TRACE_COUNT["chunk"]
    for lr in (0.01, 0.02, 0.03):
        jg.simulate(quad, jg.algorithms.dpsgd(lr=lr), ring, seed=int(lr * 100), **kw)
    jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(N, weights="metropolis"), **kw)
    comp = jg.algorithms.naive_compressed
    jg.simulate(quad, comp(lr=0.05, compressor=jg.compressors.quantize(4)), ring, **kw)
    after_first = sim_mod.TRACE_COUNT["chunk"]
    jg.simulate(quad, comp(lr=0.07, compressor=jg.compressors.quantize(2)), ring, **kw)
    assert after_first - before == 1  # the dpsgd variants reused one program; naive compiled once
    assert sim_mod.TRACE_COUNT["chunk"] == after_first


def _compiled_names(fn):
    """The names of the programs XLA compiles while fn runs (from jax's compile log)."""
    import logging

    names = []

    class Catch(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("Compiling jit("):
                names.append(msg[len("Compiling jit("):].split(")")[0])

    log, handler = logging.getLogger("jax"), Catch(level=logging.DEBUG)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            fn()
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    return names


@pytest.mark.parametrize("backend", ["shift", "gather", "sparse", "dense"])
def test_a_new_shape_compiles_no_host_constructor_programs(backend):
    """The run's own programs compile; the topology's arrays, the initial stack and the carry go to the device from
    the host (``jnp.asarray(x, dtype)``, ``jnp.tile`` or ``jnp.zeros`` would each compile a program per new shape)."""
    prob = jg.problems.quadratic(n_workers=6, dim=13, samples_per_worker=7, seed=0)  # shapes no other test uses
    run = lambda: jg.simulate(prob, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(6), steps=4, eval_every=2,  # noqa: E731
                              backend=backend, shard=False)
    names = _compiled_names(run)
    assert "_chunk_impl" in names
    assert not {"convert_element_type", "broadcast_in_dim", "tile", "concatenate"} & set(names), names
    # a time-varying sequence is padded (tables of different widths) and stacked on the host too
    tv = jg.topology.time_varying([jg.topology.ring(6), jg.topology.exponential(6)])
    names = _compiled_names(lambda: jg.gossip.make_mixing(tv, backend))
    assert names == [], names
    sweep = lambda: jg.sweep(prob, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(6), steps=4, eval_every=2,  # noqa: E731
                             grid={"lr": [0.1, 0.2]}, seeds=[0, 1], backend=backend)
    names = _compiled_names(sweep)
    assert "_batched_chunk" in names
    assert not {"convert_element_type", "broadcast_in_dim", "tile", "concatenate"} & set(names), names


def test_building_problems_of_a_new_shape_compiles_nothing():
    """Problems convert their arrays on the host (float64 features, int64 labels included) before sending them."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((70, 11)), rng.integers(0, 3, 70)  # float64, int64: shapes no other test uses
    names = _compiled_names(lambda: (jg.problems.quadratic(n_workers=5, dim=17, samples_per_worker=9, seed=0),
                                     jg.problems.logistic_regression((X, y), n_workers=5, batch_size=2)))
    assert names == [], names
    prob = jg.problems.logistic_regression((X, y), n_workers=5, batch_size=2)
    assert prob.data_y.dtype == jnp.int32 and prob.data_x.dtype == jnp.float32


def test_a_users_stack_of_initial_models_is_sent_not_converted_on_the_device():
    from jaxgossip.simulate import initial_models

    prob = jg.problems.quadratic(n_workers=3, dim=19, samples_per_worker=4, seed=0)
    X0 = np.arange(3 * 19, dtype=np.float64).reshape(3, 19)
    built = []
    names = _compiled_names(lambda: built.append(initial_models(prob, X0)))
    assert names == [], names
    stack = built[0]
    assert stack.dtype == jnp.float32 and np.array_equal(np.asarray(stack), X0.astype(np.float32))
    assert initial_models(prob, stack) is stack  # a device stack of the right dtype is used as it is


def test_same_seed_bit_identical_other_seed_differs(quad, ring):
    kw = dict(steps=200, eval_every=20, shard=False)
    comp = jg.compressors.quantize(3)
    a = jg.simulate(quad, jg.algorithms.naive_compressed(lr=0.05, compressor=comp), ring, seed=5, **kw)
    b = jg.simulate(quad, jg.algorithms.naive_compressed(lr=0.05, compressor=comp), ring, seed=5, **kw)
    c = jg.simulate(quad, jg.algorithms.naive_compressed(lr=0.05, compressor=comp), ring, seed=6, **kw)
    for k in a.metrics:
        assert np.array_equal(a.metrics[k], b.metrics[k]), k
    assert not np.array_equal(a.metrics["loss"], c.metrics["loss"])


def test_one_and_eight_devices_agree(quad, ring, devices):
    assert len(devices) == 8
    kw = dict(steps=200, eval_every=20, seed=1)
    one = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, shard=False, **kw)
    eight = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, shard=True, **kw)
    assert eight.config["devices"] == 8 and one.config["devices"] == 1
    for k in ("loss", "consensus", "dist_to_opt"):
        np.testing.assert_allclose(one.metrics[k], eight.metrics[k], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(one.state.x), np.asarray(eight.state.x), rtol=1e-5, atol=1e-6)


def test_divergence_is_recorded_not_raised(quad, ring):
    r = jg.simulate(quad, jg.algorithms.dpsgd(lr=5.0), ring, steps=300, eval_every=10, shard=False)
    assert r.diverged and 0 < r.diverged_step <= 300
    i = int(np.searchsorted(r.metrics["step"], r.diverged_step))
    assert np.isnan(r.metrics["loss"][i + 1 :]).all() and np.isfinite(r.metrics["loss"][:i]).all()
    ok = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, steps=100, eval_every=10, shard=False)
    assert not ok.diverged and ok.diverged_step is None


def test_metrics_names_and_costs(quad, ring):
    net = jg.Network(latency=1e-3, bandwidth=1e6)
    r = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, steps=50, eval_every=10, network=net, shard=False)
    for k in ("step", "loss", "grad_norm_sq", "consensus", "bits", "sim_time", "suboptimality", "dist_to_opt"):
        assert k in r.metrics and len(r.metrics[k]) == 6
    assert r.metrics["step"].tolist() == [0, 10, 20, 30, 40, 50]
    msg = 32 * quad.d
    assert r.metrics["bits"][-1] == pytest.approx(50 * 2 * N * msg)
    per_step = quad.batch_size / 1000.0 + 2 * (1e-3 + msg / 8 / 1e6)
    assert r.metrics["sim_time"][-1] == pytest.approx(50 * per_step, rel=1e-5)


def test_result_pandas_save_load_plot(quad, ring, tmp_path):
    r = jg.simulate(quad, jg.algorithms.dpsgd(lr=0.05), ring, steps=40, eval_every=10, shard=False, label="mine")
    df = r.to_pandas()
    assert list(df["step"]) == [0, 10, 20, 30, 40] and set(df["label"]) == {"mine"}
    path = tmp_path / "r.json"
    r.save(str(path))
    back = jg.Result.load(str(path))
    for k in r.metrics:
        np.testing.assert_allclose(back.metrics[k], r.metrics[k])
    assert back.config == r.config and back.label == "mine"
    ax = r.plot(x="sim_time", y="loss")
    assert ax.get_xlabel() == "simulated time (s)"
    fig = jg.plot_grid([r, back])
    assert len(fig.axes) == 4


def test_bad_inputs_fail_before_compiling(quad, ring):
    before = sim_mod.TRACE_COUNT["chunk"]
    algo = jg.algorithms.dpsgd(lr=0.1)
    cases = [
        (dict(topology=jg.topology.ring(6)), "topology has n=6"),
        (dict(topology=None), "needs a topology"),
        (dict(steps=0), "steps must be an integer"),
        (dict(steps=100, eval_every=30), "multiple of eval_every"),
        (dict(shard="maybe"), "shard must be"),
        (dict(x0=np.zeros(3)), "x0 must have shape"),
        (dict(network="fast"), "network must be"),
    ]
    for kw, match in cases:
        args = dict(topology=ring, steps=10)
        args.update(kw)
        topo = args.pop("topology")
        with pytest.raises(ValueError, match=match):
            jg.simulate(quad, algo, topo, **args)
    with pytest.raises(ValueError, match="cannot be split evenly over 8 devices"):
        p6 = jg.problems.quadratic(n_workers=6, dim=4, samples_per_worker=4, batch_size=1)
        jg.simulate(p6, algo, jg.topology.ring(6), steps=10, shard=True)
    with pytest.raises(ValueError, match="bits must be an integer in"):
        jg.compressors.quantize(bits=0)
    with pytest.raises(ValueError, match="bits must be an integer in"):
        jg.compressors.quantize(bits=33)
    with pytest.raises(ValueError, match="lr must be a number in"):
        jg.algorithms.dpsgd(lr=-1)
    with pytest.raises(ValueError, match="order must be one of"):
        jg.algorithms.dpsgd(order="sideways")
    with pytest.raises(ValueError, match="algorithm must be one of"):
        jg.algorithms.get("adamw")
    with pytest.raises(ValueError, match="compressor must be one of"):
        jg.compressors.get("jpeg")
    with pytest.raises(ValueError, match="compressor must be a"):
        jg.algorithms.naive_compressed(lr=0.1)
    assert sim_mod.TRACE_COUNT["chunk"] == before


def test_unrolled_inner_loop_gives_the_same_run(quad, ring, monkeypatch):
    """Long runs unroll the inner scan twice (step_unroll); the numbers are the plain loop's, bit for bit."""
    kw = dict(steps=200, eval_every=20, seed=3, shard=False)
    comp = jg.compressors.quantize(4)
    algo = jg.algorithms.choco_sgd(lr=0.05, consensus=0.5, compressor=comp)
    assert sim_mod.step_unroll(kw["steps"]) == 1
    plain = jg.simulate(quad, algo, ring, **kw)
    monkeypatch.setattr(sim_mod, "LONG_RUN", 100)
    assert sim_mod.step_unroll(kw["steps"]) == 2
    unrolled = jg.simulate(quad, algo, ring, **kw)
    for k in ("loss", "consensus", "bits", "sim_time"):
        np.testing.assert_array_equal(plain.metrics[k], unrolled.metrics[k], err_msg=k)
    np.testing.assert_array_equal(np.asarray(plain.state.x), np.asarray(unrolled.state.x))
