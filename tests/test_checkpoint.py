"""Checkpoints: run 2T == run T, stop, resume T (bit-identical), and the file is written atomically."""

import os

import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip import checkpoint


@pytest.fixture(scope="module")
def setup():
    prob = jg.problems.logistic_regression("digits", n_workers=8, batch_size=4, seed=0, solve_optimum=False)
    algo = jg.algorithms.naive_compressed(lr=0.1, compressor=jg.compressors.quantize(bits=4))
    return prob, algo, jg.topology.ring(8)


def test_resume_is_bit_identical(setup, tmp_path):
    prob, algo, topo = setup
    kw = dict(steps=40, eval_every=10, seed=3, shard=False)
    full = jg.simulate(prob, algo, topo, **kw)
    path = str(tmp_path / "run.npz")
    half = checkpoint.simulate(prob, algo, topo, path=path, every=20, stop_at=20, **kw)
    assert os.path.exists(path)
    assert np.isnan(half.metrics["loss"][-1]) and np.isfinite(half.metrics["loss"][2])
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]  # atomic: no temporary left behind
    resumed = checkpoint.simulate(prob, algo, topo, path=path, every=20, **kw)
    for k in full.metrics:
        np.testing.assert_array_equal(resumed.metrics[k], full.metrics[k], err_msg=k)
    np.testing.assert_array_equal(np.asarray(resumed.state.x), np.asarray(full.state.x))


def test_checkpoint_rejects_other_config_and_bad_every(setup, tmp_path):
    prob, algo, topo = setup
    path = str(tmp_path / "run.npz")
    checkpoint.simulate(prob, algo, topo, steps=20, eval_every=10, path=path, every=10, stop_at=10, shard=False)
    with pytest.raises(ValueError, match="another configuration"):
        checkpoint.simulate(prob, algo, topo, steps=20, eval_every=10, seed=1, path=path, every=10, shard=False)
    with pytest.raises(ValueError, match="every"):
        checkpoint.simulate(prob, algo, topo, steps=20, eval_every=10, path=str(tmp_path / "x.npz"), every=15)


def test_typed_prng_keys_in_a_state_round_trip(tmp_path):
    """A state holding typed keys (any impl) is saved as raw key data and restored as the same keys."""
    import jax
    import jax.numpy as jnp

    carry = {"x": jnp.arange(3.0), "keys": jax.random.split(jax.random.key(5), 4), "rbg": jax.random.key(1, impl="rbg")}
    path = str(tmp_path / "k.npz")
    checkpoint.save(path, carry, {"loss": np.float32(1.0)}, [], {"run": "x"})
    back, m0, chunks, config = checkpoint.load(path, carry)
    assert config == {"run": "x"} and chunks == [] and float(m0["loss"]) == 1.0
    np.testing.assert_array_equal(back["x"], carry["x"])
    for k in ("keys", "rbg"):
        assert back[k].dtype == carry[k].dtype
        assert str(jax.random.key_impl(back[k])) == str(jax.random.key_impl(carry[k]))
        np.testing.assert_array_equal(jax.random.key_data(back[k]), jax.random.key_data(carry[k]))
    np.testing.assert_array_equal(jax.random.uniform(back["rbg"], (2,)), jax.random.uniform(carry["rbg"], (2,)))
