"""Compressors in NumPy: the decoded message of one d-vector and its size in bits.

Each takes the vector and the message's key (:class:`reference.common.Keys`); a stochastic one takes its dither
uniforms from that key (:meth:`Keys.dither`, the library's stream recomputed in NumPy; the shape the library draws: QSGD
one bucket of d values, ``(1, d)``; the low-precision quantizer ``(d,)``) and rounds itself.

References:
  QSGD: Alistarh, Grubic, Li, Tomioka, Vojnovic 2017, Sec. 3.1, Lemma 3.1 (omega = min(d / s^2, sqrt(d) / s)).
  Top-k: Stich, Cordonnier, Jaggi 2018; Liu & Zhang, Sec. 3.2 (k values and their indices on the wire).
  Low precision: Reisizadeh et al. 2019, eq. 7 (s-bit two's complement grid of step eta).
  Rescaling an unbiased compressor into a contraction: Koloskova, Stich, Jaggi 2019, Sec. 3; epfml/ChocoSGD
  convex_code/logistic.py ``qsgd_quantize(..., is_biased=True)``: scale = 1 / (min(d / s^2, sqrt(d) / s) + 1).
  Bounded error Q(v, e): Ye, Xiao, Sun 2020, Sec. 2.1, Lemma 2.1 (about d log2(||v|| / e) + 1.05 d bits).
"""

from __future__ import annotations

import math

import numpy as np

from reference.common import FLOAT_BITS, Keys

__all__ = ["Identity", "TopK", "QSGD", "LowPrecision", "Rescaled", "encode", "encode_random", "bits_for"]


def index_bits(d: int) -> int:
    """Bits of one coordinate index into a d-vector."""
    return int(math.ceil(math.log2(d))) if d > 1 else 0


class Identity:
    name = "identity"
    unbiased = True
    stochastic = False

    def __call__(self, x: np.ndarray, key: Keys) -> np.ndarray:
        return np.array(x, dtype=np.float64)

    def bits(self, d: int) -> float:
        return FLOAT_BITS * d


class TopK:
    """The k = max(1, round(fraction d)) entries of largest magnitude (ties: the lower index), each sent as a float32
    value and a ceil(log2 d)-bit index."""

    name = "top_k"
    unbiased = False
    stochastic = False

    def __init__(self, fraction: float):
        self.fraction = fraction

    def k(self, d: int) -> int:
        return max(1, int(np.round(self.fraction * d)))  # round half to even, as jnp.round

    def __call__(self, x: np.ndarray, key: Keys) -> np.ndarray:
        d = x.size
        order = sorted(range(d), key=lambda c: (-abs(x[c]), c))
        out = np.zeros(d)
        for c in order[: self.k(d)]:
            out[c] = x[c]
        return out

    def bits(self, d: int) -> float:
        return self.k(d) * (FLOAT_BITS + index_bits(d))


class QSGD:
    """QSGD with s levels: ||x|| sign(x_c) l_c / s, l_c = |x_c| s / ||x|| rounded up with probability its fractional
    part (uniform u_c < frac). A message: one float32 norm, a sign bit and a bit_length(s)-bit level per value."""

    name = "qsgd"
    unbiased = True
    stochastic = True

    def __init__(self, levels: int):
        self.s = int(levels)

    def __call__(self, x: np.ndarray, key: Keys) -> np.ndarray:
        d = x.size
        u = key.dither((1, d))[0]  # the library quantizes one bucket of d values: (1, d) uniforms
        norm = float(np.sqrt(np.sum(x * x)))
        out = np.zeros(d)
        if norm == 0:
            return out
        for c in range(d):
            r = abs(x[c]) / norm * self.s
            level = math.floor(r) + (1 if u[c] < r - math.floor(r) else 0)
            out[c] = np.sign(x[c]) * norm * level / self.s
        return out

    def bits(self, d: int) -> float:
        return d * (1 + self.s.bit_length()) + FLOAT_BITS

    def omega(self, d: int) -> float:
        """Alistarh et al. 2017, Lemma 3.1: E||Q(x) - x||^2 <= min(d / s^2, sqrt(d) / s) ||x||^2."""
        return min(d / self.s**2, math.sqrt(d) / self.s)


class Rescaled:
    """An unbiased compressor of variance omega divided by 1 + omega: a contraction with delta = 1 / (1 + omega)
    (Koloskova et al. 2019). Same message (both ends know omega), so the same bits."""

    unbiased = False

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name + "/(1+omega)"
        self.stochastic = inner.stochastic

    def __call__(self, x: np.ndarray, key: Keys) -> np.ndarray:
        return self.inner(x, key) / (1.0 + self.inner.omega(x.size))

    def bits(self, d: int) -> float:
        return self.inner.bits(d)


class LowPrecision:
    """Q_(eta, s) of Reisizadeh et al. 2019, eq. 7: clip to the s-bit grid {-eta 2^(s-1), ..., eta (2^(s-1) - 1)},
    round x / eta down or up at random (unbiased in range); s bits per value (eta is known to both ends)."""

    name = "low_precision"
    unbiased = True
    stochastic = True

    def __init__(self, scale: float = 2.0**-6, bits: int = 8):
        self.scale, self.b = float(scale), int(bits)

    def __call__(self, x: np.ndarray, key: Keys) -> np.ndarray:
        d = x.size
        u = key.dither((d,))
        lo, hi = -self.scale * 2.0 ** (self.b - 1), self.scale * (2.0 ** (self.b - 1) - 1)
        out = np.zeros(d)
        for c in range(d):
            r = min(max(x[c], lo), hi) / self.scale
            out[c] = (math.floor(r) + (1 if u[c] < r - math.floor(r) else 0)) * self.scale
        return out

    def bits(self, d: int) -> float:
        return d * self.b


# ---- the bounded-error encoder of Ye et al. (2020) -------------------------------------------------------------------
LEMMA_OVERHEAD = 1.05


def encode(v: np.ndarray, e: float) -> np.ndarray:
    """Deterministic Q(v, e): every coordinate to the grid of step h = 2 e / sqrt(d), so ||Q(v, e) - v|| <= e."""
    h = 2.0 * e / math.sqrt(v.size)
    return np.array([h * np.round(c / h) for c in v])


def encode_random(v: np.ndarray, e: float, key: Keys) -> np.ndarray:
    """Unbiased Q(v, e): stochastic rounding to the grid of step e / sqrt(d) (the grid of encode at radius e / 2)."""
    h = e / math.sqrt(v.size)
    u = key.dither(v.shape)
    out = np.zeros(v.size)
    for c in range(v.size):
        r = v[c] / h
        out[c] = h * (math.floor(r) + (1 if u[c] < r - math.floor(r) else 0))
    return out


def bits_for(v: np.ndarray, e: float) -> float:
    """Lemma 2.1's count for the ball of radius ||v|| at error e, ceil(1.05 d + d log2(||v|| / e + 2)), plus one
    float32 header carrying the radius."""
    d = v.size
    return math.ceil(LEMMA_OVERHEAD * d + d * math.log2(float(np.linalg.norm(v)) / e + 2.0)) + FLOAT_BITS
