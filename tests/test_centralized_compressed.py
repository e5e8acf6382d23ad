"""CSGD (eq. 3.2 / 3.3) and EC-SGD / DoubleSqueeze (survey Sec. 3.3): identities, traffic counts, bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.algorithms._base import Context
from jaxgossip.algorithms.csgd import (compress_partitions, partition_message_bits, partition_sizes, ring_chunks,
                                      ring_compressed_sum)
from jaxgossip.algorithms.ecsgd import auxiliary_iterate
from jaxgossip.compressors._base import worker_keys
from jaxgossip.simulate import prepare

A = jg.algorithms
C = jg.compressors
N, D, T, LR = 4, 10, 150, 0.2  # D is not a multiple of N: the ring's last chunk is short


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=20, batch_size=2, heterogeneity=1.0, seed=3)


def _trajectory(algo, problem, mixing, pricing, steps):
    """States, mean stochastic gradients (at each step's x, with the step's gradient key) and costs of every step."""
    ctx0 = Context(problem, mixing, pricing, jnp.zeros((), jnp.int32))
    X0 = jnp.tile(problem.x0[None, :], (problem.n, 1))
    state = algo.init(X0, ctx0)
    base = jax.random.key(7)

    def body(state, t):
        key = jax.random.fold_in(base, t)
        ctx = Context(problem, mixing, pricing, t)
        G, _ = problem.stochastic_grads(jax.random.fold_in(key, 0), state.x)
        new, cost = algo.step(state, key, ctx)
        return new, (state, jnp.mean(G, axis=0), cost.bits)

    last, (states, gbar, bits) = jax.lax.scan(body, state, jnp.arange(steps))
    return last, states, gbar, bits


@functools.partial(jax.jit, static_argnames=("steps",))
def _trajectories(algos, problem, mixing, pricing, steps):
    """Every algorithm of the dict in one compiled program (one compile for the whole module)."""
    return {k: _trajectory(a, problem, mixing, pricing, steps) for k, a in algos.items()}


def _algorithms():
    identity = C.identity()
    out = {
        "cpsgd": A.cpsgd(lr=LR, pattern="parameter_server"),
        "id/csgd_ps": A.csgd(LR, identity, form="parameter_server"),
        "id/csgd_ps_single": A.csgd(LR, identity, form="parameter_server", servers="single"),
        "id/csgd_allreduce": A.csgd(LR, identity, form="allreduce"),
        "id/ec_double": A.ec_sgd(LR, identity, compression="double"),
        "id/ec_single": A.ec_sgd(LR, identity, compression="single"),
        "csgd_ps/sign": A.csgd(LR, C.sign(), servers="single"),
        "csgd_ps_multi/quantize2": A.csgd(LR, C.quantize(bits=2)),
        "csgd_allreduce/quantize2": A.csgd(LR, C.quantize(bits=2), form="allreduce"),
    }
    for cname, comp in _compressors().items():
        out[f"ec_double/{cname}"] = A.ec_sgd(LR, comp, compression="double")
    for cname in SINGLE:
        out[f"ec_single/{cname}"] = A.ec_sgd(LR, _compressors()[cname], compression="single")
    return out


@pytest.fixture(scope="module")
def runs(problem):
    algos = _algorithms()
    prep = prepare(problem, algos["cpsgd"], steps=1)
    return jax.device_get(_trajectories(algos, problem, prep.mixing, prep.pricing, T))


def _compressors():
    return {
        "quantize2": C.quantize(bits=2),
        "sign": C.sign(),
        "top_k": C.top_k(k=2),
        "clip_low_bits": C.clip_low_bits(20),
    }


SINGLE = ("sign", "top_k")


# ---- Lemma 3.4.1 ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression,cname", [("double", c) for c in _compressors()] + [("single", c) for c in SINGLE])
def test_lemma_3_4_1_auxiliary_sequence_is_sgd(problem, runs, cname, compression):
    """x~_t = x_t - lr Omega_{t-1} obeys x~_{t+1} = x~_t - lr mean_n g_t^(n) (g at x_t), to float precision."""
    last, states, gbar, _ = runs[f"ec_{compression}/{cname}"]
    aux = jax.vmap(lambda s: auxiliary_iterate(s, LR))(states)  # (T, n, d), x~_0 .. x~_{T-1}
    aux = jnp.concatenate([aux, auxiliary_iterate(last, LR)[None]], axis=0)
    aux, gbar = np.asarray(aux, np.float64), np.asarray(gbar, np.float64)
    # all workers hold the same model
    np.testing.assert_array_equal(np.asarray(last.x), np.broadcast_to(np.asarray(last.x[0]), last.x.shape))
    # one step at a time: x~_{t+1} - x~_t = -lr gbar_t
    np.testing.assert_allclose(aux[1:, 0] - aux[:-1, 0], -LR * gbar, atol=2e-6, rtol=0)
    # accumulated over T steps: x~_T = x_0 - lr sum_t gbar_t (x~_0 = x_0)
    np.testing.assert_allclose(aux[-1, 0], np.asarray(problem.x0) - LR * gbar.sum(axis=0), atol=5e-5, rtol=0)
    # the identity is not vacuous: the compression errors are far from float rounding
    omega = np.asarray(last.x[0], np.float64) - aux[-1, 0]
    assert np.linalg.norm(omega) > 1e-2
    if compression == "single":
        assert float(np.max(np.abs(last.server_error))) == 0.0


# ---- identity compressor == C-PSGD ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["csgd_ps", "csgd_ps_single", "csgd_allreduce", "ec_double", "ec_single"])
def test_identity_compressor_equals_cpsgd_step_for_step(runs, name):
    ref_x, got_x = np.asarray(runs["cpsgd"][1].x), np.asarray(runs[f"id/{name}"][1].x)
    assert np.abs(ref_x[-1] - ref_x[0]).max() > 0.1  # the runs move
    np.testing.assert_allclose(got_x, ref_x, atol=1e-6, rtol=1e-6)


# ---- the ring form's nested compression (eq. 3.3) ------------------------------------------------------------------
def test_ring_sum_matches_chunk_by_chunk_reference():
    """Q(...Q(Q(Q(u_k) + u_{k+1}) + u_{k+2})... + u_{k-1}) per chunk k, written as a plain loop over the ring."""
    n, d = 3, 8
    U = jax.random.normal(jax.random.key(0), (n, d))
    comp = C.quantize(bits=3)
    key = jax.random.key(11)
    got = np.asarray(ring_compressed_sum(comp, key, U))
    c, sizes = ring_chunks(d, n)
    assert sizes == (3, 3, 2)
    Up = np.pad(np.asarray(U), ((0, 0), (0, n * c - d)))
    want = np.zeros(n * c, np.float32)
    for k in range(n):
        acc = jnp.zeros(c)
        for h in range(n):
            acc = comp.compress(jax.random.fold_in(jax.random.fold_in(key, h), k), acc + Up[(k + h) % n, k * c:(k + 1) * c])
        want[k * c:(k + 1) * c] = np.asarray(acc)
    np.testing.assert_allclose(got, want[:d], atol=1e-6)
    # the nesting loses information: with 3 bits the ring sum is not the exact sum
    assert np.abs(got - np.asarray(U).sum(0)).max() > 1e-3
    # and with the identity it is the exact sum
    np.testing.assert_allclose(np.asarray(ring_compressed_sum(C.identity(), key, U)), np.asarray(U).sum(0), atol=1e-5)


def test_parameter_server_form_is_Q_of_mean_of_Q(problem):
    """One CSGD step (one server) equals x - lr Q(mean_i Q(g_i)) with the documented keys (eq. 3.2)."""
    comp = C.quantize(bits=2)
    algo = A.csgd(LR, comp, servers="single")
    prep = prepare(problem, algo, steps=1)

    @jax.jit
    def both(algo, problem):
        ctx = Context(problem, prep.mixing, prep.pricing, jnp.zeros((), jnp.int32))
        X0 = jnp.tile(problem.x0[None, :] + 0.3, (N, 1))
        key = jax.random.key(5)
        new, _ = algo.step(algo.init(X0, ctx), key, ctx)
        G, _ = problem.stochastic_grads(jax.random.fold_in(key, 0), X0)
        up = jnp.mean(jax.vmap(comp.compress)(worker_keys(jax.random.fold_in(key, 1), N), G), axis=0)
        return new.x, X0 - LR * comp.compress(jax.random.fold_in(key, 2), up)[None, :]

    got, want = both(algo, problem)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


# ---- the multi-server parameter server (eq. 3.2 as the survey writes it, Sec. 1.3.4 and 3.1.2) ---------------------
def test_per_partition_compression_equals_compressing_the_slices():
    """Partition k of a d-vector (d = 10 over n = 4: 3, 3, 2, 2 coordinates) is compressed alone, with fold_in(key, k)."""
    comp, key = C.quantize(bits=2), jax.random.key(3)
    for d, n in ((10, 4), (12, 4), (3, 4)):
        x = jax.random.normal(jax.random.key(d), (d,))
        sizes = partition_sizes(d, n)
        assert sum(sizes) == d and max(sizes) - min(sizes) <= 1
        got = np.asarray(compress_partitions(comp, key, x, n))
        bounds = np.cumsum((0,) + sizes)
        want = np.concatenate([np.asarray(comp.compress(jax.random.fold_in(key, k), x[bounds[k]:bounds[k + 1]]))
                               for k in range(n) if sizes[k]])
        np.testing.assert_allclose(got, want, atol=1e-6)
        # bits: each partition's message at its true length, empty partitions send nothing
        assert float(partition_message_bits(comp, d, n)) == sum(2 * s + 64 for s in sizes if s)
    # per partition is not per vector: each slice gets its own range
    x = jax.random.normal(jax.random.key(0), (10,))
    assert np.abs(np.asarray(compress_partitions(comp, key, x, 4)) - np.asarray(comp.compress(key, x))).max() > 1e-3


def test_multi_server_step_is_per_partition_Q_of_mean_of_Q(problem):
    comp = C.quantize(bits=2)
    algo = A.csgd(LR, comp)  # servers="multi" is the default of eq. 3.2
    prep = prepare(problem, algo, steps=1)

    @jax.jit
    def both(algo, problem):
        ctx = Context(problem, prep.mixing, prep.pricing, jnp.zeros((), jnp.int32))
        X0 = jnp.tile(problem.x0[None, :] + 0.3, (N, 1))
        key = jax.random.key(5)
        new, _ = algo.step(algo.init(X0, ctx), key, ctx)
        G, _ = problem.stochastic_grads(jax.random.fold_in(key, 0), X0)
        wk = worker_keys(jax.random.fold_in(key, 1), N)
        up = jnp.mean(jnp.stack([compress_partitions(comp, wk[i], G[i], N) for i in range(N)]), axis=0)
        return new.x, X0 - LR * compress_partitions(comp, jax.random.fold_in(key, 2), up, N)[None, :]

    got, want = both(algo, problem)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


def test_multi_server_cost_is_the_survey_closed_form(problem):
    """2 (N - 1) alpha + 2 (N - 1) / N t_transfer per step (survey Sec. 1.3.4), t_transfer the time of the N
    compressed partitions; the single server costs 2 N (alpha + B beta)."""
    comp = C.quantize(bits=2)
    alpha, bw, steps, batch_time = 1e-3, 1e6, 10, 2 / 1000
    net = jg.Network(latency=alpha, bandwidth=bw)
    multi = jg.simulate(problem, A.csgd(LR, comp), steps=steps, eval_every=5, network=net)
    single = jg.simulate(problem, A.csgd(LR, comp, servers="single"), steps=steps, eval_every=5, network=net)
    vec_bits = sum(2 * s + 64 for s in partition_sizes(D, N))  # (3, 3, 2, 2): 2 bits a value + min, max per partition
    t_transfer = vec_bits / 8 / bw
    per_step = batch_time + 2 * (N - 1) * alpha + 2 * (N - 1) / N * t_transfer
    assert multi.metrics["sim_time"][-1] == pytest.approx(steps * per_step, rel=1e-5)
    assert multi.metrics["bits"][-1] == pytest.approx(steps * 2 * (N - 1) * vec_bits)
    whole = float(comp.bits(D))
    assert single.metrics["sim_time"][-1] == pytest.approx(steps * (batch_time + 2 * N * (alpha + whole / 8 / bw)),
                                                           rel=1e-5)
    assert single.metrics["bits"][-1] == pytest.approx(steps * 2 * N * whole)
    with pytest.raises(ValueError, match="servers must be one of"):
        A.csgd(LR, comp, servers="many")


# ---- traffic: bits and the slides' vector counts -------------------------------------------------------------------
@pytest.mark.parametrize("cname", ["sign", "quantize2", "top_k"])
def test_vectors_exchanged_match_slides_and_bits(runs, cname):
    comp = _compressors()[cname]
    c = float(comp.ratio(D))
    assert 0 < c < 1
    cases = [
        ("cpsgd", A.cpsgd(lr=LR, pattern="parameter_server"), 2 * N),
        (f"ec_single/{cname}", A.ec_sgd(LR, comp, "single"), N * (1 + c)),
        (f"ec_double/{cname}", A.ec_sgd(LR, comp, "double"), 2 * c * N),
        (f"csgd_ps/{cname}", A.csgd(LR, comp, servers="single"), 2 * c * N),
        (None, A.doublesqueeze(LR, comp), 2 * c * N),
    ]
    for key, algo, want in cases:
        assert A.vectors_exchanged(algo, N, D) == pytest.approx(want, rel=1e-6), algo
        if key in runs:  # the bits the compiled steps reported, every step
            np.testing.assert_allclose(np.asarray(runs[key][3]) / (32 * D), want, rtol=1e-6)
    assert A.slides_vectors("standard", N, c) == 2 * N
    assert A.slides_vectors("single", N, c) == pytest.approx(N * (1 + c))
    assert A.slides_vectors("double", N, c) == pytest.approx(2 * c * N)


def test_sign_double_compression_sends_about_one_32nd():
    d = 4096
    ds = A.vectors_exchanged(A.doublesqueeze(0.1, C.sign()), 8, d)
    sgd = A.vectors_exchanged(A.cpsgd(0.1, "parameter_server"), 8, d)
    assert ds / sgd == pytest.approx(1 / 32 + 1 / d)  # d sign bits plus one float32 scale, per message
    assert ds / 8 == pytest.approx(2 / 32 + 2 / d)  # 2cN: "2/32" of N full vectors


def test_ring_form_bits_count_every_chunk(runs):
    algo = A.csgd(LR, C.quantize(bits=2), form="allreduce")
    _, sizes = ring_chunks(D, N)
    assert sizes == (3, 3, 3, 1)
    per_vector = sum(2 * s + 64 for s in sizes)  # 2 bits a value plus min and max per chunk
    assert A.vectors_exchanged(algo, N, D) == pytest.approx(2 * (N - 1) * per_vector / (32 * D))
    np.testing.assert_allclose(np.asarray(runs["csgd_allreduce/quantize2"][3]), 2 * (N - 1) * per_vector)


def test_simulate_bits_metric_and_seconds(problem):
    comp = C.sign()
    net = jg.Network(latency=1e-3, bandwidth=1e6)
    res = jg.simulate(problem, A.doublesqueeze(LR, comp), steps=20, eval_every=10, network=net)
    bits = comp.bits(D)
    assert res.metrics["bits"][-1] == pytest.approx(20 * 32 * D * A.vectors_exchanged(A.doublesqueeze(LR, comp), N, D))
    assert res.metrics["bits"][-1] == pytest.approx(20 * N * 2 * bits)
    # per step: the slowest worker's batch (2 samples at 1000 samples/s) + N messages up and N down, one at a time
    per_step = 2 / 1000 + 2 * N * (1e-3 + bits / 8 / 1e6)
    assert res.metrics["sim_time"][-1] == pytest.approx(20 * per_step, rel=1e-5)


def test_lr_and_compressor_parameters_are_traced(problem):
    """Different lr and quantization bits share one compiled step (a sweep over them is a vmap, not a recompile)."""
    traces = []
    prep = prepare(problem, A.doublesqueeze(LR, C.quantize(bits=2)), steps=1)

    @jax.jit
    def step(algo, problem):
        traces.append(1)
        ctx = Context(problem, prep.mixing, prep.pricing, jnp.zeros((), jnp.int32))
        state = algo.init(jnp.tile(problem.x0[None, :], (N, 1)), ctx)
        return algo.step(state, jax.random.key(0), ctx)[1].bits

    b2 = step(A.doublesqueeze(0.1, C.quantize(bits=2)), problem)
    b4 = step(A.doublesqueeze(0.3, C.quantize(bits=4)), problem)
    assert len(traces) == 1
    assert float(b4) - float(b2) == pytest.approx(2 * N * 2 * D)  # 2 more bits per value, N messages each way


# ---- bad input -----------------------------------------------------------------------------------------------------
def test_bad_params():
    comp = C.sign()
    with pytest.raises(ValueError, match="form must be one of"):
        A.csgd(0.1, comp, form="ring")
    with pytest.raises(ValueError, match="compressor must be"):
        A.csgd(0.1, None)
    with pytest.raises(ValueError, match="compressor must be"):
        A.ec_sgd(0.1, "sign")
    with pytest.raises(ValueError, match="compression must be one of"):
        A.ec_sgd(0.1, comp, compression="triple")
    with pytest.raises(ValueError, match="lr"):
        A.doublesqueeze(-1.0, comp)
    with pytest.raises(ValueError, match="lr"):
        A.csgd("fast", comp)
    with pytest.raises(ValueError, match="optimizer"):
        A.ec_sgd(0.1, comp, optimizer="adam")
    with pytest.raises(ValueError, match="scheme must be one of"):
        A.slides_vectors("triple", 4, 0.1)
    with pytest.raises(ValueError, match="vectors_exchanged: algo must be"):
        A.vectors_exchanged(A.dpsgd(0.1), 4, 10)
    assert A.get("doublesqueeze", lr=0.1, compressor=comp).name == "doublesqueeze"
