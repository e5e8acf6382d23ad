"""Q-DSGD and QuanTimed-DSGD (Reisizadeh et al. 2019, eq. 6-8, Alg. 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.algorithms import Context
from jaxgossip.algorithms.quantimed import deadline_sizes, paper_step_sizes
from jaxgossip.simulate import TRACE_COUNT, prepare

N, M = 8, 6


@pytest.fixture(scope="module")
def problem():
    return jg.problems.logistic_regression("synthetic", n_workers=N, batch_size=M, solve_optimum=False, num_samples=400)


@pytest.fixture(scope="module")
def topology():
    return jg.topology.erdos_renyi(N, 0.5, seed=1, weights="laplacian")


NET = jg.Network(latency=1e-3, bandwidth=1e6)
SPEEDS = jg.ComputeModel.uniform(10.0, 90.0)


def test_long_deadline_subset_is_the_exact_local_gradient(topology):
    """Paper 001, eq. 6 / Remark 1: S_i,t is a subset of the worker's m local samples; with T_d >= m / V_min every
    worker uses all of them, so QuanTimed-DSGD is Q-DSGD with full local gradients (batch_size="full")."""
    comp = jg.compressors.quantize(bits=4)
    prob = jg.problems.logistic_regression("synthetic", n_workers=N, batch_size="full", solve_optimum=False,
                                           num_samples=400)
    m = int(prob.data_x.shape[1])
    q = jg.algorithms.q_dsgd(alpha=0.5, eps=0.6, compressor=comp)
    qt = jg.algorithms.quantimed_dsgd(alpha=0.5, eps=0.6, deadline=m / 10.0, compressor=comp)
    kw = dict(steps=6, eval_every=1, seed=4, network=NET, compute=SPEEDS)
    a = jg.simulate(prob, q, topology, **kw)
    b = jg.simulate(prob, qt, topology, **kw)
    np.testing.assert_allclose(a.metrics["loss"], b.metrics["loss"], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(a.state.x), np.asarray(b.state.x), rtol=1e-4, atol=1e-5)
    # a short deadline uses a random subset: fewer samples, and never one twice
    X = jnp.zeros((N, prob.d))
    idx, mask = prob._sample_indices(jax.random.key(0), N, m, jnp.full((N,), 5), False)
    for row, keep in zip(np.asarray(idx), np.asarray(mask)):
        assert keep.sum() == 5 and len(set(row[keep].tolist())) == 5
    del X


def test_long_deadline_equals_q_dsgd_with_batch_m(problem, topology):
    """With replacement (the earlier reading) and T_d >= m / V_min every worker finishes its m = batch_size samples:
    QuanTimed-DSGD is Q-DSGD step for step."""
    comp = jg.compressors.quantize(bits=4)
    q = jg.algorithms.q_dsgd(alpha=0.5, eps=0.6, compressor=comp)
    qt = jg.algorithms.quantimed_dsgd(alpha=0.5, eps=0.6, deadline=M / 10.0, compressor=comp,
                                      sampling="with_replacement")
    kw = dict(steps=12, eval_every=1, seed=4, network=NET, compute=SPEEDS)
    a = jg.simulate(problem, q, topology, **kw)
    b = jg.simulate(problem, qt, topology, **kw)
    # equal up to float rounding (the two steps are different compiled programs, so XLA may fuse differently)
    np.testing.assert_allclose(a.metrics["loss"], b.metrics["loss"], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(a.state.x), np.asarray(b.state.x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a.metrics["bits"], b.metrics["bits"])
    # the times differ: QuanTimed always spends T_d, Q-DSGD waits for the slowest worker (m / V_min > T_d is impossible
    # here, m / V_min <= m / 10 = T_d)
    comm = topology.max_degree * NET.message(comp.bits(problem.d))
    np.testing.assert_allclose(np.diff(b.metrics["sim_time"]), M / 10.0 + comm, rtol=1e-5)
    assert np.all(np.diff(a.metrics["sim_time"]) < M / 10.0 + comm)
    assert not np.all(np.asarray(a.state.x) == np.asarray(a.state.x)[0])  # the models moved apart: a real test


def test_identity_quantizer_and_eps_one_is_dsgd(problem, topology):
    """Eq. 8 with Q = identity and eps = 1 is DSGD, x_i <- sum_j w_ij x_j - alpha g_i (paper 001, Sec. 5)."""
    q = jg.algorithms.q_dsgd(alpha=0.3, eps=1.0, compressor=jg.compressors.identity())
    d = jg.algorithms.dpsgd(lr=0.3)
    X0, xa, ca = _run_steps(problem, topology, q, 4)
    _, xd, cd = _run_steps(problem, topology, d, 4)
    np.testing.assert_allclose(np.asarray(xa), np.asarray(xd), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ca, cd, rtol=1e-6)
    assert float(jnp.abs(xa - X0).max()) > 1e-3 and len(ca) == 3  # the models moved


def _one_step(problem, topology, algo, seed=0):
    prep = prepare(problem, algo, topology, steps=1, network=NET, compute=SPEEDS)
    ctx = Context(problem, prep.mixing, prep.pricing, jnp.zeros((), jnp.int32))
    X0 = problem.x0[None, :] + 0.1 * jax.random.normal(jax.random.key(9), (N, problem.d))
    state = algo.init(X0, ctx)
    key = jax.random.key(seed)
    new, cost = algo.step(state, key, ctx)
    return X0, new, cost, key, prep


def _run_steps(problem, topology, algo, k):
    """k eager steps from _one_step's models (no compile: cheaper than a whole simulate chunk for a few steps)."""
    X0, state, _, _, prep = _one_step(problem, topology, algo)
    ctx = Context(problem, prep.mixing, prep.pricing, jnp.zeros((), jnp.int32))
    seconds = []
    for t in range(1, k):
        state, cost = algo.step(state, jax.random.key(t), ctx)
        seconds.append(float(cost.seconds))
    return X0, state.x, np.asarray(seconds)


@pytest.mark.parametrize("sampling", ["subset", "with_replacement"])
def test_partial_batches_follow_eq_6_and_8(problem, topology, sampling):
    """One step by hand: sizes min(m, floor(V T_d)) from the step's speeds, masked gradients, eq. 8; m is the local
    data size for the paper's subsets (without replacement), the batch size for draws with replacement."""
    deadline, alpha, eps = 0.07, 0.4, 0.7  # V in [10, 90]: sizes 0 .. 6
    algo = jg.algorithms.quantimed_dsgd(alpha=alpha, eps=eps, deadline=deadline, compressor=jg.compressors.identity(),
                                        sampling=sampling)
    X0, new, cost, key, prep = _one_step(problem, topology, algo)
    V = prep.pricing.speeds(key)
    m = problem.data_x.shape[1] if sampling == "subset" else M
    sizes = np.minimum(np.floor(np.asarray(V) * deadline), m).astype(int)
    np.testing.assert_array_equal(deadline_sizes(V, deadline, m), sizes)
    assert len(set(sizes.tolist())) > 1  # the test exercises different batch sizes
    if sampling == "subset":
        G, _ = problem.stochastic_grads(jax.random.fold_in(key, 0), X0, jnp.asarray(sizes), replace=False, batch=m)
    else:
        G, _ = problem.stochastic_grads(jax.random.fold_in(key, 0), X0, jnp.asarray(sizes))
    W = jnp.asarray(topology.W, jnp.float32)
    expected = (1 - eps) * X0 + eps * (W @ X0) - alpha * eps * G
    np.testing.assert_allclose(np.asarray(new.x), np.asarray(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cost.seconds, deadline + topology.max_degree * NET.message(32 * problem.d), rtol=1e-6)


def test_zero_samples_give_zero_gradient(problem, topology):
    """T_d below 1 / V_max: no worker finishes a sample, the step is pure (quantized) averaging."""
    algo = jg.algorithms.quantimed_dsgd(alpha=5.0, eps=0.5, deadline=1.0 / 100.0, compressor=jg.compressors.identity())
    X0, new, _, _, _ = _one_step(problem, topology, algo)
    W = jnp.asarray(topology.W, jnp.float32)
    np.testing.assert_allclose(np.asarray(new.x), np.asarray(0.5 * X0 + 0.5 * (W @ X0)), rtol=1e-5, atol=1e-6)


def test_quantized_messages_are_priced_by_their_bits(problem, topology):
    comp = jg.compressors.quantize(bits=2)
    algo = jg.algorithms.quantimed_dsgd(deadline=0.1, compressor=comp)
    _, _, cost, _, _ = _one_step(problem, topology, algo)
    np.testing.assert_allclose(cost.bits, topology.degrees.sum() * float(comp.bits(problem.d)), rtol=1e-6)
    default = jg.algorithms.quantimed_dsgd()
    assert default.hyper["compressor"].name == "low_precision"


def test_deadline_sweep_does_not_recompile(problem, topology):
    algo = jg.algorithms.quantimed_dsgd(alpha=0.5, eps=0.5, deadline=0.05, compressor=jg.compressors.quantize(bits=4))
    kw = dict(steps=12, eval_every=1, network=NET, compute=SPEEDS)  # as above: at most one compile in this file
    r1 = jg.simulate(problem, algo, topology, **kw)
    before = TRACE_COUNT["chunk"]
    r2 = jg.simulate(problem, algo.replace_hyper(deadline=0.5), topology, **kw)
    assert TRACE_COUNT["chunk"] == before
    np.testing.assert_allclose(r2.metrics["sim_time"][-1] - r1.metrics["sim_time"][-1], 12 * 0.45, rtol=1e-5)


def test_paper_step_sizes():
    a, e = paper_step_sizes(64, 0.3, 15.0)
    assert a == pytest.approx(0.3 / 2.0) and e == pytest.approx(15.0 / 8.0)
    a, e = paper_step_sizes(16, setting="strongly_convex", delta=0.25)
    assert a == pytest.approx(16 ** -0.125) and e == pytest.approx(16 ** -0.375)


@pytest.mark.parametrize("build, match", [
    (lambda: jg.algorithms.q_dsgd(alpha=0.0), "alpha"),
    (lambda: jg.algorithms.q_dsgd(eps=-1.0), "eps"),
    (lambda: jg.algorithms.quantimed_dsgd(deadline=0.0), "deadline"),
    (lambda: jg.algorithms.quantimed_dsgd(compressor="low_precision"), "compressor"),
    (lambda: paper_step_sizes(10, setting="convex"), "setting"),
    (lambda: paper_step_sizes(10, setting="strongly_convex", delta=0.7), "delta"),
    (lambda: jg.algorithms.get("quantimed_dsgd", deadline="soon"), "deadline"),
])
def test_bad_input_is_rejected(build, match):
    with pytest.raises(ValueError, match=match):
        build()
