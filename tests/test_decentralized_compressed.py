"""DCD-PSGD, ECD-PSGD, CHOCO-SGD, DeepSqueeze: identities with D-PSGD, ECD's estimate, one compile, theory, errors."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import gossip
from jaxgossip.simulate import TRACE_COUNT, prepare
from jaxgossip.algorithms._base import Context
from jaxgossip.cost import ComputeModel, Network, Pricing

A, C = jg.algorithms, jg.compressors
N, D, STEPS, LR = 8, 6, 25, 0.05


@pytest.fixture(scope="module")
def setup():
    prob = jg.problems.quadratic(n_workers=N, dim=D, samples_per_worker=12, batch_size=2, heterogeneity=1.0, seed=1)
    topo = jg.topology.ring(N)
    return prob, topo


def _trajectory(algo, prob, topo, seed=3, steps=STEPS):
    """All states of `steps` iterations, with simulate's key derivation (step t's key is fold_in(key(seed), t))."""
    mixing = gossip.make_mixing(topo, "dense")
    pricing = Pricing(Network(), ComputeModel(), jnp.asarray(topo.degrees, jnp.float32), prob.n)
    base = jax.random.key(seed)

    @jax.jit
    def run(algo, prob):
        X0 = jnp.broadcast_to(prob.x0, (prob.n, prob.d)) + 0.3 * jax.random.normal(jax.random.key(9), (prob.n, prob.d))
        state = algo.init(X0, Context(prob, mixing, pricing, jnp.zeros((), jnp.int32)))

        def body(s, t):
            new, _ = algo.step(s, jax.random.fold_in(base, t), Context(prob, mixing, pricing, t))
            return new, new

        return jax.lax.scan(body, state, jnp.arange(steps, dtype=jnp.int32))[1]

    return run(algo, prob)


def test_identity_compressor_reproduces_dpsgd_step_for_step(setup):
    prob, topo = setup
    ident = C.identity()
    paper = np.asarray(_trajectory(A.dpsgd(lr=LR), prob, topo).x)
    survey = np.asarray(_trajectory(A.dpsgd(lr=LR, order="survey"), prob, topo).x)
    assert np.abs(paper - survey).max() > 1e-3  # the two orders really differ, so the comparisons below mean something
    cases = [
        (A.dcd_psgd(lr=LR, compressor=ident), paper),
        (A.ecd_psgd(lr=LR, compressor=ident), paper),
        (A.choco_sgd(lr=LR, compressor=ident, consensus=1.0), paper),
        (A.choco_sgd(lr=LR, compressor=ident, consensus=1.0, order="survey"), survey),
        (A.deepsqueeze(lr=LR, compressor=ident, consensus=1.0), survey),
    ]
    for algo, ref in cases:
        states = _trajectory(algo, prob, topo)
        np.testing.assert_allclose(np.asarray(states.x), ref, rtol=0, atol=2e-6, err_msg=algo.name)
        if algo.name == "ecd_psgd":  # Xhat_s = X_s at every step
            np.testing.assert_allclose(np.asarray(states.xhat), np.asarray(states.x), rtol=0, atol=2e-6)
        if algo.name == "deepsqueeze":  # no compression error to feed back
            assert np.abs(np.asarray(states.delta)).max() == 0.0


def test_compressed_runs_differ_and_ecd_estimate_is_unbiased(setup):
    """With 2-bit quantization DCD is no longer D-PSGD; ECD's one-step estimate is unbiased: E[Xhat_s] = X_s when
    Xhat_{s-1} = X_{s-1} (checked at s = 1 over 400 seeds: the mean error shrinks like 1/sqrt(seeds))."""
    prob, topo = setup
    q = C.quantize(bits=2)
    paper = np.asarray(_trajectory(A.dpsgd(lr=LR), prob, topo).x)
    assert np.abs(np.asarray(_trajectory(A.dcd_psgd(lr=LR, compressor=q), prob, topo).x) - paper).max() > 1e-3

    algo = A.ecd_psgd(lr=LR, compressor=q)
    mixing = gossip.make_mixing(topo, "dense")
    pricing = Pricing(Network(), ComputeModel(), jnp.asarray(topo.degrees, jnp.float32), prob.n)
    X0 = 0.5 * jax.random.normal(jax.random.key(2), (prob.n, prob.d))
    ctx = Context(prob, mixing, pricing, jnp.zeros((), jnp.int32))
    state = algo.init(X0, ctx)
    # Xhat_1 - X_1 = 2 (C(Z_1) - Z_1): zero mean given Z_1, whatever the gradient draw
    step = jax.jit(jax.vmap(lambda k: algo.step(state, k, ctx)[0]))
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(5), s))(jnp.arange(400))
    out = step(keys)
    err = np.asarray(out.xhat - out.x)  # (draws, n, d)
    assert np.abs(err).mean() > 1e-3  # the estimate is noisy per draw ...
    sem = err.std(axis=0) / np.sqrt(err.shape[0])
    assert np.all(np.abs(err.mean(axis=0)) < 5 * sem + 1e-6)  # ... but unbiased


@pytest.mark.filterwarnings("ignore:dcd_psgd with:RuntimeWarning")
def test_one_compile_per_static_configuration(setup):
    prob, topo = setup
    runs = [
        A.dcd_psgd(lr=0.05, compressor=C.quantize(bits=8)),
        A.dcd_psgd(lr=0.02, compressor=C.quantize(bits=4)),
    ]
    before = TRACE_COUNT["chunk"]
    res = [jg.simulate(prob, a, topo, steps=20, eval_every=10, seed=0) for a in runs]
    assert TRACE_COUNT["chunk"] - before <= 1
    assert res[0].final("loss") != res[1].final("loss")
    assert res[0].metrics["bits"][-1] > res[1].metrics["bits"][-1]  # 8-bit messages cost more than 4-bit ones
    # a different static choice (CHOCO's order) is a different program, same for both consensus values
    before = TRACE_COUNT["chunk"]
    for c in (0.5, 1.0):
        jg.simulate(prob, A.choco_sgd(lr=0.05, compressor=C.quantize(bits=4), consensus=c, order="survey"), topo,
                    steps=20, eval_every=10, seed=0)
    assert TRACE_COUNT["chunk"] - before == 1


def test_bits_are_priced_per_message(setup):
    prob, topo = setup
    q = C.quantize(bits=4)
    res = jg.simulate(prob, A.ecd_psgd(lr=0.05, compressor=q), topo, steps=10, eval_every=5, seed=0)
    # every worker sends one C(Z) to each of its 2 ring neighbours per step
    assert res.metrics["bits"][-1] == pytest.approx(10 * N * 2 * float(q.bits(D)))


def test_theory_helpers():
    ring = jg.topology.ring(16)
    assert jg.theory.rho(ring) == pytest.approx(jg.topology.ring_rho(16))
    assert jg.theory.mu(ring) == pytest.approx(4.0 / 3.0)  # lambda_n = (1 + 2 cos pi) / 3 = -1/3
    assert jg.theory.mu(jg.topology.complete(8)) == pytest.approx(1.0)
    assert jg.theory.estimate_alpha(C.identity(), np.ones((3, 5))) == 0.0
    Z = np.random.default_rng(0).standard_normal((8, 50))
    alphas = [jg.theory.estimate_alpha(C.quantize(bits=b), Z, num_keys=32) for b in (8, 4, 2)]
    assert alphas[0] < alphas[1] < alphas[2] < 1.5
    # sparsify keeps z / p with prob. p: E||z - C(z)||^2 = (1/p - 1) ||z||^2 exactly, so alpha = sqrt(1/p - 1)
    a = jg.theory.estimate_alpha(C.sparsify(p=0.5), Z, num_keys=400)
    assert a == pytest.approx(1.0, rel=0.1)
    assert jg.theory.estimate_alpha(C.quantize(bits=2), Z, reduce="max") >= alphas[2]
    ok, bad = jg.theory.dcd_condition(ring, alphas[0]), jg.theory.dcd_condition(ring, alphas[1])
    assert ok.holds and ok.margin > 0 and not bad.holds and bad.margin < 0  # Fig. 4: 8 bits fine, 4 bits not
    assert bad.alpha_max == pytest.approx((1 - bad.rho) / (2 * bad.mu))
    assert jg.theory.dcd_condition(jg.topology.complete(8), alphas[1]).holds  # rho = 0: a looser bound


def test_simulate_warns_when_dcd_violates_theorem_1():
    prob = jg.problems.quadratic(n_workers=16, dim=10, samples_per_worker=8, batch_size=2, seed=0)
    ring = jg.topology.ring(16)
    with pytest.warns(RuntimeWarning, match=r"Thm\. 1"):
        prepare(prob, A.dcd_psgd(lr=0.05, compressor=C.quantize(bits=2)), ring, steps=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare(prob, A.dcd_psgd(lr=0.05, compressor=C.identity()), ring, steps=10)
        prepare(prob, A.ecd_psgd(lr=0.05, compressor=C.quantize(bits=2)), ring, steps=10)


@pytest.mark.parametrize(
    "factory, kwargs, match",
    [
        (A.dcd_psgd, {"lr": 0.1}, "compressor must be"),
        (A.ecd_psgd, {"lr": 0.1, "compressor": "quantize"}, "compressor must be"),
        (A.dcd_psgd, {"lr": -0.1, "compressor": C.identity()}, "lr must be a number in"),
        (A.choco_sgd, {"compressor": C.identity(), "consensus": 0.0}, r"consensus must be a number in \(0, 1\]"),
        (A.deepsqueeze, {"compressor": C.identity(), "consensus": 1.5}, r"consensus must be a number in \(0, 1\]"),
        (A.choco_sgd, {"compressor": C.identity(), "order": "reverse"}, "order must be one of"),
        (C.quantize, {"bits": 0}, "bits"),
        (C.quantize, {"bits": 33}, "bits"),
        (C.sparsify, {"p": 0.0}, "p"),
        (C.sparsify, {"p": 1.5}, "p"),
        (C.low_precision, {"scale": -1.0}, "scale"),
    ],
)
def test_bad_parameters_raise_clear_errors(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


def test_theory_bad_input():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        jg.theory.dcd_condition(jg.topology.ring(8), -0.1)
    with pytest.raises(ValueError, match="compressor must be"):
        jg.theory.estimate_alpha("sign", np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-zero"):
        jg.theory.estimate_alpha(C.identity(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reduce"):
        jg.theory.estimate_alpha(C.identity(), np.ones((2, 3)), reduce="median")


def _heavy_tailed(p=0.03, blowup=3.0):
    """A compressor that is exact except, with probability p per message, it sends blowup * x: the relative squared
    error is 0 or (blowup - 1)^2, mean p (blowup - 1)^2 (0.12 here) but sup (blowup - 1)^2 (4 here)."""
    def fn(key, x, p, blowup):
        return jnp.where(jax.random.uniform(key) < p, blowup * x, x)

    return C.Compressor({"p": p, "blowup": blowup}, "heavy_tailed", fn, lambda d, p, blowup: 32 * d, unbiased=False)


def test_estimate_alpha_takes_the_sup_over_draws_not_the_mean():
    """Issue 17: Thm. 1 of Tang et al. (2018) needs sup ||Z - C(Z)||^2 / ||Z||^2; the old mean over draws hid the
    heavy tail, so DCD-PSGD's warning missed the violation."""
    comp = _heavy_tailed()
    Z = np.random.default_rng(0).standard_normal((16, 20))
    mean = jg.theory.estimate_alpha(comp, Z, reduce="mean")
    assert mean < 0.7  # sqrt(max over rows of the per-row mean of 64 draws of 0 or 4)
    assert jg.theory.estimate_alpha(comp, Z) == pytest.approx(2.0)  # the default: the worst draw, sqrt(4)
    assert jg.theory.estimate_alpha(comp, Z, reduce="max") == pytest.approx(2.0)
    assert jg.theory.estimate_alpha(comp, Z, reduce="quantile", quantile=0.5) == 0.0  # a median misses it too
    assert jg.theory.estimate_alpha(comp, Z, reduce="quantile", quantile=1.0) == pytest.approx(2.0)
    # on a complete graph (rho = 0, mu = 1) Thm. 1 allows alpha < 1/2: the mean would say it holds, the sup does not
    complete = jg.topology.complete(8)
    assert jg.theory.dcd_condition(complete, 0.4).holds and not jg.theory.dcd_condition(complete, 2.0).holds
    prob = jg.problems.quadratic(n_workers=8, dim=20, samples_per_worker=8, batch_size=2, seed=0)
    with pytest.warns(RuntimeWarning, match=r"Thm\. 1"):
        cond = jg.theory.warn_if_dcd_unstable(A.dcd_psgd(lr=0.05, compressor=comp), prob, complete)
    assert cond.alpha == pytest.approx(2.0)
    with pytest.raises(ValueError, match="quantile must be"):
        jg.theory.estimate_alpha(comp, Z, reduce="quantile", quantile=1.5)
