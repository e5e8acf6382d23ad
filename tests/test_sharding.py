"""Worker axis sharded over the 8 fake CPU devices: ppermute gossip and bit-identical runs on 1 and 8 devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import jaxgossip as jg
from jaxgossip import gossip
from jaxgossip.simulate import worker_sharding

TOPOLOGIES = [jg.topology.ring(16), jg.topology.torus(4, 4), jg.topology.hypercube(16), jg.topology.exponential(16)]


def test_eight_devices(devices):
    assert len(devices) == 8


@pytest.mark.default_codegen
@pytest.mark.parametrize("topo", TOPOLOGIES, ids=lambda t: t.name)
def test_ppermute_equals_shift_bitwise(topo):
    """shard_map + ppermute over 8 devices gives the single-device shift backend's bits, and W @ X to rounding."""
    X = jax.random.normal(jax.random.key(0), (16, 33))
    shift = gossip.make_mixing(topo, "shift")
    sh = worker_sharding(16, True)
    sharded = gossip.shard_over(shift, sh.mesh)
    assert sharded.plan is not None
    f = jax.jit(lambda m, X: m(X))
    out8 = f(sharded, jax.device_put(X, sh))
    assert out8.sharding.spec == P("workers")
    if topo.name.startswith("hypercube"):
        # 5 terms: XLA:CPU contracts the sum into FMAs differently in the two programs (1-ulp differences).
        np.testing.assert_allclose(np.asarray(out8), np.asarray(f(shift, X)), rtol=0, atol=2.5e-7)
    else:
        np.testing.assert_array_equal(np.asarray(out8), np.asarray(f(shift, X)))
    np.testing.assert_allclose(np.asarray(out8), topo.W @ np.asarray(X, np.float64), rtol=0, atol=1e-6)
    if topo.name.startswith("ring"):  # rows cross devices by collective permutes, never by gathering the stack
        hlo = f.lower(sharded, jax.device_put(X, sh)).compile().as_text()
        assert "collective-permute" in hlo and "all-gather" not in hlo


def test_ring_moves_only_boundary_rows():
    """On a ring, each device sends one row per direction: the plan has one local round and one remote round."""
    sh = worker_sharding(16, True)
    plan = gossip.shard_over(gossip.make_mixing(jg.topology.ring(16), "shift"), sh.mesh).plan
    for rounds in plan.perms:
        remote = [r for r in rounds if r[0]]
        assert len(remote) == 1 and len(remote[0][1][0]) == 1


@pytest.fixture(scope="module")
def prob():
    return jg.problems.logistic_regression("digits", n_workers=16, batch_size=4, seed=0, solve_optimum=False)


@pytest.mark.default_codegen
@pytest.mark.parametrize("backend", ["dense", "shift"])
def test_one_and_eight_devices_bit_identical(prob, backend):
    algo = jg.algorithms.dpsgd(lr=0.1)
    kw = dict(steps=20, eval_every=10, seed=1, backend=backend)
    r1 = jg.simulate(prob, algo, jg.topology.ring(16), shard=False, **kw)
    r8 = jg.simulate(prob, algo, jg.topology.ring(16), shard=True, **kw)
    assert r8.config["devices"] == 8 and r1.config["devices"] == 1
    assert r8.state.x.sharding.spec == P("workers")
    for k in r1.metrics:
        np.testing.assert_array_equal(r8.metrics[k], r1.metrics[k], err_msg=k)
    np.testing.assert_array_equal(np.asarray(r8.state.x), np.asarray(r1.state.x))


def test_backends_agree_to_rounding(prob):
    """dense, gather and shift sum the same terms in different orders: equal to a few float32 ulps, not bitwise."""
    algo = jg.algorithms.dpsgd(lr=0.1)
    runs = [jg.simulate(prob, algo, jg.topology.ring(16), steps=20, eval_every=10, backend=b, shard=False)
            for b in ("dense", "gather", "shift")]
    for r in runs[1:]:
        np.testing.assert_allclose(r.metrics["loss"], runs[0].metrics["loss"], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(r.state.x), np.asarray(runs[0].state.x), rtol=0, atol=1e-5)


def test_uneven_n_errors_or_falls_back():
    prob = jg.problems.quadratic(n_workers=12, dim=4, samples_per_worker=5, seed=0)
    with pytest.raises(ValueError, match="cannot be split evenly over 8 devices"):
        jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(12), steps=2, shard=True)
    r = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(12), steps=2, eval_every=1, shard="auto")
    assert r.config["devices"] == 1 and np.isfinite(r.final("loss"))
