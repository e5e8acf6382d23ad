"""What every reference algorithm shares: the run's keys and draws, least squares gradients, graphs, local optimizers.

Nothing here calls the library: the keys are derived with ``jax.random`` exactly as the library documents them (step t:
``fold_in(key(seed), t)``; stream s of a step: ``fold_in(step key, s)``; worker i: ``fold_in(stream key, i)``), and
the draws (uniforms, normals, categorical samples) are made with ``jax.random`` on those keys, and a stochastic
quantizer's dither is recomputed in NumPy from the key's two seed words (:meth:`Keys.dither`); everything computed from
them is NumPy float64.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Keys", "LeastSquares", "Graph", "Network", "Compute", "LocalOptimizer", "Setup", "Trace", "mix",
           "COMPUTE_TAG", "FLOAT_BITS"]

#: Bits of one float32 on the wire.
FLOAT_BITS = 32
#: The stream of a step's key from which the compute model draws the step's speeds (``cost.py``: ``_COMPUTE_TAG``).
COMPUTE_TAG = 0x5EED


class Keys:
    """A jax key and the path of ``fold_in`` s that made it: ``Keys.run(seed).step(t)(1)(i)`` is worker i's key of
    stream 1 at step t. The draws are jax's (the library's own random numbers); the reference computes with them.
    Keys are memoized by (root, path), so deriving the same key twice costs nothing."""

    _cache: dict = {}

    def __init__(self, key, path=None):
        self._key, self.path = key, path

    @classmethod
    def run(cls, seed: int) -> "Keys":
        return cls(None, (int(seed),))

    def step(self, t: int) -> "Keys":
        return self(t)

    def __call__(self, *path: int) -> "Keys":
        if self.path is None:  # a key without a recorded path: fold directly
            key = self._key
            for p in path:
                key = jax.random.fold_in(key, p)
            return Keys(key)
        return Keys(None, self.path + tuple(int(p) for p in path))

    @property
    def key(self):
        if self.path is None:
            return self._key
        cache = Keys._cache
        if self.path not in cache:
            cache[self.path] = jax.random.key(self.path[0]) if len(self.path) == 1 else \
                jax.random.fold_in(Keys(None, self.path[:-1]).key, self.path[-1])
        return cache[self.path]

    def uniform(self, shape, low=0.0, high=1.0) -> np.ndarray:
        """float32 uniforms on [low, high) as jax draws them, returned as float64."""
        if low == 0.0 and high == 1.0:
            u = jax.random.uniform(self.key, shape, jnp.float32)
        else:
            u = jax.random.uniform(self.key, shape, jnp.float32, low, high)
        return np.asarray(u, np.float64)

    def dither(self, shape) -> np.ndarray:
        """A stochastic quantizer's uniforms as the library draws them (``compressors/_dither.py``), recomputed here in
        NumPy: seed words (k0, k1) = ``jax.random.bits(key, (2,), uint32)``; coordinate c (row-major) gets MurmurHash3's
        fmix32 keyed by them, h = c ^ k0, h ^= h >> 16, h *= 0x85ebca6b, h ^= h >> 13, h += k1, h *= 0xc2b2ae35,
        h ^= h >> 16; and u = (h >> 8) 2^-24 on [0, 1)."""
        k0, k1 = (np.uint32(w) for w in np.asarray(jax.random.bits(self.key, (2,), jnp.uint32)))
        h = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.uint32).reshape(shape) ^ k0
        with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as in the library
            h = h ^ (h >> np.uint32(16))
            h = h * np.uint32(0x85EBCA6B)
            h = h ^ (h >> np.uint32(13))
            h = h + k1
            h = h * np.uint32(0xC2B2AE35)
            h = h ^ (h >> np.uint32(16))
        return (h >> np.uint32(8)).astype(np.float64) * 2.0**-24

    def normal(self, shape) -> np.ndarray:
        return np.asarray(jax.random.normal(self.key, shape, jnp.float32), np.float64)

    def categorical(self, logits32) -> int:
        return int(jax.random.categorical(self.key, jnp.asarray(logits32, jnp.float32)))


@dataclasses.dataclass
class LeastSquares:
    """f_i(x) = (1 / c_i) sum_{s < c_i} (a_s . x - b_s)^2 / 2 + (reg / 2) ||x||^2 on worker i's first c_i samples.

    A: (n, m, d) features, b: (n, m) targets (the library's problem data, as float64); L and mu as the problem states
    them (for the star methods' default step sizes).
    """

    A: np.ndarray
    b: np.ndarray
    reg: float
    L: float | None = None
    mu: float | None = None

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def m(self) -> int:
        return self.A.shape[1]

    def grad(self, i: int, x: np.ndarray, samples=None) -> np.ndarray:
        """Worker i's gradient at x, averaged over its ``samples`` (indices; all by default; none: a zero gradient)."""
        idx = np.arange(self.m) if samples is None else np.asarray(samples, int)
        if idx.size == 0:
            return np.zeros_like(x)
        Ai, bi = self.A[i, idx], self.b[i, idx]
        return Ai.T @ (Ai @ x - bi) / idx.size + self.reg * x

    def grads(self, X: np.ndarray) -> np.ndarray:
        """Every worker's exact local gradient at its own model, one worker at a time."""
        out = np.zeros_like(X)
        for i in range(self.n):
            out[i] = self.grad(i, X[i])
        return out

    def objective(self, x: np.ndarray) -> float:
        """f(x) = (1/n) sum_i f_i(x)."""
        total = 0.0
        for i in range(self.n):
            r = self.A[i] @ x - self.b[i]
            total += 0.5 * np.mean(r * r) + 0.5 * self.reg * x @ x
        return total / self.n


@dataclasses.dataclass
class Graph:
    """One step's graph: W[i, j] is what worker i takes from worker j (so worker j sends to every i != j with
    W[i, j] != 0). Out-degree: messages a worker sends; in-degree: messages it receives."""

    W: np.ndarray

    @property
    def n(self) -> int:
        return self.W.shape[0]

    def edge(self, i: int, j: int) -> bool:
        return i != j and self.W[i, j] != 0

    @property
    def out_degree(self) -> np.ndarray:
        return np.array([sum(self.edge(i, j) for i in range(self.n)) for j in range(self.n)])

    @property
    def in_degree(self) -> np.ndarray:
        return np.array([sum(self.edge(i, j) for j in range(self.n)) for i in range(self.n)])

    def neighbours(self, i: int) -> list[int]:
        """The workers i receives from (for a symmetric graph also those it sends to)."""
        return [j for j in range(self.n) if self.edge(i, j)]


def mix(graph: Graph, X: np.ndarray) -> np.ndarray:
    """(W X)_i = W_ii x_i + sum_{j in N_i} W_ij x_j, one worker at a time."""
    out = np.zeros_like(X)
    for i in range(graph.n):
        out[i] = graph.W[i, i] * X[i]
        for j in graph.neighbours(i):
            out[i] = out[i] + graph.W[i, j] * X[j]
    return out


@dataclasses.dataclass
class Network:
    """alpha-beta network: ``latency`` seconds per message, ``bandwidth`` bytes per second."""

    latency: float
    bandwidth: float

    def message(self, bits: float) -> float:
        return self.latency + bits / 8.0 / self.bandwidth


@dataclasses.dataclass
class Compute:
    """Speeds V_i,t in samples per second: ``constant`` (``speed``), ``given`` (worker i always at ``values[i]``) or
    i.i.d. ``uniform`` on [low, high)."""

    distribution: str = "constant"
    speed: float = 1000.0
    low: float = 10.0
    high: float = 90.0
    values: tuple = ()

    def speeds(self, key: Keys, n: int) -> np.ndarray:
        """The speeds drawn from ``key`` (the library draws them with ``jax.random.uniform(key, (n,), f32, low,
        high)``)."""
        if self.distribution == "constant":
            return np.full(n, float(self.speed))
        if self.distribution == "given":
            return np.asarray(self.values, np.float64)
        if self.distribution == "uniform":
            return key.uniform((n,), self.low, self.high)
        raise ValueError(self.distribution)


class LocalOptimizer:
    """A worker's local optimizer, per worker row: what it subtracts from its model for gradient g at step size lr.

    ``sgd``: lr g. ``direction``: optax.trace(decay) (heavy ball, m <- g + decay m) at unit step, scaled by lr.
    ``updates``: optax.sgd(opt_lr, momentum=decay), i.e. u = -opt_lr m, and lr multiplies that update: lr opt_lr m.
    """

    def __init__(self, kind: str = "sgd", decay: float = 0.9, opt_lr: float = 0.1):
        if kind not in ("sgd", "direction", "updates"):
            raise ValueError(kind)
        self.kind, self.decay, self.opt_lr = kind, decay, opt_lr
        self.m: dict[int, np.ndarray] = {}

    def direction(self, i: int, g: np.ndarray) -> np.ndarray:
        """The direction at unit step size (sgd: g; trace: the momentum buffer)."""
        if self.kind == "sgd":
            return g
        self.m[i] = g + self.decay * self.m.get(i, np.zeros_like(g))
        return self.m[i] if self.kind == "direction" else self.opt_lr * self.m[i]

    def step(self, i: int, g: np.ndarray, lr: float) -> np.ndarray:
        """What worker i subtracts from its model."""
        return lr * self.direction(i, g)


@dataclasses.dataclass
class Trace:
    """A reference run: the final (n, d) models, and per step the bits sent (all workers) and the seconds it took;
    ``loss`` the objective at the average model after each step."""

    x: np.ndarray
    bits: np.ndarray
    seconds: np.ndarray
    loss: np.ndarray


@dataclasses.dataclass
class Setup:
    """Everything a reference run reads: the problem, the initial models, step t's graph, the network, the compute
    model, the run's seed, and the batch b that the pricing charges (b / V_i,t seconds for worker i)."""

    problem: LeastSquares
    X0: np.ndarray
    graph_at: Callable[[int], Graph]
    network: Network
    compute: Compute
    seed: int
    batch: int

    @property
    def n(self) -> int:
        return self.X0.shape[0]

    @property
    def d(self) -> int:
        return self.X0.shape[1]

    def keys(self, t: int) -> Keys:
        """Step t's key."""
        return Keys.run(self.seed).step(t)

    def speeds(self, t: int) -> np.ndarray:
        """V_i,t that the pricing (and QuanTimed-DSGD) use at step t: drawn from the step key's COMPUTE_TAG stream."""
        return self.compute.speeds(self.keys(t)(COMPUTE_TAG), self.n)

    def compute_seconds(self, t: int) -> float:
        """A synchronous step's computation: the slowest worker's batch."""
        return float(np.max(self.batch / self.speeds(t)))


class Recorder:
    """Collects a run's per-step bits, seconds and loss."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.bits, self.seconds, self.loss = [], [], []

    def add(self, X: np.ndarray, bits: float, seconds: float) -> None:
        self.bits.append(float(bits))
        self.seconds.append(float(seconds))
        self.loss.append(self.setup.problem.objective(np.mean(X, axis=0)))

    def trace(self, X: np.ndarray) -> Trace:
        return Trace(np.array(X), np.array(self.bits), np.array(self.seconds), np.array(self.loss))
