"""Convolutions lowered as im2col + one matrix product (jg.models.im2col_conv): the same numbers as XLA's
convolution, one batched matmul (no convolution) when vmapped over per-worker kernels, and the same runs whichever
lowering and worker mapping the library picks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx
from jax import lax

import jaxgossip as jg
from jaxgossip.models.conv import resolve
from jaxgossip.problems.networks import resolve_worker_map

NHWC = ("NHWC", "HWIO", "NHWC")
CASES = [  # lhs shape, rhs shape, strides, padding, rhs dilation, dimension numbers
    ((2, 9, 9, 3), (3, 3, 3, 5), (1, 1), "SAME", None, NHWC),
    ((2, 9, 9, 3), (3, 3, 3, 5), (2, 2), ((1, 1), (1, 1)), None, NHWC),
    ((2, 10, 3), (5, 3, 4), (2,), ((1, 1),), None, ("NWC", "WIO", "NWC")),
    ((2, 3, 9, 9), (5, 3, 3, 3), (1, 2), "VALID", (2, 1), None),  # lax's default NCHW / OIHW
    ((2, 9, 9, 3), (1, 1, 3, 5), (2, 2), "VALID", None, NHWC),
    ((2, 8, 8, 3), (5, 5, 3, 4), (1, 1), "SAME", (2, 2), NHWC),
]


def _conv(fn, case):
    _, _, strides, pad, dil, dn = case
    return lambda x, w: fn(x, w, strides, pad, rhs_dilation=dil, dimension_numbers=dn, precision="highest")


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_im2col_equals_xla_convolution_and_its_gradients(case):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=case[0]), jnp.float32)
    w = jnp.asarray(rng.normal(size=case[1]), jnp.float32)
    ref, ours = _conv(lax.conv_general_dilated, case), _conv(jg.models.im2col_conv, case)
    np.testing.assert_allclose(ours(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
    for a, b in zip(jax.grad(loss(ours), (0, 1))(x, w), jax.grad(loss(ref), (0, 1))(x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _primitives(jaxpr):
    """Every primitive name in a jaxpr, nested jaxprs included."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names |= _primitives(inner)
    return names


def test_vmap_over_workers_kernels_is_one_batched_matmul_not_a_grouped_convolution():
    x = jnp.ones((4, 2, 8, 8, 3))
    w = jnp.ones((4, 3, 3, 3, 6))
    f = lambda x, w: jg.models.im2col_conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    jaxpr = jax.make_jaxpr(jax.vmap(jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), (0, 1))))(x, w).jaxpr
    prims = _primitives(jaxpr)
    assert "conv_general_dilated" not in prims and "dot_general" in prims
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert all(e.params["dimension_numbers"][1][0] for e in dots)  # every product batched over the workers
    xla = jax.make_jaxpr(jax.vmap(lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                                        dimension_numbers=NHWC)))(x, w).jaxpr
    (conv,) = [e for e in xla.eqns if e.primitive.name == "conv_general_dilated"]
    assert conv.params["feature_group_count"] == 4  # what vmap makes of XLA's convolution: a grouped one


def test_transposed_and_grouped_convolutions_are_left_to_xla():
    x, w = jnp.ones((1, 6, 6, 4)), jnp.ones((3, 3, 2, 4))
    got = jg.models.im2col_conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC, feature_group_count=2)
    np.testing.assert_allclose(got, lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC,
                                                             feature_group_count=2))
    w = jnp.ones((3, 3, 4, 4))
    pad = ((1, 1), (1, 1))
    got = jg.models.im2col_conv(x, w, (1, 1), pad, lhs_dilation=(2, 2), dimension_numbers=NHWC)
    np.testing.assert_allclose(got, lax.conv_general_dilated(x, w, (1, 1), pad, lhs_dilation=(2, 2),
                                                             dimension_numbers=NHWC))


def test_the_library_picks_per_backend_and_refuses_unknown_names():
    # GPU: im2col, what the measurement chose on an H200 for every shape (benchmarks/RESULTS-gpu.md)
    assert resolve("auto", "cpu") == "im2col" and resolve("auto", "gpu") == "im2col" and resolve("auto", "tpu") == "xla"
    assert resolve("xla", "cpu") == "xla" and resolve("im2col", "gpu") == "im2col"
    assert resolve_worker_map("auto", "cpu") == "map" and resolve_worker_map("auto", "gpu") == "vmap"
    assert resolve_worker_map("vmap", "cpu") == "vmap"
    with pytest.raises(ValueError, match="conv must be one of"):
        jg.models.LeNet5(conv="fft")
    with pytest.raises(ValueError, match="conv must be one of"):
        jg.problems.from_flax(jg.models.LeNetSmall(), "digits", n_workers=4, conv="winograd")


@pytest.mark.parametrize("name, shape", [("lenet5_small", (8, 8, 1)), ("cnn1d", (40, 1)), ("resnet20", (8, 8, 3))])
def test_zoo_models_give_the_same_outputs_with_either_lowering(name, shape):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3,) + shape), jnp.float32)
    a, b = jg.models.get(name, conv="xla"), jg.models.get(name, conv="im2col")
    variables = a.init(jax.random.key(0), x)
    assert jax.tree.structure(variables) == jax.tree.structure(b.init(jax.random.key(0), x))
    np.testing.assert_allclose(b.apply(variables, x), a.apply(variables, x), rtol=1e-4, atol=1e-5)


class UserCNN(nn.Module):
    """A user's linen CNN written with plain nn.Conv (no jaxgossip import): from_flax lowers it."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        x = nn.relu(nn.Conv(6, (3, 3), strides=2)(x))
        return nn.Dense(10)(x.reshape(x.shape[0], -1))


class UserNNXCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), strides=2, rngs=rngs)
        self.dense = nnx.Linear(4 * 4 * 4, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv(x))
        return self.dense(x.reshape(x.shape[0], -1))


def _grad_primitives(prob):
    X = jnp.broadcast_to(prob.x0, (prob.n, prob.d))
    return _primitives(jax.make_jaxpr(lambda X: prob.stochastic_grads(jax.random.key(0), X))(X).jaxpr)


@pytest.mark.parametrize("make", [lambda: UserCNN(), lambda: UserNNXCNN(nnx.Rngs(0))], ids=["linen", "nnx"])
def test_user_models_are_lowered_and_every_choice_gives_the_same_run(make):
    runs = {}
    for conv, worker_map in (("xla", "vmap"), ("im2col", "vmap"), ("im2col", "map")):
        prob = jg.problems.from_flax(make(), "digits", n_workers=4, batch_size=8, standardize=True, conv=conv,
                                     worker_map=worker_map)
        assert ("conv_general_dilated" in _grad_primitives(prob)) == (conv == "xla")
        res = jg.simulate(prob, jg.algorithms.dpsgd(lr=0.1), jg.topology.ring(4), steps=12, eval_every=4)
        runs[conv, worker_map] = res
    ref = runs["xla", "vmap"]
    assert ref.metrics["loss"][-1] < ref.metrics["loss"][0]
    for res in runs.values():
        np.testing.assert_allclose(res.metrics["loss"], ref.metrics["loss"], rtol=1e-5)
        np.testing.assert_allclose(res.state.x, ref.state.x, rtol=1e-4, atol=1e-5)
