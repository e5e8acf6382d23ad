"""The cost model: every priced pattern equals its closed form; compute-model distributions, stragglers, presets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.cost import HIGH_LATENCY, NETWORK_PRESETS, Pricing

ALPHA, BW = 2e-3, 3e6  # seconds per message, bytes per second
NET = jg.Network(latency=ALPHA, bandwidth=BW)
BITS = 8e5  # 100 kB


def _msg(bits):
    return ALPHA + bits / 8 / BW


def test_network_closed_forms():
    n = 8
    np.testing.assert_allclose(NET.parameter_server(n, BITS), 2 * n * _msg(BITS), rtol=1e-12)
    np.testing.assert_allclose(NET.parameter_server(n, BITS, BITS / 4), n * _msg(BITS) + n * _msg(BITS / 4), rtol=1e-12)
    np.testing.assert_allclose(NET.allreduce(n, BITS), 2 * (n - 1) * ALPHA + 2 * (n - 1) / n * BITS / 8 / BW, rtol=1e-12)
    np.testing.assert_allclose(NET.gossip(2, BITS), 2 * ALPHA + 2 * BITS / 8 / BW, rtol=1e-12)  # ring
    up = np.array([1e5, 2e5, 3e5, 4e5])
    np.testing.assert_allclose(NET.star(up, BITS), 4 * ALPHA + up.sum() / 8 / BW + 4 * _msg(BITS), rtol=1e-6)
    # equal uploads: the star is the single parameter server
    np.testing.assert_allclose(NET.star(np.full(n, BITS), BITS), 2 * n * _msg(BITS), rtol=1e-6)


def test_pricing_patterns_with_constant_compute():
    n, b, speed = 8, 16, 400.0
    degrees = jnp.asarray(jg.topology.ring(n).degrees, jnp.float32)
    pr = Pricing(NET, jg.ComputeModel.constant(speed), degrees, n)
    key = jax.random.key(3)
    comp = b / speed
    c = pr.gossip(key, BITS, b)
    np.testing.assert_allclose([c.bits, c.seconds], [2 * n * BITS, comp + 2 * _msg(BITS)], rtol=1e-6)
    c = pr.allreduce(key, BITS, b)
    np.testing.assert_allclose([c.bits, c.seconds], [2 * (n - 1) * BITS, comp + NET.allreduce(n, BITS)], rtol=1e-6)
    c = pr.parameter_server(key, BITS, BITS / 2, b)
    np.testing.assert_allclose([c.bits, c.seconds], [n * 1.5 * BITS, comp + n * _msg(BITS) + n * _msg(BITS / 2)], rtol=1e-6)
    uneven = pr.parameter_server(key, BITS, BITS / 2, b, up_total=n * BITS + 3.0)  # the uploads' exact sum, as given
    np.testing.assert_allclose([uneven.bits, uneven.seconds], [n * BITS + 3.0 + n * BITS / 2, c.seconds], rtol=1e-9)
    with pytest.raises(ValueError, match="up_total is the uploads' sum"):
        pr.parameter_server(key, BITS, BITS / 2, b, up_total=jnp.full((n,), BITS))
    up = jnp.arange(1, n + 1, dtype=jnp.float32) * 1e4
    c = pr.star(key, up, BITS, b)
    np.testing.assert_allclose([c.bits, c.seconds], [float(up.sum()) + n * BITS,
                                                     comp + n * ALPHA + float(up.sum()) / 8 / BW + n * _msg(BITS)], rtol=1e-6)
    c = pr.gossip_deadline(0.7, BITS)
    np.testing.assert_allclose([c.bits, c.seconds], [2 * n * BITS, 0.7 + 2 * _msg(BITS)], rtol=1e-6)


def test_gossip_prices_the_busiest_worker():
    star = jg.topology.star(6)  # hub of degree 5
    pr = Pricing(NET, jg.ComputeModel.constant(1e9), jnp.asarray(star.degrees, jnp.float32), 6)
    c = pr.gossip(jax.random.key(0), BITS, 1)
    np.testing.assert_allclose(c.seconds, 5 * _msg(BITS) + 1e-9, rtol=1e-6)
    np.testing.assert_allclose(c.bits, 2 * 5 * BITS, rtol=1e-6)


def test_simulated_time_metric_matches_closed_form():
    """A whole run's sim_time and bits are the sums of the per-step closed forms (D-PSGD on a ring)."""
    n, b, speed, steps = 8, 4, 200.0, 20
    prob = jg.problems.quadratic(n_workers=n, dim=5, samples_per_worker=10, batch_size=b)
    comp = jg.ComputeModel.constant(speed)
    per_msg = 32 * prob.d
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(n), steps=steps, eval_every=5,
                    network=NET, compute=comp)
    np.testing.assert_allclose(r.metrics["sim_time"][-1], steps * (b / speed + 2 * _msg(per_msg)), rtol=1e-5)
    np.testing.assert_allclose(r.metrics["bits"][-1], steps * 2 * n * per_msg, rtol=1e-6)
    assert r.config["compute"]["distribution"] == "constant"


def _speeds(model, n=64, keys=400):
    ks = jax.random.split(jax.random.key(0), keys)
    return np.asarray(jax.vmap(lambda k: model.speeds(k, n))(ks))


def test_uniform_speeds():
    v = _speeds(jg.ComputeModel.uniform(10.0, 90.0))
    assert v.min() >= 10.0 and v.max() <= 90.0
    assert abs(v.mean() - 50.0) < 0.5  # std of the mean: 23 / sqrt(25600) = 0.14
    assert abs(np.mean(v < 30.0) - 0.25) < 0.01


def test_exponential_and_shifted_exponential_times():
    t = 1.0 / _speeds(jg.ComputeModel.exponential(100.0))
    assert abs(t.mean() - 0.01) < 0.0003  # std of the mean 0.01 / 160
    assert abs(np.median(t) - 0.01 * np.log(2)) < 0.0003
    t = 1.0 / _speeds(jg.ComputeModel.shifted_exponential(100.0, shift=0.02))
    assert t.min() >= 0.02 - 1e-7
    assert abs(t.mean() - 0.03) < 0.0003


def test_given_and_empirical_speeds():
    given = jg.ComputeModel.given([5.0, 10.0, 20.0])
    np.testing.assert_array_equal(given.speeds(jax.random.key(1), 3), [5.0, 10.0, 20.0])
    np.testing.assert_allclose(given.synchronous(jax.random.key(1), 3, 10), 2.0)
    v = _speeds(jg.ComputeModel.empirical([10.0, 40.0]))
    assert set(np.unique(v)) == {10.0, 40.0}
    assert abs(np.mean(v == 10.0) - 0.5) < 0.01
    with pytest.raises(ValueError, match="shape"):
        given.speeds(jax.random.key(0), 4)


def test_persistent_stragglers():
    base = jg.ComputeModel.constant(100.0).with_stragglers((1, 3), slowdown=5.0)
    np.testing.assert_allclose(base.speeds(jax.random.key(0), 4), [100.0, 20.0, 100.0, 20.0])
    np.testing.assert_allclose(base.synchronous(jax.random.key(0), 4, 10), 0.5)
    uni = jg.ComputeModel.uniform(10.0, 90.0)
    slow = uni.with_stragglers(2, slowdown=4.0)  # workers 0 and 1, at every step
    ks = jax.random.split(jax.random.key(2), 50)
    a = np.asarray(jax.vmap(lambda k: uni.speeds(k, 6))(ks))
    b = np.asarray(jax.vmap(lambda k: slow.speeds(k, 6))(ks))
    np.testing.assert_allclose(b[:, :2], a[:, :2] / 4.0, rtol=1e-6)
    np.testing.assert_array_equal(b[:, 2:], a[:, 2:])
    with pytest.raises(ValueError, match="straggler"):
        slow.speeds(jax.random.key(0), 1)


def test_stragglers_slow_a_synchronous_run():
    n, b = 8, 4
    prob = jg.problems.quadratic(n_workers=n, dim=5, samples_per_worker=10, batch_size=b)
    comp = jg.ComputeModel.constant(100.0).with_stragglers(1, slowdown=10.0)
    net = jg.Network(latency=0.0, bandwidth=1e12)
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.05), jg.topology.ring(n), steps=10, eval_every=5, network=net,
                    compute=comp)
    np.testing.assert_allclose(r.metrics["sim_time"][-1], 10 * b * 10.0 / 100.0, rtol=1e-4)
    assert r.config["compute"]["stragglers"] == [0] and r.config["compute"]["slowdown"] == 10.0


def test_network_presets_and_units():
    best = jg.Network.preset("best")
    assert best.latency == pytest.approx(0.13e-3) and best.bandwidth == pytest.approx(1.4e9 / 8)
    worst = jg.Network.preset("high_latency_low_bandwidth")
    assert worst.latency == HIGH_LATENCY and worst.bandwidth == pytest.approx(5e6 / 8)
    assert set(NETWORK_PRESETS) == {"best", "low_bandwidth", "high_latency", "high_latency_low_bandwidth"}
    net = jg.Network.from_rates(gbps=10.0, latency_ms=2.0)
    assert net.latency == pytest.approx(2e-3) and net.bandwidth == pytest.approx(1.25e9)


@pytest.mark.parametrize("build, match", [
    (lambda: jg.Network.preset("fast"), "name must be one of"),
    (lambda: jg.Network(latency=-1.0), "latency"),
    (lambda: jg.Network(bandwidth=0.0), "bandwidth"),
    (lambda: jg.Network.from_rates(gbps=0), "gbps"),
    (lambda: jg.ComputeModel(distribution="gamma"), "distribution must be one of"),
    (lambda: jg.ComputeModel.uniform(90.0, 10.0), "low <= high"),
    (lambda: jg.ComputeModel(distribution="given"), "needs values"),
    (lambda: jg.ComputeModel.given([1.0, -2.0]), "values"),
    (lambda: jg.ComputeModel.shifted_exponential(10.0, shift=-1.0), "shift"),
    (lambda: jg.ComputeModel.constant(10.0).with_stragglers(1, slowdown=0.5), "slowdown"),
    (lambda: jg.ComputeModel.constant(10.0).with_stragglers("ab"), "workers"),
])
def test_bad_input_is_rejected(build, match):
    with pytest.raises(ValueError, match=match):
        build()


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("build, error, match", [
    # a string where a number belongs: refused here, not inside jit ("Error interpreting argument ... abstract array")
    (lambda: jg.Network(latency="1e-3"), TypeError, "latency must be a real number"),
    (lambda: jg.Network(bandwidth="1e9"), TypeError, "bandwidth"),
    (lambda: jg.Network(latency=True), TypeError, "latency"),
    (lambda: jg.Network.from_rates(gbps="10"), TypeError, "gbps"),
    (lambda: jg.ComputeModel(speed="fast"), TypeError, "speed must be a real number"),
    (lambda: jg.ComputeModel.uniform("10", 90.0), TypeError, "low"),
    (lambda: jg.ComputeModel.given(["fast", "slow"]), TypeError, "values"),
    (lambda: jg.ComputeModel.given("fast"), TypeError, "values"),
    (lambda: jg.ComputeModel.constant(10.0).with_stragglers(1, slowdown="5"), TypeError, "slowdown"),
    # NaN and infinities
    (lambda: jg.Network(latency=NAN), ValueError, "latency must be a finite number"),
    (lambda: jg.Network(latency=INF), ValueError, "latency"),
    (lambda: jg.Network(bandwidth=NAN), ValueError, "bandwidth"),
    (lambda: jg.Network(bandwidth=np.float32(INF)), ValueError, "bandwidth"),
    (lambda: jg.Network.from_rates(gbps=INF), ValueError, "gbps"),
    (lambda: jg.Network.from_rates(latency_ms=NAN), ValueError, "latency_ms"),
    (lambda: jg.ComputeModel(speed=NAN), ValueError, "speed must be a finite number"),
    (lambda: jg.ComputeModel.exponential(INF), ValueError, "speed"),
    (lambda: jg.ComputeModel.uniform(10.0, INF), ValueError, "high"),
    (lambda: jg.ComputeModel.uniform(NAN, 90.0), ValueError, "low"),
    (lambda: jg.ComputeModel.shifted_exponential(10.0, shift=NAN), ValueError, "shift"),
    (lambda: jg.ComputeModel.given([50.0, NAN]), ValueError, "values"),
    (lambda: jg.ComputeModel.given(np.array([50.0, INF])), ValueError, "values"),
    (lambda: jg.ComputeModel.empirical([INF]), ValueError, "values"),
    (lambda: jg.ComputeModel(slowdown=NAN), ValueError, "slowdown"),
    (lambda: jg.ComputeModel.constant(10.0).with_stragglers(1, slowdown=INF), ValueError, "slowdown"),
    (lambda: jg.ComputeModel.constant(10.0).with_stragglers(1, slowdown=NAN), ValueError, "slowdown"),
])
def test_strings_nan_and_infinity_are_refused_naming_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_the_checks_let_jax_rebuild_the_records():
    """jax rebuilds these pytrees with placeholders (None, objects) and tracers: no check may refuse those."""
    net, comp = jg.Network(latency=1e-3), jg.ComputeModel.given([10.0, 20.0]).with_stragglers(1, slowdown=2.0)
    assert jax.tree.map(lambda v: None, net).latency is None
    jax.tree.map(lambda v: object(), comp)
    out = jax.jit(lambda c, m: (c.message(8e3), m.speeds(jax.random.key(0), 2)))(net, comp)
    np.testing.assert_allclose(out[1], [5.0, 20.0])  # worker 0 is the straggler, 2x slower
    batched = jax.vmap(lambda lat: jg.Network(latency=lat).message(0.0))(jnp.array([1e-3, 2e-3]))
    np.testing.assert_allclose(batched, [1e-3, 2e-3])


def test_compute_model_is_traced():
    """Speeds parameters are traced: two uniform ranges share one compiled function."""
    traces = []

    @jax.jit
    def f(model, key):
        traces.append(1)
        return model.speeds(key, 4)

    f(jg.ComputeModel.uniform(10.0, 20.0), jax.random.key(0))
    out = f(jg.ComputeModel.uniform(100.0, 200.0), jax.random.key(0))
    assert len(traces) == 1 and float(out.min()) >= 100.0
