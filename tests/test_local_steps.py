"""Local steps (issue 23): ``jg.topology.local_steps`` (decentralized local SGD, Koloskova et al. 2020, Alg. 1) and
``jg.algorithms.local_sgd`` (local SGD / FedAvg, Stich 2019; McMahan et al. 2017).

* the sequence is H - 1 identity graphs then the topology; its rho is rho(W)^(1/H); H = 1 is the topology itself;
  bad arguments are refused, and the identity is still refused as a plain Topology;
* every identity step costs exactly its computation: zero bits, zero communication seconds; every gossip step costs
  what the same step costs on the plain graph (D-PSGD and gradient tracking, two rounds per step);
* D-PSGD on it is Koloskova's iteration (a NumPy loop with W_t = I unless (t + 1) mod H = 0), and gradient tracking's
  tracker keeps the average gradient through the local steps;
* local_sgd at H = 1 is C-PSGD (to float rounding; bits and seconds exactly); at H = 4 it sends exactly a quarter of the bits, averages exactly at
  every H-th step and nowhere else, prices the other steps as computation only, equals a NumPy loop, and a sweep over
  H is one program equal to the separate runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import jaxgossip as jg

A = jg.algorithms
N, D, H = 6, 5, 3
SPEED, BATCH = 800.0, 4
NETWORK = jg.Network(latency=1e-3, bandwidth=1e5)
COMPUTE = jg.ComputeModel.constant(SPEED)


@pytest.fixture(scope="module")
def problem():
    return jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=BATCH, batch_size="full", heterogeneity=2.0,
                                 seed=1)


def _per_step(res, key):
    return np.diff(np.asarray(res.metrics[key], np.float64))


def _run(problem, algo, topo, steps, **kw):
    return jg.simulate(problem, algo, topo, steps=steps, eval_every=1, seed=0, network=NETWORK, compute=COMPUTE,
                       shard=False, **kw)


# ---- the topology in time --------------------------------------------------------------------------------------------
def test_sequence_structure_and_refusals():
    ring = jg.topology.ring(N)
    seq = jg.topology.local_steps(ring, H)
    assert isinstance(seq, jg.topology.TimeVarying) and len(seq.topologies) == H
    for g in seq.topologies[:-1]:
        np.testing.assert_array_equal(g.W, np.eye(N))
        assert g.max_degree == 0
    assert seq.topologies[-1] is ring
    assert seq.rho == pytest.approx(ring.rho ** (1.0 / H), rel=1e-9)
    assert "H=3" in seq.name
    assert jg.topology.local_steps(ring, 1) is ring
    # a time-varying sequence: its k-th communicating step uses its k-th graph
    tv = jg.topology.time_varying([ring, jg.topology.complete(N)])
    both = jg.topology.local_steps(tv, 2)
    assert [g.max_degree for g in both.topologies] == [0, 2, 0, N - 1]
    for bad in (0, -1, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="H must be an integer"):
            jg.topology.local_steps(ring, bad)
    with pytest.raises(ValueError, match="Topology or TimeVarying"):
        jg.topology.local_steps(ring.W, 2)
    with pytest.raises(ValueError, match="union is not"):
        jg.topology.local_steps(jg.topology.time_varying([jg.topology.identity(N)]), 2)
    with pytest.raises(ValueError, match="disconnected"):  # a user's plain graph is still checked
        jg.topology.Topology(np.eye(N))


def test_identity_steps_cost_only_computation(problem):
    """Per step: an identity step sends 0 bits and lasts exactly the slowest worker's batch / speed; a gossip step
    costs what the plain graph's step costs. D-PSGD (one round) and gradient tracking (two rounds)."""
    ring = jg.topology.ring(N)
    seq = jg.topology.local_steps(ring, H)
    steps = 2 * H
    compute_only = BATCH / SPEED
    for algo in (A.dpsgd(lr=0.05), A.gradient_tracking(lr=0.05)):
        local = _run(problem, algo, seq, steps)
        plain = _run(problem, algo, ring, steps)
        bits, secs = _per_step(local, "bits"), _per_step(local, "sim_time")
        comm = (np.arange(steps) + 1) % H == 0
        assert np.all(bits[~comm] == 0.0)
        np.testing.assert_allclose(secs[~comm], compute_only, rtol=1e-6)
        np.testing.assert_array_equal(bits[comm], _per_step(plain, "bits")[comm])
        np.testing.assert_allclose(secs[comm], _per_step(plain, "sim_time")[comm], rtol=1e-6)
        assert bits[comm].min() > 0 and secs[comm].min() > compute_only
        assert local.metrics["bits"][-1] * H == pytest.approx(plain.metrics["bits"][-1])


def test_identity_step_cost_is_exactly_the_computation(problem):
    """One step at a time, as simulate prices it (``pricing.on(select(mixing, t, period))``): on every identity step
    the cost is exactly (0 bits, the slowest worker's compute time), for drawn speeds too; the gossip step pays."""
    import jax

    from jaxgossip import gossip
    from jaxgossip.algorithms import Context
    from jaxgossip.simulate import prepare

    seq = jg.topology.local_steps(jg.topology.ring(N), H)
    for algo in (A.dpsgd(lr=0.05), A.gradient_tracking(lr=0.05)):
        prep = prepare(problem, algo, seq, steps=H, network=NETWORK, compute=jg.ComputeModel.uniform(100.0, 900.0),
                       shard=False)
        X0 = jax.numpy.broadcast_to(prep.problem.x0, (N, D))
        state = algo.init(X0, Context(prep.problem, prep.mixing, prep.pricing.on(prep.mixing), 0))
        for t in range(H):
            mix = gossip.select(prep.mixing, t, prep.period)
            priced = prep.pricing.on(mix)
            key = jax.random.fold_in(jax.random.key(0), t)
            state, cost = algo.step(state, key, Context(prep.problem, mix, priced, jax.numpy.asarray(t)))
            compute = priced.compute_time(key, prep.problem.batch_size)
            if t < H - 1:
                assert float(cost.bits) == 0.0 and float(cost.seconds) == float(compute), (algo.name, t)
            else:
                assert float(cost.bits) > 0 and float(cost.seconds) > float(compute)


def test_dpsgd_on_local_steps_is_koloskovas_iteration(problem):
    """X_{t+1} = W_t X_t - lr G(X_t), W_t = I unless (t + 1) mod H = 0 (exact gradients: a NumPy loop reproduces it)."""
    ring = jg.topology.ring(N)
    lr, steps = 0.05, 2 * H + 1
    res = _run(problem, A.dpsgd(lr=lr), jg.topology.local_steps(ring, H), steps)
    X = np.broadcast_to(np.asarray(problem.x0, np.float64), (N, D)).copy()
    for t in range(steps):
        G = np.asarray(problem.full_grads(X.astype(np.float32)), np.float64)
        W = ring.W if (t + 1) % H == 0 else np.eye(N)
        X = W @ X - lr * G
    np.testing.assert_allclose(np.asarray(res.state.x), X, rtol=1e-5, atol=1e-6)


def test_gradient_tracking_keeps_the_average_gradient_through_local_steps(problem):
    """DIGing's invariant mean_i y_i = mean_i g_i(x_i) holds on the identity steps as on the gossip steps."""
    seq = jg.topology.local_steps(jg.topology.ring(N), H)
    for steps in (H - 1, H, H + 1):  # ends on a local step, on a gossip step, after one
        res = _run(problem, A.gradient_tracking(lr=0.05), seq, steps)
        X = np.asarray(res.state.x)
        G = np.asarray(problem.full_grads(res.state.x))
        # the next step's tracker Y = D + G (tracking.py: D_t = Y_t - G_t is stored); its mean is the mean gradient
        Y = np.asarray(res.state.d) + G
        np.testing.assert_allclose(Y.mean(axis=0), G.mean(axis=0), atol=1e-5)
        assert np.isfinite(X).all()


# ---- local SGD (centralized) -----------------------------------------------------------------------------------------
def test_local_sgd_with_H_1_is_cpsgd():
    p = jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=8, batch_size=2, seed=0)
    kw = dict(steps=6, eval_every=2, seed=3, network=NETWORK, shard=False)
    a = jg.simulate(p, A.cpsgd(lr=0.1), None, **kw)
    b = jg.simulate(p, A.local_sgd(lr=0.1, H=1), None, **kw)
    # the same operations; XLA may order the worker sum of the two programs differently (1 ulp seen)
    np.testing.assert_allclose(np.asarray(a.state.x), np.asarray(b.state.x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.metrics["loss"], b.metrics["loss"], rtol=1e-6)
    for key in ("bits", "sim_time"):
        np.testing.assert_array_equal(a.metrics[key], b.metrics[key])


def test_local_sgd_averages_every_H_steps_and_matches_numpy(problem):
    lr, steps, H4 = 0.05, 8, 4
    res = {h: _run(problem, A.local_sgd(lr=lr, H=h), None, steps) for h in (1, H4)}
    bits, secs = _per_step(res[H4], "bits"), _per_step(res[H4], "sim_time")
    comm = (np.arange(steps) + 1) % H4 == 0
    assert np.all(bits[~comm] == 0.0)
    np.testing.assert_allclose(secs[~comm], BATCH / SPEED, rtol=1e-6)
    np.testing.assert_array_equal(bits[comm], _per_step(res[1], "bits")[comm])
    np.testing.assert_allclose(secs[comm], _per_step(res[1], "sim_time")[comm], rtol=1e-6)
    assert res[H4].metrics["bits"][-1] * H4 == res[1].metrics["bits"][-1]
    # the NumPy loop of Stich's Alg. 1: local steps, the exact average after every H-th
    X = np.broadcast_to(np.asarray(problem.x0, np.float64), (N, D)).copy()
    consensus = []
    for t in range(steps):
        X = X - lr * np.asarray(problem.full_grads(X.astype(np.float32)), np.float64)
        if (t + 1) % H4 == 0:
            X[:] = X.mean(axis=0)
        consensus.append(np.mean(np.sum((X - X.mean(axis=0)) ** 2, axis=1)))
    np.testing.assert_allclose(np.asarray(res[H4].state.x), X, rtol=1e-5, atol=1e-6)
    measured = np.asarray(res[H4].metrics["consensus"])[1:]
    assert np.all(measured[comm] < 1e-10) and np.all(measured[~comm] > 1e-8), measured
    np.testing.assert_allclose(measured[~comm], np.asarray(consensus)[~comm], rtol=1e-3)


def test_local_sgd_sweeps_H_in_one_program(problem):
    values = [1, 2, 4]
    df = jg.sweep(problem, A.local_sgd(lr=0.05, H=1), None, steps=8, eval_every=8, grid={"H": values},
                  network=NETWORK, compute=COMPUTE)
    final = df[df.step == 8].sort_values("hp.H")
    for h, (_, row) in zip(values, final.iterrows()):
        one = _run(problem, A.local_sgd(lr=0.05, H=h), None, 8)
        assert row["bits"] == one.metrics["bits"][-1]
        assert row["loss"] == pytest.approx(float(one.metrics["loss"][-1]), rel=1e-5)
    assert final["bits"].tolist() == [final["bits"].iloc[0] / h for h in values]


def test_local_sgd_refuses_bad_H():
    for bad in (0, -2, 2.5, True, "4", float("nan"), [2]):
        with pytest.raises(ValueError, match="H must be an integer"):
            A.local_sgd(lr=0.1, H=bad)
    algo = A.local_sgd(lr=0.1, H=2)
    with pytest.raises(ValueError, match="H must be an integer"):
        algo.replace_hyper(H=1.5)
    assert float(algo.replace_hyper(H=8).hyper["H"]) == 8.0
    p = jg.problems.quadratic(n_workers=4, dim=3, samples_per_worker=4, batch_size=2, seed=0)
    for bad in (2.5, 0):  # a swept value is checked like the factory's argument, before compiling
        with pytest.raises(ValueError, match="H must be an integer"):
            jg.sweep(p, algo, None, steps=2, eval_every=2, grid={"H": [1, bad]})


def test_methods_keeping_neighbour_copies_refuse_local_steps(problem):
    """CHOCO-SGD, DCD / ECD-PSGD, DeepSqueeze and BEER would update their neighbours' copies (or error memories) on
    steps that send nothing, and AD-PSGD would pay for messages to itself: refused before compiling, naming why."""
    C = jg.compressors
    seq = jg.topology.local_steps(jg.topology.ring(N), H)
    for algo in (A.choco_sgd(lr=0.05, compressor=C.top_k(k=2), consensus=0.5), A.dcd_psgd(lr=0.05,
                 compressor=C.quantize(bits=8)), A.ecd_psgd(lr=0.05, compressor=C.quantize(bits=8)),
                 A.deepsqueeze(lr=0.05, compressor=C.top_k(k=2), consensus=0.5),
                 A.beer(lr=0.05, compressor=C.top_k(k=2), consensus=0.5), A.ad_psgd(lr=0.05)):
        with pytest.raises(ValueError, match=f"{algo.name} .*local steps"):
            jg.simulate(problem, algo.replace(check_fn=None), seq, steps=H, shard=False)
    # the same methods still run on plain time-varying graphs (no identity step)
    jg.simulate(problem, A.choco_sgd(lr=0.05, compressor=C.top_k(k=2), consensus=0.5).replace(check_fn=None),
                jg.topology.time_varying([jg.topology.ring(N), jg.topology.complete(N)]), steps=2, shard=False)


def test_local_sgd_refuses_model_state_averaged_every_step():
    """A problem that averages its BatchNorm statistics after every step (share_model_state) would average them at the
    local steps too: refused by local_sgd's check before compiling (per-worker statistics are accepted)."""
    from types import SimpleNamespace

    algo = A.local_sgd(lr=0.1, H=2)
    with pytest.raises(ValueError, match="share_model_state"):
        algo.check_fn(algo, SimpleNamespace(has_model_state=True, share_model_state=True), None)
    algo.check_fn(algo, SimpleNamespace(has_model_state=True, share_model_state=False), None)
