"""The stochastic quantizers' dither stream (jaxgossip/compressors/_dither.py): its bits, statistics and invariances.

Fixed seeds, no timing. The statistical thresholds are loose (about 5 standard errors, or a chi-square / KS level far in
the tail) and the seeds are fixed, so each test is deterministic; a broken generator (a constant, a shifted copy of
another worker's stream, a stream that depends on the device layout) fails them by a wide margin.
"""

import importlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgossip as jg
from jaxgossip.compressors import _dither as dither
from jaxgossip.compressors._base import compress_rows, worker_keys

GRID = 2.0**-24


def _hash(c, k0, k1):
    """MurmurHash3's fmix32 keyed by (k0, k1), in NumPy uint32 (independent of the library's jnp code)."""
    with np.errstate(over="ignore"):
        h = c ^ k0
        h = h ^ (h >> np.uint32(16))
        h = h * np.uint32(0x85EBCA6B)
        h = h ^ (h >> np.uint32(13))
        h = h + k1
        h = h * np.uint32(0xC2B2AE35)
        return h ^ (h >> np.uint32(16))


def _unhash(h, k0, k1):
    """The inverse of :func:`_hash` for fixed seed words (xor-shifts, adds and odd multiplies invert mod 2^32)."""
    def unxorshift(y, s):
        x = y
        for _ in range(32 // s + 1):
            x = y ^ (x >> np.uint32(s))
        return x

    with np.errstate(over="ignore"):
        h = unxorshift(h, 16)
        h = h * np.uint32(pow(0xC2B2AE35, -1, 2**32))
        h = h - k1
        h = unxorshift(h, 13)
        h = h * np.uint32(pow(0x85EBCA6B, -1, 2**32))
        return unxorshift(h, 16) ^ k0


def _numpy_dither(key, n):
    """The documented stream: seed words from one Threefry draw, h = keyed fmix32 of the index, u = (h >> 8) 2^-24."""
    k0, k1 = (np.uint32(w) for w in np.asarray(jax.random.bits(key, (2,), jnp.uint32)))
    h = _hash(np.arange(n, dtype=np.uint32), k0, k1)
    return (h >> np.uint32(8)).astype(np.float64) * GRID


def _worker_stream(seed, n=64, d=1000):
    """Each worker's dither row as compress_rows derives it (worker i: fold_in(key, i)), jitted and vmapped."""
    keys = worker_keys(jax.random.key(seed), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: dither.uniform(k, (d,))))(keys), np.float64)


def test_stream_is_the_documented_hash():
    """Library (jit, vmap over workers) == the NumPy formula, bit for bit; values lie on the 2^-24 grid in [0, 1)."""
    U = _worker_stream(7, n=8, d=300)
    keys = worker_keys(jax.random.key(7), 8)
    for i in range(8):
        np.testing.assert_array_equal(U[i], _numpy_dither(keys[i], 300))
    assert U.min() >= 0.0 and U.max() <= 1.0 - GRID
    np.testing.assert_array_equal(U / GRID, np.round(U / GRID))


def test_hash_is_a_bijection():
    """For fixed seed words the hash is invertible, so for a uniform seed word k0 each coordinate's hash is exactly
    uniform on 2^32 values and u exactly uniform on the 2^-24 grid: P(u < f) = ceil(2^24 f) / 2^24, within 2^-24 of f
    (the stated bias bound)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    k0, k1 = (np.uint32(w) for w in rng.integers(0, 2**32, 2, dtype=np.uint64))
    np.testing.assert_array_equal(_unhash(_hash(x, k0, k1), k0, k1), x)
    np.testing.assert_array_equal(np.asarray(dither.hash32(jnp.asarray(x), jnp.uint32(k0), jnp.uint32(k1))),
                                  _hash(x, k0, k1))


def test_uniformity_chi_square_and_ks():
    u = _worker_stream(11).ravel()
    n, bins = u.size, 256
    counts = np.bincount((u * bins).astype(int), minlength=bins)
    chi2 = float(((counts - n / bins) ** 2 / (n / bins)).sum())
    assert chi2 < 255 + 6 * np.sqrt(2 * 255), chi2  # chi2(255): mean 255, sd 22.6
    s = np.sort(u)
    ks = max(np.max(np.arange(1, n + 1) / n - s), np.max(s - np.arange(n) / n))
    assert ks * np.sqrt(n) < 1.95, ks  # Kolmogorov: P(> 1.95) ~ 0.001
    bits = (u / GRID).astype(np.int64)
    freq = np.array([((bits >> b) & 1).mean() for b in range(24)])
    assert np.all(np.abs(freq - 0.5) < 5 * 0.5 / np.sqrt(n)), freq


def _max_offdiag_corr(R):
    C = np.corrcoef(R)
    return float(np.max(np.abs(C[~np.eye(len(C), dtype=bool)])))


def test_independent_across_workers_and_steps():
    """Rows of different workers, and one worker's rows at different steps, are uncorrelated (each pair's sample
    correlation ~ N(0, 1/d)); neighbouring coordinates too."""
    d = 1000
    assert _max_offdiag_corr(_worker_stream(3, n=64, d=d)) < 5.5 / np.sqrt(d)
    root = jax.random.key(3)
    step_rows = jax.vmap(lambda t: dither.uniform(jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(root, t), 1),
                                                                      5), (d,)))(jnp.arange(64))
    assert _max_offdiag_corr(np.asarray(step_rows, np.float64)) < 5.5 / np.sqrt(d)
    U = _worker_stream(5)
    lag = np.corrcoef(U[:, :-1].ravel(), U[:, 1:].ravel())[0, 1]
    assert abs(lag) < 5 / np.sqrt(U.size), lag
    # a shifted copy of another row would correlate at some lag: none does
    F = np.fft.rfft(U - 0.5, 2 * d, axis=1)
    xc = np.fft.irfft(F[:32] * np.conj(F[32:]), 2 * d, axis=1) / (d / 12)
    assert np.max(np.abs(xc)) < 7 / np.sqrt(d)


def _mc_mean(comp, x, m):
    keys = jax.random.split(jax.random.key(2024), m)
    out = jax.jit(jax.vmap(lambda k: comp.compress(k, x)))(keys)
    return np.asarray(out, np.float64).mean(axis=0)


@pytest.mark.parametrize("name", ["quantize", "qsgd", "terngrad", "low_precision", "encode_random"])
def test_quantizers_unbiased_with_the_new_stream(name):
    """Monte-Carlo mean of C(x) over 20,000 keys equals x within 5 CLT standard errors (the rounding of coordinate c
    between its two neighbours a step s apart has standard deviation s sqrt(f (1 - f)))."""
    x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, 24), jnp.float32)
    xn = np.asarray(x, np.float64)
    if name == "quantize":
        comp, step = jg.compressors.quantize(bits=2), (xn.max() - xn.min()) / 3
    elif name == "qsgd":
        comp, step = jg.compressors.qsgd(levels=2), np.linalg.norm(xn) / 2
    elif name == "terngrad":
        comp, step = jg.compressors.terngrad(), np.abs(xn).max()
    elif name == "low_precision":
        comp, step = jg.compressors.low_precision(scale=0.25, bits=4), 0.25
    else:
        bounded = importlib.import_module("jaxgossip.compressors.bounded")
        comp = jg.compressors.Compressor({}, "encode_random", lambda k, v: bounded.encode_random(k, v, 1.0),
                                         lambda d: 0.0)
        step = 1.0 / np.sqrt(x.size)
    m = 20_000
    mean = _mc_mean(comp, x, m)
    f = np.abs(xn) / step % 1.0 if name != "quantize" else ((xn - xn.min()) / step) % 1.0
    sd = step * np.sqrt(f * (1 - f))
    assert np.all(np.abs(mean - xn) <= 5 * sd / np.sqrt(m) + step * GRID + 1e-6), np.abs(mean - xn) / (sd / np.sqrt(m))


def test_quantize_rounds_with_this_stream():
    """quantize's output is the rounding of (x - min) / step by this stream's u (u < frac rounds up), recomputed in
    NumPy: pins the stream the compressors use (jax.random.uniform's draws would give other roundings)."""
    x = jnp.asarray(np.random.default_rng(2).standard_normal(500), jnp.float32)
    key = jax.random.key(9)
    out = np.asarray(jg.compressors.quantize(bits=3).compress(key, x), np.float64)
    xn = np.asarray(x, np.float32)
    lo, hi = xn.min(), xn.max()
    r = (xn - lo) / (hi - lo) * np.float32(7)
    level = np.floor(r) + (_numpy_dither(key, 500) < (r - np.floor(r)))
    np.testing.assert_allclose(out, lo + level * (hi - lo) / 7, rtol=0, atol=1e-6)


def test_on_grid_values_are_exact():
    """A value on a knob has fractional part 0 and u >= 0, so it never moves (the bias bound's f = 0 case)."""
    x = jnp.asarray(np.arange(-8, 8, dtype=np.float32) / 4)
    comp = jg.compressors.low_precision(scale=0.25, bits=8)
    out = jax.vmap(lambda k: comp.compress(k, x))(jax.random.split(jax.random.key(0), 100))
    np.testing.assert_array_equal(np.asarray(out), np.broadcast_to(np.asarray(x), out.shape))


@pytest.mark.parametrize("comp", [jg.compressors.quantize(bits=4), jg.compressors.qsgd(levels=4, bucket=16),
                                  jg.compressors.terngrad()], ids=lambda c: c.name)
def test_same_numbers_on_one_and_eight_devices(devices, comp):
    """compress_rows on a stack sharded over the 8 devices (XLA partitions the rows, each device hashing its own rows
    with their own seeds) gives the unsharded stack's bits: the draws do not depend on the device layout.

    (A whole DCD-PSGD / CHOCO-SGD run is not bit-identical on 1 and 8 devices, with this stream or jax.random's: the
    sharded program computes the gradient and gossip in another float order, and a 1-ulp change of a value next to a
    knob flips its rounding. tests/test_sharding.py checks plain D-PSGD bit for bit.)"""
    from jaxgossip.simulate import worker_sharding

    X = jax.random.normal(jax.random.key(0), (16, 40))
    f = jax.jit(lambda X: compress_rows(comp, jax.random.key(5), X))
    sharded = f(jax.device_put(X, worker_sharding(16, True)))
    assert len(sharded.sharding.device_set) == 8
    np.testing.assert_array_equal(np.asarray(sharded), np.asarray(f(X)))
    keys = worker_keys(jax.random.key(5), 16)  # row i is worker i's own compression, whatever the layout
    np.testing.assert_array_equal(np.asarray(sharded[11]), np.asarray(comp.compress(keys[11], X[11])))


GOLDEN = [14731627, 7895818, 2291906, 4559702, 5882608, 4779326]  # (u * 2^24) for jax.random.key(2026), 6 values


def test_reproducible_across_processes():
    """A fresh process draws the same bits from the same seed (typed or raw key), and they are the pinned ones."""
    code = ("import jax, numpy as np; from jaxgossip.compressors import _dither as d; "
            "print(list((np.asarray(d.uniform(jax.random.PRNGKey(2026), (6,))) * 2**24).astype(int).tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [int(v) for v in out.strip().strip("[]").split(",")] == GOLDEN
    here = (np.asarray(dither.uniform(jax.random.key(2026), (6,))) / GRID).astype(int).tolist()
    assert here == GOLDEN
