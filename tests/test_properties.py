"""Property-based tests (hypothesis): compressors, topologies and gossip backends on random inputs.

* compressors: for random shapes and vectors (normal, zeros, constants, huge 1e30 and tiny 1e-30 scales, mixed
  magnitudes) the message keeps its shape and dtype, is finite, maps 0 to 0, and its content fits the counted bits
  (the knobs, levels, kept indices, signs, ... that ``bits(d)`` pays for); non-finite input behaves as documented in
  ``jaxgossip/compressors/_base.py`` (not rejected: it reaches the message, or a sparsifier drops it);
* topologies: random connected graphs (a random spanning tree plus random edges) give, for every weight rule, a
  symmetric, non-negative, doubly stochastic W supported on the graph, with rho < 1; graphs with two components are
  refused as disconnected;
* gossip backends: dense, gather, sparse and (where the graph is a sum of permutations) shift all equal W @ X.

Hypothesis runs derandomized (the same examples on every run and machine, so CI is reproducible) with few examples and
no deadline (the first example of a shape compiles).
"""

import math

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jaxgossip import compressors as C  # noqa: E402
from jaxgossip import gossip  # noqa: E402
from jaxgossip import topology as T  # noqa: E402
from jaxgossip.compressors._util import index_bits, n_buckets  # noqa: E402
from jaxgossip.compressors.bounded import bits_for_radius  # noqa: E402
from jaxgossip.compressors.qsgd import level_bits  # noqa: E402

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KINDS = ("normal", "zeros", "constant", "huge", "tiny", "mixed")


@jax.jit
def _compress(comp, key, x):
    """One compile per compressor structure and shape (its parameters are traced), not one per eager operation."""
    return comp.compress(key, x)


@jax.jit
def _mix(mixing, X):
    return mixing(X)


# ---- strategies -----------------------------------------------------------------------------------------------------
@st.composite
def vectors(draw, max_size=96):
    """A float32 array of a random shape (1 to 3 axes) and one of the KINDS of values."""
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)))
    if math.prod(shape) > max_size:
        shape = (draw(st.integers(1, max_size)),)
    kind = draw(st.sampled_from(KINDS))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    z = rng.standard_normal(shape)
    if kind == "zeros":
        x = np.zeros(shape)
    elif kind == "constant":
        x = np.full(shape, draw(st.sampled_from([-3.0, 1e-30, 0.5, 1e30])))
    elif kind == "huge":
        x = 1e30 * z
    elif kind == "tiny":
        x = 1e-30 * z
    elif kind == "mixed":  # magnitudes from 1e-30 to 1e30 in one vector
        x = z * 10.0 ** rng.integers(-30, 31, shape)
    else:
        x = z
    return np.asarray(x, np.float32)


BUCKETS = st.one_of(st.none(), st.integers(1, 16))


@st.composite
def compressors(draw, d):
    """A compressor with random parameters that can act on a d-vector."""
    name = draw(st.sampled_from(["identity", "quantize", "qsgd", "low_precision", "sparsify", "random_k", "top_k",
                                 "sign", "terngrad", "clip_low_bits", "bounded"]))
    if name == "identity":
        return C.identity()
    if name == "quantize":
        return C.quantize(bits=draw(st.integers(1, 8)), bucket=draw(BUCKETS))
    if name == "qsgd":
        return C.qsgd(levels=draw(st.integers(1, 16)), bucket=draw(BUCKETS))
    if name == "low_precision":
        return C.low_precision(scale=2.0 ** draw(st.integers(-8, 0)), bits=draw(st.integers(2, 16)))
    if name == "sparsify":
        return C.sparsify(p=draw(st.sampled_from([0.05, 0.3, 1.0])))
    if name == "random_k":
        return C.random_k(k=draw(st.integers(1, d)), scaled=draw(st.booleans()))
    if name == "top_k":
        return C.top_k(k=draw(st.integers(1, d))) if draw(st.booleans()) else C.top_k(fraction=draw(st.sampled_from([0.1, 0.5, 1.0])))
    if name == "sign":
        return C.sign(scale=draw(st.sampled_from(["mean_abs", "norm"])), bucket=draw(BUCKETS))
    if name == "terngrad":
        return C.terngrad(bucket=draw(BUCKETS))
    if name == "clip_low_bits":
        return C.clip_low_bits(low_bits=draw(st.integers(0, 23)))
    return C.bounded(e=draw(st.sampled_from([1e-3, 0.1, 1.0])), radius=draw(st.sampled_from([0.5, 10.0, 1e4])),
                     randomized=draw(st.booleans()))


def _buckets(v, bucket):
    """The real values of each bucket (flat order), as compress sees them."""
    size = v.size if bucket is None else bucket
    return [v[k:k + size] for k in range(0, v.size, size)]


# ---- what a message may hold, and what it costs, per compressor -------------------------------------------------------
def _message_fits(comp, x, out):
    """Assert that the decoded message ``out`` of ``x`` can be written in ``comp.bits(d)`` bits, and that the count is
    the documented one (values, indices, scales, norms all counted)."""
    x64, q = x.reshape(-1).astype(np.float64), out.reshape(-1).astype(np.float64)
    d = x64.size
    bits = float(comp.bits(d))
    p = {k: float(v) for k, v in comp.params.items()}
    name = comp.name
    if name == "identity":
        np.testing.assert_array_equal(q, x64)
        assert bits == 32 * d
    elif name == "quantize":
        (bucket,) = comp.static
        b = int(p["bits"])
        for xb, qb in zip(_buckets(x64, bucket), _buckets(q, bucket)):
            assert len(np.unique(qb)) <= 2**b  # one of 2^b knobs per value
            ulp = 4e-7 * np.max(np.abs(xb))
            assert qb.min() >= xb.min() - ulp and qb.max() <= xb.max() + ulp
        assert bits == d * b + 64 * n_buckets(d, bucket)
    elif name == "qsgd":
        (bucket,) = comp.static
        s = p["levels"]
        for xb, qb in zip(_buckets(x64, bucket), _buckets(q, bucket)):
            norm = np.sqrt(np.sum((xb / max(np.max(np.abs(xb)), 1e-300)) ** 2)) * np.max(np.abs(xb))
            if norm == 0:
                assert not np.any(qb)
                continue
            level = np.abs(qb) / norm * s
            assert np.allclose(level, np.round(level), atol=1e-3) and level.max() <= s + 1e-3  # s + 1 levels
            assert np.all((qb == 0) | (np.sign(qb) == np.sign(xb)))  # and one sign bit
        assert bits == d * (1 + float(level_bits(s))) + 32 * n_buckets(d, bucket)
        assert float(level_bits(s)) == math.ceil(math.log2(s + 1))
    elif name == "low_precision":
        eta, b = p["scale"], int(p["bits"])
        k = q / eta
        assert np.array_equal(k, np.round(k)) and k.min() >= -(2 ** (b - 1)) and k.max() <= 2 ** (b - 1) - 1
        assert bits == d * b
    elif name == "sparsify":
        kept = q != 0
        np.testing.assert_allclose(q[kept], x64[kept] / np.float32(p["p"]), rtol=1e-6)
        assert bits == pytest.approx(p["p"] * d * (32 + index_bits(d)), rel=1e-6)  # the expected length
    elif name in ("random_k", "random_k_unscaled"):
        k = int(p["k"])
        kept = q != 0
        assert kept.sum() <= k
        scale = d / k if name == "random_k" else 1.0
        np.testing.assert_allclose(q[kept], x64[kept] * np.float32(scale), rtol=1e-6)
        assert bits == k * (32 + index_bits(d))
    elif name == "top_k":
        k = int(p["k"]) if "k" in p else max(1, round(p["fraction"] * d))
        kept = q != 0
        assert kept.sum() <= k
        np.testing.assert_array_equal(q[kept], x64[kept])
        if kept.any() and (~kept).any():
            assert np.abs(x64[kept]).min() >= np.abs(x64[~kept]).max()
        assert bits == pytest.approx(k * (32 + index_bits(d)))
    elif name == "sign":
        _, bucket = comp.static
        for xb, qb in zip(_buckets(x64, bucket), _buckets(q, bucket)):
            assert len(np.unique(np.abs(qb))) <= 1  # one scale per bucket
            assert np.all((qb == 0) | (np.sign(qb) == np.where(xb >= 0, 1, -1)))  # one bit per value
        assert bits == d + 32 * n_buckets(d, bucket)
    elif name == "terngrad":
        (bucket,) = comp.static
        for xb, qb in zip(_buckets(x64, bucket), _buckets(q, bucket)):
            s = np.float32(np.max(np.abs(xb)))
            assert set(np.unique(np.abs(qb))) <= {0.0, float(s)}  # {-s, 0, s}
        assert bits == 2 * d + 32 * n_buckets(d, bucket)
    elif name == "clip_low_bits":
        k = int(p["low_bits"])
        words = out.reshape(-1).astype(np.float32).view(np.uint32)
        assert not np.any(words & np.uint32((1 << k) - 1))  # the cleared bits are not sent
        assert bits == d * (32 - k)
    elif name == "bounded":
        (randomized,) = comp.static
        e, M = p["e"], p["radius"]
        norm = np.linalg.norm(x64)
        sent = x64 * (M / norm if norm > M else 1.0)  # the radius is enforced
        assert np.linalg.norm(sent) <= M * (1 + 1e-6)
        assert np.linalg.norm(q - sent) <= e * (1 + 1e-4) + 1e-6 * M  # ||Q(v, e) - v|| <= e
        assert bits == float(bits_for_radius(d, M, e / 2 if randomized else e))  # Lemma 2.1 for the ball of radius M
    else:
        raise AssertionError(f"no property for {name}")


@SETTINGS
@given(data=st.data())
def test_compressors_keep_shapes_and_their_messages_fit_the_counted_bits(data):
    x = data.draw(vectors())
    comp = data.draw(compressors(x.size))
    assert comp.check(x.size) is comp
    out = np.asarray(_compress(comp, jax.random.key(data.draw(st.integers(0, 1000))), jnp.asarray(x)))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.all(np.isfinite(out)), f"{comp!r} gave a non-finite message for a finite input"
    if not np.any(x):
        assert not np.any(out)  # 0 -> 0
    _message_fits(comp, x, out)
    assert float(comp.bits(x.size)) > 0


#: Compressors whose message stays non-finite when the input has a NaN or an inf (the documented table).
PROPAGATE = {
    "identity": C.identity(), "quantize": C.quantize(bits=4), "quantize_bucket": C.quantize(bits=4, bucket=3),
    "qsgd": C.qsgd(levels=4), "sign": C.sign(), "sign_norm": C.sign(scale="norm", bucket=4), "terngrad": C.terngrad(),
    "clip_low_bits": C.clip_low_bits(), "top_k": C.top_k(k=1), "bounded": C.bounded(e=0.1, radius=10.0),
}
#: Compressors that may drop the entry or saturate it (also documented).
MAY_DROP = {"sparsify": C.sparsify(p=0.3), "random_k": C.random_k(k=1), "low_precision": C.low_precision()}


@SETTINGS
@given(data=st.data())
def test_non_finite_input_reaches_the_message_or_is_dropped_as_documented(data):
    x = data.draw(vectors()).reshape(-1)
    x = np.resize(x, data.draw(st.sampled_from([1, 5, 16])))  # few lengths: few compiles
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    x[data.draw(st.integers(0, x.size - 1))] = bad
    key = jax.random.key(data.draw(st.integers(0, 1000)))
    for name, comp in PROPAGATE.items():
        out = np.asarray(_compress(comp, key, jnp.asarray(x)))
        assert out.shape == x.shape and not np.all(np.isfinite(out)), f"{name} hid a non-finite input"
    for name, comp in MAY_DROP.items():
        out = np.asarray(_compress(comp, key, jnp.asarray(x)))
        assert out.shape == x.shape
        if name == "low_precision":
            assert np.all(np.isfinite(out)) != bool(np.isnan(bad))  # a NaN stays; an inf saturates


# ---- topologies -----------------------------------------------------------------------------------------------------
@st.composite
def connected_graphs(draw, max_n=24):
    """A connected undirected graph: a random spanning tree (random parent for each node) plus random extra edges."""
    n = draw(st.integers(2, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    A = np.zeros((n, n), bool)
    for v in range(1, n):
        u = int(rng.integers(0, v))
        A[u, v] = A[v, u] = True
    extra = rng.random((n, n)) < draw(st.sampled_from([0.0, 0.1, 0.4, 1.0]))
    A |= np.triu(extra, 1) | np.triu(extra, 1).T
    perm = rng.permutation(n)  # so that node 0 is not always the tree's root
    return A[np.ix_(perm, perm)]


def _check_mixing(topo, A):
    W = topo.W
    n = A.shape[0]
    np.testing.assert_allclose(W, W.T, atol=1e-12)
    assert W.min() >= -1e-12
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-9)
    off = ~np.eye(n, dtype=bool)
    assert not np.any(W[off & ~A]), "W has weight between workers that are not neighbours"
    lam = np.linalg.eigvalsh(W)
    assert topo.rho == pytest.approx(np.sort(np.abs(lam))[-2] if n > 1 else 0.0, abs=1e-7)
    assert topo.rho < 1 - 1e-9


@SETTINGS
@given(A=connected_graphs(), weights=st.sampled_from(T.WEIGHTS), as_networkx=st.booleans())
def test_random_connected_graphs_give_symmetric_doubly_stochastic_w_with_rho_below_one(A, weights, as_networkx):
    source = nx.from_numpy_array(A.astype(int)) if as_networkx else A
    _check_mixing(T.from_adjacency(source, weights=weights), A)


@SETTINGS
@given(A=connected_graphs(max_n=12), B=connected_graphs(max_n=12))
def test_two_components_are_refused_as_disconnected(A, B):
    n, m = A.shape[0], B.shape[0]
    both = np.zeros((n + m, n + m), bool)
    both[:n, :n], both[n:, n:] = A, B
    with pytest.raises(ValueError, match="disconnected"):
        T.from_adjacency(both)


# ---- gossip backends --------------------------------------------------------------------------------------------------
@st.composite
def gossip_graphs(draw):
    """A random connected graph, or a circulant one (a sum of permutations, so the shift backend applies too)."""
    if draw(st.booleans()):
        return T.from_adjacency(draw(connected_graphs()), weights=draw(st.sampled_from(T.WEIGHTS)))
    n = draw(st.integers(3, 24))
    shifts = draw(st.sets(st.integers(1, n - 1), min_size=1, max_size=3)) | {1}
    A = np.zeros((n, n), bool)
    for s in shifts:
        idx = np.arange(n)
        A[idx, (idx + s) % n] = A[(idx + s) % n, idx] = True
    return T.from_adjacency(A, weights="uniform")


@SETTINGS
@given(topo=gossip_graphs(), d=st.sampled_from([1, 8, 33]), seed=st.integers(0, 2**31 - 1))
def test_every_backend_equals_dense_on_random_graphs(topo, d, seed):
    X = np.random.default_rng(seed).standard_normal((topo.n, d)).astype(np.float32)
    ref = topo.W @ X.astype(np.float64)
    backends = ["dense", "gather", "sparse"] + (["shift"] if topo.permutations is not None else [])
    for backend in backends:
        mixing = gossip.make_mixing(topo, backend)
        np.testing.assert_allclose(np.asarray(_mix(mixing, jnp.asarray(X))), ref, rtol=1e-5, atol=1e-5, err_msg=backend)
        np.testing.assert_allclose(np.asarray(mixing.diag), np.diag(topo.W), rtol=1e-6, atol=1e-7)
